"""``dialogpt-human-eval``: blind pairwise human evaluation, the seed's "A wins / ties / B wins" tables.

    dialogpt-human-eval serve --contexts test.ctx.txt --a medium.hyp.txt --b human.hyp.txt --store votes.sqlite
    dialogpt-human-eval report votes.sqlite            # markdown table; --json for the raw numbers

``serve`` shows each judge one context and the two responses in a random order (drawn per judge x
item and stored), with the seed's three questions and a tie option; votes are committed to SQLite
as they are cast, so stopping the server (or a crash) loses nothing and a judge can come back
later. Several judges may use the page at once; nobody sees an item twice; each item is shown to at
most ``--judges-per-item`` judges (3, as in the seed). ``report`` works while judging goes on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from dialogpt.cli.conversation_args import add_conversation_args, options_from_args
from dialogpt.serve.human_eval_app import HumanEvalConfig, serve_human_eval
from dialogpt.serve.human_eval_inputs import HumanEvalInputError, load_inputs
from dialogpt.serve.human_eval_report import format_report, report_dict
from dialogpt.serve.human_eval_store import VoteStore


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dialogpt-human-eval", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the judges' web page")
    s.add_argument("--contexts", required=True, help="one context per line, turns joined by ' EOS ' "
                   "(a test.refs.txt works: only its first column is read), or a dialogue file (.jsonl, .json, "
                   ".csv, .parquet, .arrow; any layout dialogpt-train reads): one context per dialogue")
    s.add_argument("--a", required=True, help="system A's responses, one per context line")
    s.add_argument("--b", required=True, help="system B's responses, one per context line")
    s.add_argument("--store", required=True, help="SQLite vote file (created if missing; reusing it for "
                   "other inputs is refused)")
    s.add_argument("--judges-per-item", type=int, default=3, help="show each item to at most this many "
                   "judges (default 3, as the seed; 0 = no limit); an item shown to a judge who never "
                   "answered still counts")
    s.add_argument("--host", default="127.0.0.1", help="interface to listen on (default loopback)")
    s.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    s.add_argument("--title", default=HumanEvalConfig.title, help="heading shown to judges")
    add_conversation_args(s, dataset_config=False)
    r = sub.add_parser("report", help="print the A wins / ties / B wins table of a vote store")
    r.add_argument("store", help="the SQLite vote file written by 'serve'")
    r.add_argument("--json", action="store_true", help="print the numbers as JSON instead of a table")
    return p


def _serve(args: argparse.Namespace) -> int:
    if args.judges_per_item < 0:
        raise HumanEvalInputError(f"--judges-per-item must be >= 0, got {args.judges_per_item}")
    if not 0 < args.port < 65536:
        raise HumanEvalInputError(f"--port must be in 1..65535, got {args.port}")
    try:
        options = options_from_args(args)
    except ValueError as e:  # a bad --user_roles etc.: the options' own one-line message
        raise HumanEvalInputError(str(e)) from None
    inputs = load_inputs(args.contexts, args.a, args.b, options)
    if inputs.contexts_note:
        print(f"dialogpt-human-eval: {inputs.contexts_note}", file=sys.stderr)
    store = VoteStore.create_or_open(args.store, inputs, judges_per_item=args.judges_per_item or None)
    serve_human_eval(store, HumanEvalConfig(host=args.host, port=args.port, title=args.title))
    return 0


def _report(args: argparse.Namespace) -> int:
    store = VoteStore.open(args.store)
    meta, votes = store.meta(), store.votes()
    if args.json:
        print(json.dumps(report_dict(meta, votes), indent=2))
    else:
        print(format_report(meta, votes))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _serve(args) if args.command == "serve" else _report(args)
    except HumanEvalInputError as e:
        print(f"dialogpt-human-eval: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
