"""Every console script named in setup.cfg is installed and answers --help."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _console_scripts() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = [x.strip() for x in cfg["options.entry_points"]["console_scripts"].splitlines() if x.strip()]
    return dict(tuple(p.strip() for p in line.split("=", 1)) for line in lines)


def test_the_issue_named_entry_points_are_declared():
    names = set(_console_scripts())
    assert {"dialogpt-build-dataset", "dialogpt-train", "dialogpt-eval", "dialogpt-chat", "dialogpt-serve",
            "dialogpt-data"} <= names


@pytest.mark.parametrize("name", sorted(_console_scripts()))
def test_console_script_help(name):
    exe = shutil.which(name, path=str(Path(sys.executable).parent))
    assert exe, f"{name} is not installed next to {sys.executable}: run `make install`"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout.lower()


@pytest.mark.parametrize("script", ["build_dataset.py", "run_clm_dialog.py", "evaluate_multiref.py"])
def test_scripts_help(script):
    out = subprocess.run([sys.executable, str(REPO / "scripts" / script), "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout.lower()


def test_python_m_dialogpt_cli_runs_every_console_command():
    from dialogpt.cli.__main__ import COMMANDS

    declared = {name.removeprefix("dialogpt-") for name in _console_scripts()} - {"build-dataset"}
    assert set(COMMANDS) == declared  # the model side's commands, each reachable without installing
    for command in COMMANDS:
        out = subprocess.run([sys.executable, "-m", "dialogpt.cli", command, "--help"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "usage:" in out.stdout.lower(), (command, out.stderr[-500:])
