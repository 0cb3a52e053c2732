"""A non-editable install (``pip install .``) works without the source tree: the top-level
``model_cards/`` templates are installed as data files and found there, and package data ships."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from pathlib import Path
import dialogpt, dialogpt_dataset
from dialogpt.cards import ModelCardInfo, find_template_dir, render_model_card
from dialogpt_dataset.card import _template
from dialogpt.decode.safety import load_blocklist
assert "{repo}" not in dialogpt.__file__, dialogpt.__file__
print(find_template_dir())
print(_template())
card = render_model_card(ModelCardInfo(model_name="org/tiny", n_layer=2, n_embd=64, n_head=2, n_positions=256,
                                       vocab_size=1000, num_parameters=1000))
assert "apply_chat_template" in card.text and card.data.pipeline_tag == "text-generation"
print(len(load_blocklist()))
print(sorted(p.name for p in (Path(dialogpt_dataset.__file__).parent / "data" / "dummy").iterdir())[:2])
"""


def test_non_editable_install_finds_card_templates_and_package_data(tmp_path):
    src = tmp_path / "src"  # build from a copy: an in-tree build would leave build/ in the checkout
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "runs", "*.egg-info",
                                                           "__pycache__", ".pytest_cache", ".ruff_cache"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies come from the test environment; its editable dialogpt finder is a .pth of
    # that site dir, which a path added this way does not run, so only the installed copy is importable
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    build = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                            "--no-build-isolation", "--no-cache-dir", str(src)],
                           capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, build.stderr[-2000:]
    shutil.rmtree(src)
    out = subprocess.run([str(py), "-c", PROBE.replace("{repo}", str(REPO))], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    share = venv / "share" / "dialogpt-hf" / "model_cards"
    assert Path(lines[0]) == share and Path(lines[1]) == share / "dataset_card.md"
    assert int(lines[2]) > 10
    assert "RC_2006-01.zst" in lines[3]
