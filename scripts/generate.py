#!/usr/bin/env python
"""Batch generation for a test set: one hypothesis per line, ready for evaluate_multiref.py.

    python scripts/generate.py runs/medium --input reddit-dialog/test.refs.txt --output runs/medium/test.hyp.txt
    python scripts/generate.py microsoft/DialoGPT-medium --input ./reddit-dialog --split test --output hyp.txt

Same flags as ``dialogpt-chat`` (decoding, --reverse-model, --ranker, ...): this is its batch mode.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dialogpt.cli.chat import main  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a in ("-h", "--help") for a in argv) and not any(a.startswith("--input") for a in argv):
        print("error: scripts/generate.py needs --input CONTEXTS and --output HYP", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(argv))
