"""The end of a run: the ``from_pretrained`` folder (model, tokenizer + chat template, generation config,
model card, figures) and the optional push of that folder to the Hub.

The final folder is what users load (``dialogpt-chat runs/medium``, ``from_pretrained``), so it must
carry everything decoding needs: the chat template (training and chat render the same string) and a
generation config that stops at the end of a turn.
"""

from __future__ import annotations

import json
from pathlib import Path

from dialogpt.cards import card_info_from_run, render_model_card, shown_name
from dialogpt.chat_format import install_chat_template
from dialogpt.errors import first_line
from dialogpt.tokenization import save_tokenizer
from dialogpt.train.checkpointing import write_hyperparameters
from dialogpt.train.config import TrainConfig, TrainingError, TrainResult
from dialogpt.train.lora import save_adapter_and_merge
from dialogpt.train.plot import plot_run

#: what stays local when the run folder is pushed (checkpoints are large and resumable only here)
PUSH_IGNORE = ["checkpoints/*", "checkpoints/**", "runs/*", "runs/**", "*.tmp*"]


#: The Responder's defaults (dialogpt.decode.options.GenerationOptions(); train may not import decode, so
#: tests/decode/test_pipeline_parity.py checks they stay equal): greedy, 1..40 new tokens, no penalties.
#: min_new_tokens=1 forbids EOS as the first token: without it a stock pipeline("text-generation")
#: returned an empty reply on 6 of 100 contexts where dialogpt-chat answered.
RESPONDER_DEFAULTS = dict(max_new_tokens=40, min_new_tokens=1, do_sample=False, num_beams=1,
                          repetition_penalty=1.0, no_repeat_ngram_size=0)
#: the Responder's own fields, under the keys it reads back from generation_config.json
RESPONDER_EXTRA = {"dialogpt_strategy": "greedy", "dialogpt_response_repetition_penalty": 1.0}


def dialogue_generation_config(tokenizer):
    """Decoding defaults saved with the model: the Responder's, stopping and padding at EOS (the end
    of a turn), so ``generate()`` / ``pipeline("text-generation")`` with no arguments decode as
    ``dialogpt-chat`` does. Greedy, as the seed evaluated; chat front-ends may sample instead.
    """
    from transformers import GenerationConfig

    gc = GenerationConfig(bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                          pad_token_id=tokenizer.pad_token_id, **RESPONDER_DEFAULTS)
    for key, value in RESPONDER_EXTRA.items():
        setattr(gc, key, value)
    return gc


def _plot(out: Path) -> str | None:
    """The run's loss/perplexity PNG for the card; a run too short to plot just has none."""
    try:
        return plot_run(out).name
    except (OSError, ValueError) as e:
        print(f"warning: no loss plot ({first_line(e)})")
        return None


def save_final(accelerator, model, tokenizer, config: TrainConfig, result: TrainResult) -> None:
    """``save_pretrained`` of model + tokenizer (chat template) + generation config + card + config.

    A LoRA run saves its adapter to ``adapter/`` and the model with the adapter merged in (train/lora.py).
    """
    out = Path(config.output_dir)
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    if config.lora_r is not None:  # never sharded (check_lora_run): the merged model's own weights are whole
        unwrapped = save_adapter_and_merge(unwrapped, out, shown_name(config.model_name_or_path),
                                           accelerator.is_main_process)
        state_dict = None
    else:
        state_dict = accelerator.get_state_dict(model)  # gathers FSDP/DeepSpeed shards
    if accelerator.is_main_process:
        unwrapped.config.use_cache = True
        unwrapped.generation_config = dialogue_generation_config(tokenizer)
        unwrapped.save_pretrained(str(out), state_dict=state_dict, save_function=accelerator.save)
        install_chat_template(tokenizer)
        save_tokenizer(tokenizer, out)  # GPT2TokenizerFast + inline template: transformers 4.x loads it too
        write_hyperparameters(out / "hyperparameters.yaml", config,
                              {"num_processes": result.num_processes, "num_parameters": result.num_parameters})
        (out / "train_results.json").write_text(json.dumps(
            {k: v for k, v in result.to_dict().items() if k != "loss_history"}, indent=1))
        info = card_info_from_run(config, result, unwrapped.config)
        info.plot = _plot(out)
        render_model_card(info).save(str(out / "README.md"))
    accelerator.wait_for_everyone()


def resolve_hub_token(config: TrainConfig) -> str | None:
    """The token to push with: ``--hub_token``, else the first line of ``--hub_token_file``, else None,
    which lets huggingface_hub use ``HF_TOKEN`` or the saved ``huggingface-cli login``.

    A file or the environment keep the token out of the process list (``ps`` shows every flag).
    """
    if config.hub_token:
        return config.hub_token
    if not config.hub_token_file:
        return None
    path = Path(config.hub_token_file)
    try:
        token = (path.read_text().strip().splitlines() or [""])[0].strip()
    except OSError as e:
        raise TrainingError(f"--hub_token_file {path}: cannot read it ({first_line(e)})") from None
    if not token:
        raise TrainingError(f"--hub_token_file {path}: the file is empty")
    return token


def push_folder(accelerator, out_dir: Path, config: TrainConfig) -> str | None:
    """Create (or reuse) the Hub repo and upload the final folder; checkpoints stay local."""
    url = None
    if accelerator.is_main_process:
        from huggingface_hub import HfApi

        token = resolve_hub_token(config)
        api = HfApi(token=token)
        try:
            api.create_repo(config.hub_model_id, private=config.hub_private, exist_ok=True, repo_type="model")
            info = api.upload_folder(folder_path=str(out_dir), repo_id=config.hub_model_id, repo_type="model",
                                     commit_message=f"dialogpt-hf: step {_final_step(out_dir)}",
                                     ignore_patterns=PUSH_IGNORE)
        except Exception as e:
            msg = first_line(e, 300)
            if token:
                msg = msg.replace(token, "***")
            raise TrainingError(f"--push_to_hub {config.hub_model_id}: {msg}") from None
        url = str(getattr(info, "commit_url", None) or info)
    accelerator.wait_for_everyone()
    return url


def _final_step(out_dir: Path) -> str:
    try:
        return str(json.loads((out_dir / "train_results.json").read_text())["global_step"])
    except Exception:
        return "?"
