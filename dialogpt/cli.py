"""Console entry points. Each one is a thin shim over the module that owns the job, so the
console script, ``python -m`` and ``scripts/*.py`` all run the same parser and code."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

_ENTRY_POINTS = {
    "build_dataset": "dialogpt_dataset.cli",
    "train": "dialogpt.train_cli",
    "eval": "dialogpt.eval_cli",
    "chat": "dialogpt.chat_cli",
    "serve": "dialogpt.server",
    "convert": "dialogpt.checkpoints",
}


def _run(name: str, argv: Sequence[str] | None) -> int:
    module = importlib.import_module(_ENTRY_POINTS[name])
    return int(module.main(list(argv) if argv is not None else None) or 0)


def build_dataset_main(argv: Sequence[str] | None = None) -> int:
    return _run("build_dataset", argv)


def train_main(argv: Sequence[str] | None = None) -> int:
    return _run("train", argv)


def eval_main(argv: Sequence[str] | None = None) -> int:
    return _run("eval", argv)


def chat_main(argv: Sequence[str] | None = None) -> int:
    return _run("chat", argv)


def serve_main(argv: Sequence[str] | None = None) -> int:
    return _run("serve", argv)


def convert_main(argv: Sequence[str] | None = None) -> int:
    return _run("convert", argv)


if __name__ == "__main__":  # python -m dialogpt.cli <command> [args]
    if len(sys.argv) < 2 or sys.argv[1] not in _ENTRY_POINTS:
        print(f"usage: python -m dialogpt.cli {{{','.join(_ENTRY_POINTS)}}} [args]", file=sys.stderr)
        sys.exit(2)
    sys.exit(_run(sys.argv[1], sys.argv[2:]))
