"""``python -m dialogpt.cli <command> [args]``: the console scripts without installing them."""

from __future__ import annotations

import importlib
import sys

COMMANDS = ("train", "eval", "chat", "serve", "convert", "human-eval", "data")


def run(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m dialogpt.cli {{{','.join(COMMANDS)}}} [args]", file=sys.stderr)
        return 2
    module = importlib.import_module(f"dialogpt.cli.{argv[0].replace('-', '_')}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
