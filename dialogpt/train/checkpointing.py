"""Checkpoint folders of a run: where they go, which one a resume takes, and when old ones go away.

Layout (litgpt's, STYLE.md #9): ``OUTPUT_DIR/checkpoints/step-NNNNNN/`` holds Accelerate's
``save_state`` (model, optimizer, scheduler, RNG states) plus ``trainer_state.json`` (the loop's
position) and ``hyperparameters.yaml`` (the run's config, token redacted). A folder is written under
a ``.tmp-`` name and renamed in when complete, so ``latest`` never picks a half-written one.

Also here: the refusal to mix a fresh run with an old one in the same ``--output_dir``, and the
launcher/DeepSpeed settings that must agree with the flags before the first step.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from dialogpt.errors import first_line
from dialogpt.train.config import TrainConfig, TrainingError
from dialogpt.train.manifest import Verdict, verify_checkpoint, write_manifest

CHECKPOINT_RE = re.compile(r"^step-(\d{6,})$")
RUN_FILES = ("train_log.txt", "eval_log.txt")
RUN_DIRS = ("checkpoints", "runs")
TMP_PREFIX = ".tmp-"          # a save in progress: renamed to step-NNNNNN when complete
TRASH_PREFIX = ".deleting-"   # an old checkpoint being removed by --save_total_limit


@dataclass
class TrainState:
    """The loop's position; saved as ``trainer_state.json`` next to every ``save_state``."""

    global_step: int = 0
    micro_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    epoch_loss_sum: float = 0.0
    epoch_ppl_sum: float = 0.0
    epoch_steps: int = 0
    epoch_time: float = 0.0
    tokens_real: int = 0
    tokens_total: int = 0
    last_eval_loss: float | None = None
    last_eval_ppl: float | None = None
    #: the validation figures before the first step (--eval_on_start)
    initial_eval_loss: float | None = None
    initial_eval_ppl: float | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> TrainState:
        d = json.loads(text)
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


# ----------------------------------------------------------------------------------------------
# finding checkpoints
# ----------------------------------------------------------------------------------------------

def checkpoint_root(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """``step-NNNNNN`` folders, oldest first (complete ones only: a folder is renamed in when fully written)."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


@dataclass
class ResumePoint:
    """The checkpoint a run continues from, and what the user must be told about the choice."""

    path: Path
    exact: bool = True
    notes: list[str] = dataclasses.field(default_factory=list)


def find_resume_path(output_dir: str | os.PathLike, resume: str | None,
                     allow_inexact: bool = False) -> ResumePoint | None:
    """latest -> the newest checkpoint that verifies (error if none); auto -> the same or None; else a path.

    ``latest``/``auto`` skip damaged checkpoints, saying which and why; a PATH that does not verify is
    a one-line error naming the damaged file. Missing RNG state is accepted only with ``allow_inexact``.
    """
    if not resume:
        return None
    if resume not in ("latest", "auto"):
        p = Path(resume)
        if not (p / "trainer_state.json").is_file():
            raise TrainingError(f"--resume_from_checkpoint {p}: not a checkpoint folder (no trainer_state.json)")
        verdict = verify_checkpoint(p)
        if not verdict.usable(allow_inexact):
            raise TrainingError(f"--resume_from_checkpoint {p}: {_refusal(verdict)}")
        return _resume_point(p, verdict, [])
    notes: list[str] = []
    ckpts = list_checkpoints(output_dir)
    for i in range(len(ckpts) - 1, -1, -1):
        verdict = verify_checkpoint(ckpts[i])
        if verdict.usable(allow_inexact):
            if notes:
                notes.append(f"resuming from {ckpts[i].name}, the newest checkpoint that verifies")
            notes += [f"ignoring damaged older checkpoint {old.name}: {v.first()}"
                      for old in ckpts[:i] if not (v := verify_checkpoint(old)).ok]
            return _resume_point(ckpts[i], verdict, notes)
        notes.append(f"skipping checkpoint {ckpts[i].name}: {_refusal(verdict)}")
    if resume == "auto" and not notes:
        return None
    where = checkpoint_root(output_dir)
    raise TrainingError(f"--resume_from_checkpoint {resume}: no step-NNNNNN checkpoint in {where}" if not notes
                        else f"--resume_from_checkpoint {resume}: no checkpoint in {where} verifies ({notes[0]})")


def _refusal(verdict: Verdict) -> str:
    if verdict.problems:
        return verdict.problems[0]
    return (f"{verdict.rng_problems[0]}: without RNG state the resume is not exact (other dropout masks than "
            "an uninterrupted run); pass --allow_inexact_resume to go on anyway")


def _resume_point(path: Path, verdict: Verdict, notes: list[str]) -> ResumePoint:
    if verdict.rng_problems:
        notes = notes + [f"resume from {path.name} is NOT exact: {verdict.rng_problems[0]} (--allow_inexact_resume); "
                         "losses will differ from an uninterrupted run"]
    return ResumePoint(path=path, exact=not verdict.rng_problems, notes=notes)


def clean_leftovers(output_dir: str | os.PathLike) -> list[str]:
    """Remove what a killed run left half-written (``.tmp-step-*``) or half-deleted (``.deleting-step-*``).

    Neither is ever taken for a checkpoint (their names do not match ``step-NNNNNN``); they only
    waste disk. Returns the removed names so the caller can report them. Main process only.
    """
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    gone = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith((TMP_PREFIX, TRASH_PREFIX)))
    for name in gone:
        shutil.rmtree(root / name, ignore_errors=True)
    return gone


def check_checkpoint_fits(model, checkpoint: Path, model_flag: str = "the model options") -> None:
    """Refuse (one line, before any data work) to resume a checkpoint saved from another model shape.

    Reads only the shapes in the checkpoint's ``model.safetensors`` header; FSDP/DeepSpeed shard
    folders have none and are left to ``load_state``.
    """
    f = Path(checkpoint) / "model.safetensors"
    if not f.is_file():
        return
    from safetensors import safe_open

    try:
        with safe_open(str(f), framework="pt") as st:
            theirs = {k: tuple(st.get_slice(k).get_shape()) for k in st.keys()}
    except Exception as e:
        raise TrainingError(f"--resume_from_checkpoint {checkpoint}: unreadable model.safetensors "
                            f"({first_line(e)})") from None
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    bad = [f"{k}: checkpoint {theirs[k]} vs model {own[k]}" for k in theirs if k in own and theirs[k] != own[k]]
    unexpected = [k for k in theirs if k not in own]
    if bad or unexpected:
        detail = "; ".join(bad[:2]) if bad else f"unexpected weights {unexpected[:3]}"
        raise TrainingError(f"--resume_from_checkpoint {checkpoint} was saved from another model shape than "
                            f"{model_flag} gives: {detail}")


# ----------------------------------------------------------------------------------------------
# the output folder of a fresh run
# ----------------------------------------------------------------------------------------------

def existing_run(output_dir: str | os.PathLike) -> str | None:
    """What another run left in ``output_dir`` (checkpoints, or a log with step lines), else None."""
    out = Path(output_dir)
    ckpts = list_checkpoints(out)
    if ckpts:
        return f"checkpoints up to {ckpts[-1].name}"
    log = out / "train_log.txt"
    if log.is_file() and sum(1 for _ in log.open()) > 1:
        return "a train_log.txt with step lines"
    return None


def prepare_fresh_output_dir(accelerator, output_dir: str | os.PathLike, overwrite: bool) -> None:
    """A fresh run must not append to another run's logs, nor let its old checkpoints be taken for
    ``latest`` or survive ``--save_total_limit`` instead of the new ones: refuse, or with
    ``overwrite`` delete just what a run writes here (logs, ``checkpoints/``, ``runs/``)."""
    found = existing_run(output_dir)
    if found is None:
        return
    out = Path(output_dir)
    if not overwrite:
        raise TrainingError(f"--output_dir {out} already holds a run ({found}): pass --resume_from_checkpoint "
                            "latest to continue it, --overwrite_output_dir to start over, or another --output_dir")
    accelerator.wait_for_everyone()  # every rank has looked before the main one deletes
    if accelerator.is_main_process:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        for name in RUN_DIRS:
            shutil.rmtree(out / name, ignore_errors=True)
    accelerator.wait_for_everyone()


def truncate_log(path: Path, max_step: int) -> None:
    """Drop lines a killed run wrote after the checkpoint we resume from (steps > max_step)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    keep = [ln for ln in lines if not ln[:1].isdigit() or int(ln.split(",")[1]) <= max_step]
    path.write_text("".join(x + "\n" for x in keep))


# ----------------------------------------------------------------------------------------------
# saving
# ----------------------------------------------------------------------------------------------

def write_hyperparameters(path: Path, config: TrainConfig, extra: dict | None = None) -> None:
    """The run's config (token redacted) so any run can be repeated from its folder."""
    import yaml

    d = config.to_dict(redact=True)
    if extra:
        d.update(extra)
    path.write_text(yaml.safe_dump(d, sort_keys=False))


def save_checkpoint(accelerator, output_dir: str, state: TrainState, config: TrainConfig,
                    save_total_limit: int | None) -> Path:
    """``accelerator.save_state`` into a temporary folder, the manifest last, then an atomic rename.

    A run killed mid-save leaves only a ``.tmp-`` folder, which ``latest`` never picks. Old
    checkpoints are rotated out only once the new one verifies against its manifest.
    """
    root = checkpoint_root(output_dir)
    final = root / f"step-{state.global_step:06d}"
    tmp = root / f"{TMP_PREFIX}step-{state.global_step:06d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))  # every rank writes its RNG state; main writes the rest
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "trainer_state.json").write_text(state.to_json())
        write_hyperparameters(tmp / "hyperparameters.yaml", config)
        write_manifest(tmp)
        if final.exists():
            _remove_checkpoint(final)
        os.replace(tmp, final)
        verdict = verify_checkpoint(final)
        if not verdict.ok:  # the disk lost what was just written: keep every older checkpoint
            raise TrainingError(f"checkpoint {final} does not verify right after saving: {verdict.first()}")
        if save_total_limit:
            for old in list_checkpoints(output_dir)[:-save_total_limit]:
                _remove_checkpoint(old)
    accelerator.wait_for_everyone()
    return final


def _remove_checkpoint(folder: Path) -> None:
    """Rename out of the ``step-NNNNNN`` namespace first, then delete: a kill mid-delete leaves a
    ``.deleting-`` folder that no resume can mistake for a checkpoint (:func:`clean_leftovers`)."""
    trash = folder.with_name(TRASH_PREFIX + folder.name)
    if trash.exists():
        shutil.rmtree(trash)
    os.replace(folder, trash)
    _delete_tree(trash)


def _delete_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# launcher settings that must agree with the flags
# ----------------------------------------------------------------------------------------------

def sync_accelerate_config(accelerator, config: TrainConfig) -> None:
    """Make the launcher's settings and the script's flags agree, or stop with one line.

    ``accelerate launch`` exports ``ACCELERATE_GRADIENT_ACCUMULATION_STEPS`` (a DeepSpeed config's
    ``gradient_accumulation_steps``, or the user's environment), which silently overrides the value
    passed to ``Accelerator``; the micro-batch size (``train_batch_size / accumulation``) would then
    no longer mean what the flags say. Under DeepSpeed, clipping is done by the engine: its
    ``gradient_clipping`` is taken from ``--max_grad_norm`` and ``train_micro_batch_size_per_gpu``
    from the micro-batch size when the config leaves them ``auto``.
    """
    got = accelerator.gradient_accumulation_steps
    if got != config.gradient_accumulation_steps:
        raise TrainingError(
            f"the accelerate launch config / ACCELERATE_GRADIENT_ACCUMULATION_STEPS sets gradient accumulation "
            f"to {got} but --gradient_accumulation_steps is {config.gradient_accumulation_steps}: make them equal "
            "(or drop gradient_accumulation_steps from the accelerate config)")
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is not None:
        _sync_deepspeed(plugin.deepspeed_config, config)


def _sync_deepspeed(ds: dict, config: TrainConfig) -> None:
    _fill_or_check(ds, "gradient_accumulation_steps", config.gradient_accumulation_steps,
                   "--gradient_accumulation_steps", fill=False)
    # our loaders use a batch_sampler (batch_size None), from which Accelerate cannot fill DeepSpeed's "auto"
    _fill_or_check(ds, "train_micro_batch_size_per_gpu", config.micro_batch_size,
                   "--train_batch_size / --gradient_accumulation_steps =")
    _fill_or_check(ds, "gradient_clipping", config.max_grad_norm, "--max_grad_norm")


def _fill_or_check(ds: dict, key: str, ours: float, flag: str, fill: bool = True) -> None:
    """DeepSpeed's ``key``: ``"auto"`` (or absent) becomes ours when ``fill`` (Accelerate fills the
    others); any other value must equal ours, or the run would train with a setting nobody asked for."""
    value = ds.get(key, "auto")
    if value == "auto":
        if fill:
            ds[key] = ours
        return
    try:
        same = float(value) == ours
    except (TypeError, ValueError):
        raise TrainingError(f"the DeepSpeed config's {key} must be a number or auto, got {value!r}") from None
    if not same:
        raise TrainingError(f"the DeepSpeed config's {key} {value} differs from {flag} {ours}: "
                            "make them equal or set it to auto")
