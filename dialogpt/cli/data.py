"""``dialogpt-data prepare``: inspect the user's dialogues and convert them to a loadable, pushable dataset.

    dialogpt-data prepare chats.jsonl --tokenizer microsoft/DialoGPT-medium          # the figures only
    dialogpt-data prepare chats.jsonl --tokenizer gpt2 --validation_split_percentage 5 --output ./my-chats
    dialogpt-data prepare script.csv --train_on ALICE --output ./alice --push-to-hub me/alice --private
    dialogpt-train --dataset ./my-chats --model_name_or_path microsoft/DialoGPT-medium ...

Flags -> :class:`dialogpt.train.prepare.PrepareConfig` -> :func:`dialogpt.train.prepare.prepare`; the
figures on stdout (``--json``: as one JSON object), the reader's detection line first.
"""

from __future__ import annotations

import argparse
import json
import sys

from dialogpt.cli.conversation_args import add_conversation_args, options_from_args
from dialogpt.conversations import ConversationError
from dialogpt.errors import first_line
from dialogpt.train.prepare import PrepareConfig, PrepareError, prepare
from dialogpt.train.prepare_stats import describe


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (``error: ...``, exit 2) like every other mistake here."""

    def error(self, message: str):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, except the empty ones (None, False) and those the text already states."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _prepare_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "prepare", help="print the figures of dialogue files (and write/push them as a Parquet dataset)",
        description="Read dialogues (any layout dialogpt-train reads), print what training would make of them "
                    "(dialogues, turns, tokens per turn, windows at --max_seq_length, turns trained under "
                    "--train_on, skips: the same figures as dialogpt-train's data_coverage), and with --output "
                    "write a Parquet dataset (dialogue_id, turns, messages) with a dataset card that "
                    "load_dataset(DIR) and dialogpt-train --dataset DIR read.",
        formatter_class=_Help)
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="dialogue files of one type and layout (.jsonl .json .csv .parquet .arrow .tsv)")
    p.add_argument("--dataset", help="a folder or Hub id instead of FILE...")
    p.add_argument("--split", default="train", help="the split of --dataset to read (its 'validation' split, if "
                   "any, is read as validation, as dialogpt-train does)")
    p.add_argument("--output", help="write the dataset folder here (data/*.parquet, README.md, prepare_stats.json)")
    p.add_argument("--overwrite", action="store_true", help="write into an --output that is not empty")
    p.add_argument("--tokenizer", help="tokenizer name or folder (the model's you will fine-tune): token figures, "
                   "windows and trained turns need it")
    p.add_argument("--max_seq_length", "--max-seq-length", type=int, default=128,
                   help="tokens per training example (as dialogpt-train's): a longer dialogue becomes several windows")
    p.add_argument("--train_on", "--train-on", default="all",
                   help="all (every turn after the first, DialoGPT), assistant, or a speaker's name")
    p.add_argument("--validation_split_percentage", "--validation-split-percentage", type=float,
                   help="hold out this percent of the dialogues (whole) as the validation split")
    p.add_argument("--seed", type=int, default=42, help="seed of the held-out choice (the same as dialogpt-train's)")
    p.add_argument("--push-to-hub", "--push_to_hub", dest="push_to_hub", metavar="ORG/NAME",
                   help="upload the folder as a Hub dataset repo (token: HF_TOKEN or `hf auth login`)")
    p.add_argument("--private", action="store_true", help="create the Hub repo private")
    p.add_argument("--license", help="the dialogues' licence id for the card (default: other, terms unknown)")
    p.add_argument("--num_proc", "--num-proc", type=int, help="processes for datasets.map")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    add_conversation_args(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="dialogpt-data", description="Inspect and convert dialogue data.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{prepare}")
    _prepare_parser(sub)
    return p


def config_from_args(args: argparse.Namespace) -> PrepareConfig:
    return PrepareConfig(
        files=args.files, dataset=args.dataset, dataset_config=args.dataset_config, split=args.split,
        output=args.output, overwrite=args.overwrite, tokenizer=args.tokenizer, max_seq_length=args.max_seq_length,
        train_on=args.train_on, validation_split_percentage=args.validation_split_percentage, seed=args.seed,
        push_to_hub=args.push_to_hub, private=args.private, license=args.license, options=options_from_args(args),
        num_proc=args.num_proc)


def _print_result(result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    print(describe(result.stats))
    if result.output_dir:
        names = ", ".join(p for ps in result.files.values() for p in ps)
        print(f"wrote {result.output_dir}: {names}, README.md, prepare_stats.json")
    if result.hub_url:
        print(f"pushed: {result.hub_url}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = prepare(config_from_args(args))
    except (PrepareError, ConversationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:  # a file that vanished, a dataset datasets cannot read
        print(f"error: {first_line(e, 300)}", file=sys.stderr)
        return 2
    _print_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
