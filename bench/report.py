"""The one way a benchmark ends: its result as one JSON object on stdout (so ``> x.json`` works and
progress goes to stderr), and in ``--output`` when given."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, output: str | None = None) -> int:
    """Print ``result`` (and write it to ``output``); the exit status for ``main`` to return."""
    text = json.dumps(result, indent=1)
    print(text)
    if output:
        Path(output).write_text(text + "\n")
    return 0
