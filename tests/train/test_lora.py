"""LoRA (``--lora_r``, peft): only the adapters train, the final folder holds merged weights that load
without peft plus the adapter that loads with it, resume is exact, and mistakes are one line.

One LoRA run (6 steps, checkpoints at 3 and 6, dropout and gradient checkpointing on, pushed to the
loopback Hub) is shared by the tests of this module.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import uuid
import warnings
from pathlib import Path

import pytest
import torch
from train_helpers import Killed, base_config, kill_at, write_parquet_dataset

from dialogpt.cli.train import main
from dialogpt.train.checkpointing import list_checkpoints
from dialogpt.train.config import TrainingError
from dialogpt.train.loop import train

pytest.importorskip("peft", reason="LoRA needs the [lora] extra (peft)")

REPO = Path(__file__).resolve().parents[2]
R = 4
ADAPTED_PER_LAYER = R * ((64 + 192) + (64 + 64) + (64 + 256) + (256 + 64))  # c_attn, attn c_proj, c_fc, mlp c_proj
PROBE = "does money buy happiness<|endoftext|>depends how much you"


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return write_parquet_dataset(tmp_path_factory.mktemp("lora_ds"), n_train=48, n_valid=8)


def _config(tmp_path, ds, tokenizer_dir, tiny_model_dir, **over):
    kw = dict(model_config=None, model_name_or_path=str(tiny_model_dir), lora_r=R, lora_alpha=8.0,
              lora_dropout=0.1, dropout=0.1, num_optim_steps=6, save_steps=3, gradient_checkpointing=True)
    return base_config(tmp_path, ds, tokenizer_dir, **{**kw, **over})


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, ds, tokenizer_dir, tiny_model_dir, mock_hub):
    token, repo_id = "hf_" + uuid.uuid4().hex, f"lora-org/tiny-lora-{uuid.uuid4().hex[:8]}"
    mock_hub.add_token(token, "lora-user", orgs=["lora-org"])
    tmp = tmp_path_factory.mktemp("lora_run")
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = train(_config(tmp, ds, tokenizer_dir, tiny_model_dir, push_to_hub=True, hub_model_id=repo_id,
                            hub_token=token))
    peft_warnings = [str(w.message) for w in caught if "peft" in w.filename]
    return res, Path(res.output_dir), buf.getvalue(), (repo_id, token), peft_warnings


def _logits(model, tokenizer_dir) -> torch.Tensor:
    from transformers import AutoTokenizer

    ids = torch.tensor([AutoTokenizer.from_pretrained(str(tokenizer_dir))(PROBE)["input_ids"]])
    with torch.no_grad():
        return model.eval()(ids).logits[0]


@pytest.mark.slow
def test_only_adapters_train_and_the_merged_folder_equals_base_plus_adapter(lora_run, tiny_model_dir, tokenizer_dir,
                                                                            mock_hub):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    res, out, printed, (repo_id, token), peft_warnings = lora_run
    assert peft_warnings == []
    # saving the adapter asks the Hub nothing about its base (peft's vocabulary check would look it up by name)
    assert mock_hub.requests_matching(re.escape(Path(tiny_model_dir).name)) == []
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    n_base = sum(p.numel() for p in base.parameters())
    assert (res.trainable_parameters, res.num_parameters) == (2 * ADAPTED_PER_LAYER, n_base)
    assert json.loads((out / "train_results.json").read_text())["trainable_parameters"] == 2 * ADAPTED_PER_LAYER
    assert f"trained parameters           = {2 * ADAPTED_PER_LAYER:,} of {n_base + 2 * ADAPTED_PER_LAYER:,}" in printed
    assert "LoRA adapters r 4, alpha 8, dropout 0.1 on c_attn, c_proj, c_fc" in printed

    # the last checkpoint holds the wrapped model: base weights exactly as loaded, every adapter B moved off 0
    state = load_file(str(list_checkpoints(out)[-1] / "model.safetensors"))
    own = base.state_dict()
    base_keys = [k for k in state if "lora_" not in k]
    assert len(base_keys) >= len(own) - 1  # lm_head is tied to wte
    for k in base_keys:
        assert torch.equal(state[k], own[k.replace("base_model.model.", "").replace(".base_layer", "")]), k
    lora_b = [v for k, v in state.items() if "lora_B" in k]
    assert len(lora_b) == 8 and all(v.abs().max() > 0 for v in lora_b)

    # merged folder: plain GPT-2 (no adapter_config.json at the top) == base + adapter, and != base
    assert not (out / "adapter_config.json").exists()
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in (out / "adapter").iterdir()}
    merged = _logits(AutoModelForCausalLM.from_pretrained(str(out)), tokenizer_dir)
    adapted = _logits(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
                                                str(out / "adapter")), tokenizer_dir)
    assert (merged - adapted).abs().max() < 1e-5
    assert (merged - _logits(base, tokenizer_dir)).abs().max() > 1e-3

    card = (out / "README.md").read_text()
    assert "## LoRA" in card and "rank 4, alpha 8" in card and f"{2 * ADAPTED_PER_LAYER:,} of" in card
    assert "- lora" in card and 'subfolder="adapter"' in card

    # the push carries the adapter too, and it loads from the Hub with subfolder="adapter"
    files = mock_hub.repo_files("model", repo_id)
    assert {"model.safetensors", "adapter/adapter_model.safetensors", "adapter/adapter_config.json"} <= set(files)
    hub_adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), repo_id,
                                            subfolder="adapter", token=token)
    assert (_logits(hub_adapted, tokenizer_dir) - adapted).abs().max() == 0


NO_PEFT = textwrap.dedent("""
    import json, sys
    sys.modules["peft"] = None          # `import peft` now fails as if it were not installed
    folder, tok_dir, ds, out = sys.argv[1:5]
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
    from dialogpt.cli.train import main
    from dialogpt.decode.responder import Responder
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.tensor([AutoTokenizer.from_pretrained(folder)(sys.argv[5])["input_ids"]])
    with torch.no_grad():
        logits = model(ids).logits[0]
    text = pipeline("text-generation", model=folder)("does money", max_new_tokens=3)[0]["generated_text"]
    Responder.from_pretrained(folder)
    common = ["--dataset", ds, "--model_name_or_path", tok_dir, "--tokenizer_name", tok_dir, "--max_seq_length", "64",
              "--num_optim_steps", "1", "--lr_schedule", "None", "--save_steps", "0", "--eval_steps", "0", "--no-pbar"]
    rc_lora = main(common + ["--output_dir", out + "/lora", "--lora_r", "4"])
    rc_full = main(common + ["--output_dir", out + "/full"])
    print(json.dumps({"logits": logits.tolist(), "text": text, "rc_lora": rc_lora, "rc_full": rc_full,
                      "peft_loaded": sys.modules["peft"] is not None}))
""")


@pytest.mark.slow
def test_without_peft_the_folder_loads_serves_and_trains_and_lora_is_one_line(lora_run, tiny_model_dir, tokenizer_dir,
                                                                               ds, tmp_path):
    from transformers import AutoModelForCausalLM

    out = lora_run[1]
    proc = subprocess.run([sys.executable, "-c", NO_PEFT, str(out), str(tiny_model_dir), str(ds), str(tmp_path), PROBE],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["peft_loaded"] is False and got["text"].startswith("does money")
    merged = _logits(AutoModelForCausalLM.from_pretrained(str(out)), tokenizer_dir)
    assert (torch.tensor(got["logits"]) - merged).abs().max() < 1e-6
    assert (got["rc_lora"], got["rc_full"]) == (2, 0)
    assert "error: --lora_r needs peft: pip install -e '.[lora]'\n" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_killed_lora_run_resumes_with_the_same_losses(lora_run, tmp_path, ds, tokenizer_dir, tiny_model_dir, capsys):
    with pytest.raises(Killed):
        train(_config(tmp_path, ds, tokenizer_dir, tiny_model_dir), step_callback=kill_at(4))
    # the checkpoint's LoRA flags must match: a full fine-tune cannot continue it (one line, before work)
    with pytest.raises(TrainingError, match="was trained with --lora_r 4, this run has None: give the same LoRA"):
        train(_config(tmp_path, ds, tokenizer_dir, tiny_model_dir, lora_r=None, resume_from_checkpoint="latest"))
    resumed = train(_config(tmp_path, ds, tokenizer_dir, tiny_model_dir, resume_from_checkpoint="latest"))
    assert resumed.global_step == 6
    assert resumed.loss_history == lora_run[0].loss_history[3:]    # bit-identical continuation


def test_lora_needs_a_pretrained_base_and_a_legacy_pkl_is_one(tmp_path):
    from dialogpt.train.config import TrainConfig

    kw = dict(dataset="d", model_config="tiny", tokenizer_name="gpt2", lora_r=4)
    assert TrainConfig(**kw, init_checkpoint="medium_ft.pkl").lora_r == 4  # the seed's .pkl weights are a base
    with pytest.raises(TrainingError, match="^--lora_r adapts pretrained weights: give --model_name_or_path"):
        TrainConfig(**kw)


@pytest.mark.parametrize("kind", ["FSDP", "DEEPSPEED"])
def test_sharded_launches_are_refused_before_any_work(kind, tmp_path, ds, tokenizer_dir, tiny_model_dir):
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from dialogpt.train.lora import check_lora_run

    cfg = _config(tmp_path, ds, tokenizer_dir, tiny_model_dir)
    with pytest.raises(TrainingError, match=f"^--lora_r does not run under {kind} here .* launch with DDP"):
        check_lora_run(cfg, SimpleNamespace(distributed_type=DistributedType[kind]), None)
    check_lora_run(cfg, SimpleNamespace(distributed_type=DistributedType.MULTI_GPU), None)


@pytest.mark.parametrize("extra, message", [
    (["--lora_r", "0"], "--lora_r must be >= 1, got 0"),
    (["--lora_r", "4", "--lora_alpha", "0"], "--lora_alpha must be > 0"),
    (["--lora_r", "4", "--lora_dropout", "1"], "--lora_dropout must be in [0, 1), got 1.0"),
    (["--lora_r", "4", "--lora_target_modules", "c_attn,,c_fc"], "give comma-separated module names"),
    (["--lora_r", "4", "--model_config", "tiny"], "--lora_r adapts pretrained weights"),
    (["--lora_r", "4", "--lora_target_modules", "nope"], "--lora_target_modules nope: no module of GPT2LMHeadModel"),
    (["--lora_r", "4", "--lora_target_modules", "ln_1"], "selects transformer.h.0.ln_1 (LayerNorm): adapters go on"),
    (["--lora_r", "4", "--lora_target_modules", "c_attn,lm_head"], "mixes Conv1D (transformer.h.0.attn.c_attn) and "
                                                                   "Linear (lm_head)"),
])
def test_lora_mistakes_are_one_line(tmp_path, ds, tokenizer_dir, tiny_model_dir, capsys, extra, message):
    model = [] if "--model_config" in extra else ["--model_name_or_path", str(tiny_model_dir)]
    argv = ["--dataset", str(ds), *model, "--tokenizer_name", str(tokenizer_dir), "--output_dir", str(tmp_path / "o"),
            "--max_seq_length", "64", "--no-pbar", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("error: "), err
    assert not (tmp_path / "o" / "train_log.txt").exists()
