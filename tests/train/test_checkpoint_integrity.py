"""Damaged checkpoints (issue 18): every damaged part gives its documented one-line outcome.

* missing RNG state -> refused, naming the file and --allow_inexact_resume; with the flag the run
  goes on and says the resume is NOT exact;
* truncated optimizer.bin -> a PATH resume is one line naming the file; ``latest`` falls back to the
  newest checkpoint that verifies and says so (and then continues exactly);
* a kill while rotation deletes an old checkpoint -> the half-deleted folder is never taken for a
  checkpoint and is removed (and reported) on the next start;
* a file changed after the save (manifest mismatch) -> one line naming the file;
* a real ``kill -9`` between steps, mid-save, right after the rename and mid-rotation -> ``latest``
  continues with bit-identical losses (and removes what the kill left).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from train_helpers import Killed, base_config, write_parquet_dataset

from dialogpt.cli.train import main
from dialogpt.train import checkpointing
from dialogpt.train.checkpointing import TrainState, list_checkpoints, save_checkpoint
from dialogpt.train.config import TrainingError
from dialogpt.train.loop import train
from dialogpt.train.manifest import MANIFEST, verify_checkpoint, write_manifest

COMMON = dict(num_optim_steps=6, save_steps=2, lr_schedule="None", learning_rate=1e-3)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return write_parquet_dataset(tmp_path_factory.mktemp("integrity_ds"), n_train=16, n_valid=4)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, ds, tokenizer_dir):
    """One uninterrupted 6-step run with checkpoints at steps 2, 4 and 6."""
    root = tmp_path_factory.mktemp("integrity_base")
    res = train(base_config(root, ds, tokenizer_dir, **COMMON))
    return root / "run", res.loss_history


def _copy(base_run, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(base_run[0], out)
    return out


def _cli(ds, tokenizer_dir, out, *extra) -> list[str]:
    return ["--dataset", str(ds), "--model_config", "tiny", "--tokenizer_name", str(tokenizer_dir),
            "--output_dir", str(out), "--max_seq_length", "64", "--no-pbar", "--num_optim_steps", "8",
            "--save_steps", "2", "--lr_schedule", "None", *extra]


def _one_line_error(capsys, rc, *needles) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_the_manifest_is_written_last_and_lists_every_file(base_run):
    out, _ = base_run
    for ckpt in list_checkpoints(out):
        listed = json.loads((ckpt / MANIFEST).read_text())["files"]
        on_disk = {p.relative_to(ckpt).as_posix() for p in ckpt.rglob("*") if p.is_file() and p.name != MANIFEST}
        assert set(listed) == on_disk and {"optimizer.bin", "random_states_0.pkl", "trainer_state.json"} <= on_disk
        assert all(listed[n]["size"] == (ckpt / n).stat().st_size for n in listed)
        assert listed["trainer_state.json"]["sha256"] and listed["random_states_0.pkl"]["sha256"]
        newest_other = max((ckpt / n).stat().st_mtime_ns for n in listed)
        assert (ckpt / MANIFEST).stat().st_mtime_ns >= newest_other
        assert verify_checkpoint(ckpt).ok


def test_missing_rng_state_is_refused_unless_allow_inexact_resume(base_run, tmp_path, ds, tokenizer_dir, capsys):
    out = _copy(base_run, tmp_path)
    step6 = out / "checkpoints" / "step-000006"
    (step6 / "random_states_0.pkl").unlink()
    rc = main(_cli(ds, tokenizer_dir, out, "--resume_from_checkpoint", str(step6)))
    _one_line_error(capsys, rc, "random_states_0.pkl is missing", "not exact", "--allow_inexact_resume")
    res = train(base_config(tmp_path, ds, tokenizer_dir, **{**COMMON, "num_optim_steps": 8},
                            resume_from_checkpoint=str(step6), allow_inexact_resume=True))
    printed = capsys.readouterr().out
    assert res.global_step == 8 and len(res.loss_history) == 2
    assert "resume from step-000006 is NOT exact: random_states_0.pkl is missing" in printed
    assert "(NOT exact: no RNG state, --allow_inexact_resume)" in printed


def test_truncated_optimizer_is_one_line_and_latest_falls_back_to_a_checkpoint_that_verifies(
        base_run, tmp_path, ds, tokenizer_dir, capsys):
    out = _copy(base_run, tmp_path)
    opt = out / "checkpoints" / "step-000006" / "optimizer.bin"
    size = opt.stat().st_size
    opt.write_bytes(opt.read_bytes()[: size // 2])
    rc = main(_cli(ds, tokenizer_dir, out, "--resume_from_checkpoint", str(opt.parent)))
    _one_line_error(capsys, rc, f"optimizer.bin has {size // 2} bytes but manifest.json says {size}")
    # latest: the newest checkpoint that verifies (step 4), said out loud, and an exact continuation from it
    res = train(base_config(tmp_path, ds, tokenizer_dir, resume_from_checkpoint="latest", **COMMON))
    printed = capsys.readouterr().out
    assert "skipping checkpoint step-000006: optimizer.bin has" in printed
    assert "resuming from step-000004, the newest checkpoint that verifies" in printed
    assert res.loss_history == base_run[1][4:]


def test_a_truncated_optimizer_the_manifest_cannot_see_is_still_one_line(base_run, tmp_path, ds, tokenizer_dir,
                                                                         capsys):
    out = _copy(base_run, tmp_path)
    opt = out / "checkpoints" / "step-000006" / "optimizer.bin"
    opt.write_bytes(opt.read_bytes()[:1000])
    write_manifest(opt.parent)  # as if truncated before the save finished: the manifest agrees
    rc = main(_cli(ds, tokenizer_dir, out, "--resume_from_checkpoint", str(opt.parent)))
    _one_line_error(capsys, rc, f"--resume_from_checkpoint {opt.parent}: cannot load it (")


def test_a_file_changed_after_the_save_is_one_line_naming_it(base_run, tmp_path, ds, tokenizer_dir, capsys):
    out = _copy(base_run, tmp_path)
    step6 = out / "checkpoints" / "step-000006"
    state = (step6 / "trainer_state.json").read_text()
    assert '"global_step": 6' in state
    (step6 / "trainer_state.json").write_text(state.replace('"global_step": 6', '"global_step": 9'))  # same size
    rc = main(_cli(ds, tokenizer_dir, out, "--resume_from_checkpoint", str(step6)))
    _one_line_error(capsys, rc, "trainer_state.json does not match its SHA-256 in manifest.json")
    (step6 / MANIFEST).unlink()
    rc = main(_cli(ds, tokenizer_dir, out, "--resume_from_checkpoint", str(step6)))
    _one_line_error(capsys, rc, "manifest.json is missing")


def test_a_kill_during_rotation_leaves_nothing_a_resume_could_take_and_the_next_start_cleans_up(
        base_run, tmp_path, ds, tokenizer_dir, capsys, monkeypatch):
    def killed_mid_delete(path: Path) -> None:
        (path / "model.safetensors").unlink()  # part of the old checkpoint is gone, then the kill
        raise Killed()

    monkeypatch.setattr(checkpointing, "_delete_tree", killed_mid_delete)
    with pytest.raises(Killed):  # at step 4, rotating out step 2 (save_total_limit 1)
        train(base_config(tmp_path, ds, tokenizer_dir, save_total_limit=1, **COMMON))
    monkeypatch.undo()
    root = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == [".deleting-step-000002", "step-000004"]
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step-000004"]
    # an older half-deleted folder under a checkpoint name (as older versions left them): ignored, reported
    shutil.copytree(root / "step-000004", root / "step-000001")
    (root / "step-000001" / "model.safetensors").unlink()
    capsys.readouterr()
    res = train(base_config(tmp_path, ds, tokenizer_dir, save_total_limit=1, resume_from_checkpoint="latest",
                            **COMMON))
    printed = capsys.readouterr().out
    assert "removed .deleting-step-000002, left half-written or half-deleted by a killed run" in printed
    assert "ignoring damaged older checkpoint step-000001: model.safetensors is missing" in printed
    assert res.loss_history == base_run[1][4:]                       # exact from step 4
    assert sorted(p.name for p in root.iterdir()) == ["step-000006"]


def test_old_checkpoints_are_deleted_only_after_the_new_one_verifies(tmp_path, ds, tokenizer_dir, monkeypatch):
    def save_state(folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "optimizer.bin").write_bytes(b"x" * 100)
        (Path(folder) / "random_states_0.pkl").write_bytes(b"rng")

    acc = SimpleNamespace(is_main_process=True, wait_for_everyone=lambda: None, save_state=save_state)
    cfg = base_config(tmp_path, ds, tokenizer_dir)
    out = str(tmp_path / "run")
    save_checkpoint(acc, out, TrainState(global_step=1), cfg, save_total_limit=1)
    real = checkpointing.write_manifest

    def then_the_disk_loses_a_byte(folder):
        real(folder)
        (Path(folder) / "optimizer.bin").write_bytes(b"x" * 99)

    monkeypatch.setattr(checkpointing, "write_manifest", then_the_disk_loses_a_byte)
    with pytest.raises(TrainingError, match="step-000002 does not verify right after saving: optimizer.bin has 99"):
        save_checkpoint(acc, out, TrainState(global_step=2), cfg, save_total_limit=1)
    assert (tmp_path / "run" / "checkpoints" / "step-000001").is_dir()     # the good one was kept
    assert verify_checkpoint(tmp_path / "run" / "checkpoints" / "step-000001").ok


KILLER = '''
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from train_helpers import base_config
from dialogpt.train import checkpointing
from dialogpt.train.loop import train

point, root, ds, tok = sys.argv[1:5]


def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)


callback = None
if point == "step":                      # between two steps, one step after the checkpoint of step 2
    callback = lambda state: die() if state.global_step == 3 else None
elif point == "mid_save":                # save_state done, manifest not yet written, folder still .tmp-
    real_manifest = checkpointing.write_manifest
    checkpointing.write_manifest = lambda f: die() if "step-000004" in str(f) else real_manifest(f)
elif point == "after_rename":            # step-000004 renamed in, not yet verified, step-000002 not yet rotated out
    real_verify = checkpointing.verify_checkpoint
    checkpointing.verify_checkpoint = lambda f: die() if str(f).endswith("step-000004") else real_verify(f)
elif point == "mid_delete":              # rotating step-000002 out: part of it deleted
    checkpointing._delete_tree = lambda p: ((p / "model.safetensors").unlink(), die())
train(base_config(Path(root), ds, tok, save_total_limit=1, **{common!r}), step_callback=callback)
'''


@pytest.mark.slow
@pytest.mark.parametrize("point, resumed_at, leftover", [
    ("step", 2, None), ("mid_save", 2, ".tmp-step-000004"), ("after_rename", 4, None),
    ("mid_delete", 4, ".deleting-step-000002"),
])
def test_kill_9_anywhere_then_latest_resumes_with_identical_losses(base_run, tmp_path, ds, tokenizer_dir, capsys,
                                                                     point, resumed_at, leftover):
    import subprocess
    import sys

    script = tmp_path / "killed_run.py"
    script.write_text(KILLER.format(tests=str(Path(__file__).resolve().parents[1]), common=COMMON))
    proc = subprocess.run([sys.executable, str(script), point, str(tmp_path), str(ds), str(tokenizer_dir)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]                 # really SIGKILLed, no cleanup ran
    root = tmp_path / "run" / "checkpoints"
    if leftover:
        assert (root / leftover).is_dir()
    res = train(base_config(tmp_path, ds, tokenizer_dir, save_total_limit=1, resume_from_checkpoint="latest",
                            **COMMON))
    printed = capsys.readouterr().out
    assert f"resumed from                 = {root / f'step-{resumed_at:06d}'}" in printed
    assert res.loss_history == base_run[1][resumed_at:]                # bit-identical continuation
    if leftover:
        assert f"removed {leftover}" in printed
    assert sorted(p.name for p in root.iterdir()) == ["step-000006"]
