"""A run folder saved here (transformers 5) loads and behaves the same in the OLDEST transformers setup.cfg
allows, with no project code: tokenizer class, chat template + assistant mask, logits, greedy generation.

The old transformers lives in a small venv cached under ~/.cache/dialogpt-hf (override with DIALOGPT_HF_CACHE):
transformers/tokenizers/huggingface_hub of that era installed into it; torch, numpy, safetensors come from the
test environment through a .pth file (the venv's own packages come first on sys.path).
"""

from __future__ import annotations

import configparser
import fcntl
import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from train_helpers import base_config, write_parquet_dataset

from dialogpt.chat_format import IGNORE_INDEX, encode_session, messages_to_turns

REPO = Path(__file__).resolve().parents[2]
CHATS = [
    [{"role": "user", "content": "does money buy happiness?"}],
    [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "hello, how are you?"},
     {"role": "user", "content": "fine thanks, and you?"}, {"role": "assistant", "content": "great!"}],
    [{"role": "system", "content": "ignored"}, {"role": "user", "content": "naïve café 🙂"},
     {"role": "assistant", "content": "skipped turn", "trainable": False}, {"role": "user", "content": "ok"}],
]

PROBE = r"""
import json, sys, torch, transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
run, chats = sys.argv[1], json.loads(sys.argv[2])
tok = AutoTokenizer.from_pretrained(run)
model = AutoModelForCausalLM.from_pretrained(run).eval()
out = {"version": transformers.__version__, "file": transformers.__file__, "class": type(tok).__name__,
       "ids": [], "masks": [], "prompts": [], "generated": []}
for chat in chats:
    enc = tok.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    out["ids"].append(list(enc["input_ids"]))
    out["masks"].append(list(enc["assistant_masks"]))
    prompt = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt")
    prompt = prompt["input_ids"] if hasattr(prompt, "keys") else prompt
    with torch.no_grad():
        gen = model.generate(prompt, attention_mask=torch.ones_like(prompt))  # the saved generation_config
        logits = model(prompt).logits[0, -1]
    out["prompts"].append(logits.tolist())
    out["generated"].append(gen[0, prompt.shape[1]:].tolist())
print(json.dumps(out))
"""


def oldest_transformers() -> str:
    """The floor of ``transformers>=X`` in setup.cfg's install_requires, e.g. "4.45"."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    line = next(ln for ln in cfg["options"]["install_requires"].splitlines() if ln.strip().startswith("transformers"))
    return re.search(r">=\s*([0-9.]+)", line).group(1)


def old_venv() -> Path:
    """The cached venv with the oldest allowed transformers (made once; a lock keeps xdist workers apart)."""
    version = oldest_transformers()
    root = Path(os.environ.get("DIALOGPT_HF_CACHE", Path.home() / ".cache" / "dialogpt-hf"))
    venv = root / f"venv-tf{version}"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"venv-tf{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".ready").is_file():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            purelib = subprocess.run([str(venv / "bin" / "python"), "-c",
                                      "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip()
            Path(purelib, "test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
            pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                  f"transformers~={version}.0"], capture_output=True, text=True, timeout=900)
            if pip.returncode != 0:
                pytest.skip(f"cannot install transformers~={version}.0 into {venv} (offline?): "
                            f"{pip.stderr.strip().splitlines()[-1:]}")
            (venv / ".ready").write_text(version + "\n")
    return venv


@pytest.mark.slow
def test_run_folder_loads_in_the_oldest_allowed_transformers(tmp_path, tokenizer_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dialogpt.train.loop import train

    ds = write_parquet_dataset(tmp_path / "ds", n_train=32, n_valid=8)
    train(base_config(tmp_path, ds, tokenizer_dir, num_optim_steps=2))
    run = tmp_path / "run"
    assert json.loads((run / "tokenizer_config.json").read_text())["tokenizer_class"] == "GPT2TokenizerFast"

    venv = old_venv()
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", PROBE, str(run), json.dumps(CHATS)],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    old = json.loads(proc.stdout.strip().splitlines()[-1])
    assert old["version"].startswith(oldest_transformers() + ".") and str(venv) in old["file"]
    assert old["class"] == "GPT2TokenizerFast"

    tok = AutoTokenizer.from_pretrained(str(run))
    model = AutoModelForCausalLM.from_pretrained(str(run)).eval()
    for i, chat in enumerate(CHATS):
        enc = encode_session(tok, messages_to_turns(chat), max_seq_length=None)
        assert old["ids"][i] == enc.input_ids
        assert old["masks"][i] == [int(y != IGNORE_INDEX) for y in enc.labels]
        prompt = torch.tensor([enc.input_ids])
        with torch.no_grad():
            logits = model(prompt).logits[0, -1]
            gen = model.generate(prompt, attention_mask=torch.ones_like(prompt))
        assert torch.allclose(torch.tensor(old["prompts"][i]), logits, atol=1e-4)
        assert old["generated"][i] == gen[0, prompt.shape[1]:].tolist()
        assert 1 <= len(old["generated"][i]) <= 40  # the saved min/max_new_tokens applied there too
