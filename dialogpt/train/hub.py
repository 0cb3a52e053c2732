"""The end of a run: the ``from_pretrained`` folder (model, tokenizer + chat template, generation config,
model card, figures) and the optional push of that folder to the Hub.

The final folder is what users load (``dialogpt-chat runs/medium``, ``from_pretrained``), so it must
carry everything decoding needs: the chat template (training and chat render the same string) and a
generation config that stops at the end of a turn.
"""

from __future__ import annotations

import json
from pathlib import Path

from dialogpt.cards import card_info_from_run, render_model_card
from dialogpt.chat_format import install_chat_template
from dialogpt.errors import first_line
from dialogpt.train.checkpointing import write_hyperparameters
from dialogpt.train.config import TrainConfig, TrainingError, TrainResult

#: what stays local when the run folder is pushed (checkpoints are large and resumable only here)
PUSH_IGNORE = ["checkpoints/*", "checkpoints/**", "runs/*", "runs/**", "*.tmp*"]


def dialogue_generation_config(tokenizer, max_new_tokens: int = 64):
    """Decoding defaults saved with the model: stop at EOS (the end of a turn), pad with EOS.

    Greedy with a length cap, as the seed evaluated; chat front-ends may sample instead.
    """
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, max_new_tokens=max_new_tokens, do_sample=False,
    )


def save_final(accelerator, model, tokenizer, config: TrainConfig, result: TrainResult) -> None:
    """``save_pretrained`` of model + tokenizer (chat template) + generation config + card + config."""
    out = Path(config.output_dir)
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    state_dict = accelerator.get_state_dict(model)  # gathers FSDP/DeepSpeed shards
    if accelerator.is_main_process:
        unwrapped.config.use_cache = True
        unwrapped.generation_config = dialogue_generation_config(tokenizer)
        unwrapped.save_pretrained(str(out), state_dict=state_dict, save_function=accelerator.save)
        install_chat_template(tokenizer)
        tokenizer.save_pretrained(str(out))
        write_hyperparameters(out / "hyperparameters.yaml", config,
                              {"num_processes": result.num_processes, "num_parameters": result.num_parameters})
        (out / "train_results.json").write_text(json.dumps(
            {k: v for k, v in result.to_dict().items() if k != "loss_history"}, indent=1))
        card = render_model_card(card_info_from_run(config, result, unwrapped.config))
        card.save(str(out / "README.md"))
    accelerator.wait_for_everyone()


def push_folder(accelerator, out_dir: Path, config: TrainConfig) -> str | None:
    """Create (or reuse) the Hub repo and upload the final folder; checkpoints stay local."""
    url = None
    if accelerator.is_main_process:
        from huggingface_hub import HfApi

        api = HfApi(token=config.hub_token)
        try:
            api.create_repo(config.hub_model_id, private=config.hub_private, exist_ok=True, repo_type="model")
            info = api.upload_folder(folder_path=str(out_dir), repo_id=config.hub_model_id, repo_type="model",
                                     commit_message=f"dialogpt-hf: step {_final_step(out_dir)}",
                                     ignore_patterns=PUSH_IGNORE)
        except Exception as e:
            msg = first_line(e, 300)
            if config.hub_token:
                msg = msg.replace(config.hub_token, "***")
            raise TrainingError(f"--push_to_hub {config.hub_model_id}: {msg}") from None
        url = str(getattr(info, "commit_url", None) or info)
    accelerator.wait_for_everyone()
    return url


def _final_step(out_dir: Path) -> str:
    try:
        return str(json.loads((out_dir / "train_results.json").read_text())["global_step"])
    except Exception:
        return "?"
