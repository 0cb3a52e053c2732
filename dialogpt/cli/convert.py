"""``dialogpt-convert``: an original DialoGPT .pkl checkpoint -> a ``from_pretrained`` folder."""

from __future__ import annotations

import argparse
import sys

from dialogpt.train.model import CheckpointError, convert


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="dialogpt-convert",
        description="Convert an original DialoGPT .pkl checkpoint into a Hugging Face model folder.")
    ap.add_argument("checkpoint", help="the seed's .pkl file (e.g. medium_ft.pkl)")
    ap.add_argument("output_dir", help="folder to write (config.json, model.safetensors, tokenizer)")
    ap.add_argument("--model_config", default="medium",
                    help="tiny|small|medium|large or a config.json path (default: medium)")
    ap.add_argument("--tokenizer_name", default="gpt2",
                    help="tokenizer to save alongside (hub id or dir); '' to skip")
    args = ap.parse_args(argv)
    try:
        out = convert(args.checkpoint, args.output_dir, args.model_config, args.tokenizer_name or None)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"dialogpt-convert: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
