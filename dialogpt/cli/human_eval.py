"""``dialogpt-human-eval``: blind pairwise human evaluation, the seed's "A wins / ties / B wins" tables.

    dialogpt-human-eval invite --contexts test.ctx.txt --a medium.hyp.txt --b human.hyp.txt --store votes.sqlite \\
        --judges 3 --base-url http://eval-host:8001     # one secret link per judge (shown once)
    dialogpt-human-eval serve --contexts test.ctx.txt --a medium.hyp.txt --b human.hyp.txt --store votes.sqlite
    dialogpt-human-eval report votes.sqlite            # markdown table; --json for the raw numbers

``invite`` makes one link per judge, each with its own secret token (the store keeps only its
SHA-256); ``serve`` accepts votes only through those links, one judge per link, unless ``--open``
lets judges type a name instead (trusted rooms: one person could vote under many names). It shows
each judge one context and the two responses in a random order (drawn per judge x item and
stored), with the seed's three questions and a tie option; votes are committed to SQLite as they
are cast, so stopping the server (or a crash) loses nothing and a judge can come back later.
Nobody sees an item twice; each item is shown to at most ``--judges-per-item`` judges (3, as in the
seed). ``report`` works while judging goes on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from dialogpt.cli.conversation_args import add_conversation_args, options_from_args
from dialogpt.serve.hosts import is_loopback
from dialogpt.serve.human_eval_app import HumanEvalConfig, serve_human_eval
from dialogpt.serve.human_eval_inputs import HumanEvalInputError, load_inputs
from dialogpt.serve.human_eval_report import format_report, report_dict
from dialogpt.serve.human_eval_store import VoteStore


def _add_inputs(p: argparse.ArgumentParser, required: bool) -> None:
    when = "" if required else " (optional here: creates a missing --store, or is checked against it)"
    p.add_argument("--contexts", required=required, help="one context per line, turns joined by ' EOS ' "
                   "(a test.refs.txt works: only its first column is read), or a dialogue file (.jsonl, .json, "
                   ".csv, .parquet, .arrow; any layout dialogpt-train reads): one context per dialogue" + when)
    p.add_argument("--a", required=required, help="system A's responses, one per context line" + when)
    p.add_argument("--b", required=required, help="system B's responses, one per context line" + when)
    p.add_argument("--store", required=True, help="SQLite vote file (created if missing; reusing it for "
                   "other inputs is refused)")
    add_conversation_args(p, dataset_config=False)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dialogpt-human-eval", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the judges' web page")
    _add_inputs(s, required=True)
    s.add_argument("--judges-per-item", type=int, default=3, help="show each item to at most this many "
                   "judges (default 3, as the seed; 0 = no limit); an item shown to a judge who never "
                   "answered still counts")
    s.add_argument("--open", action="store_true", help="also let judges type a name instead of using a link "
                   "from 'invite' (one person could vote under many names: trusted rooms only)")
    s.add_argument("--host", default="127.0.0.1", help="interface to listen on (default loopback)")
    s.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    s.add_argument("--title", default=HumanEvalConfig.title, help="heading shown to judges")
    i = sub.add_parser("invite", help="make one secret judge link per judge (printed once: judge id, TAB, link)")
    _add_inputs(i, required=False)
    i.add_argument("--judges", type=int, required=True, help="how many new judge links to make")
    i.add_argument("--base-url", default="http://127.0.0.1:8001", help="where judges reach 'serve' "
                   "(default http://127.0.0.1:8001); the token goes after '#', so it is never sent in a URL")
    r = sub.add_parser("report", help="print the A wins / ties / B wins table of a vote store")
    r.add_argument("store", help="the SQLite vote file written by 'serve'")
    r.add_argument("--json", action="store_true", help="print the numbers as JSON instead of a table")
    return p


def _inputs(args: argparse.Namespace):
    """--contexts/--a/--b read with the dialogue-file flags (a bad --user_roles etc. is the options' own line)."""
    try:
        options = options_from_args(args)
    except ValueError as e:
        raise HumanEvalInputError(str(e)) from None
    inputs = load_inputs(args.contexts, args.a, args.b, options)
    if inputs.contexts_note:
        print(f"dialogpt-human-eval: {inputs.contexts_note}", file=sys.stderr)
    return inputs


def _serve(args: argparse.Namespace) -> int:
    if args.judges_per_item < 0:
        raise HumanEvalInputError(f"--judges-per-item must be >= 0, got {args.judges_per_item}")
    if not 0 < args.port < 65536:
        raise HumanEvalInputError(f"--port must be in 1..65535, got {args.port}")
    store = VoteStore.create_or_open(args.store, _inputs(args), judges_per_item=args.judges_per_item or None)
    if not args.open and not store.linked_judges():
        raise HumanEvalInputError(f"--store {args.store} has no judge links: run 'dialogpt-human-eval invite "
                                  f"--store {args.store} --judges N' first, or pass --open to let judges type a name")
    if args.open and not is_loopback(args.host):
        print(f"warning: --open on {args.host}: anyone who can reach the page can vote, under any number of "
              f"names; judge links ('invite') prevent that", file=sys.stderr)
    serve_human_eval(store, HumanEvalConfig(host=args.host, port=args.port, title=args.title, open=args.open))
    return 0


def _invite(args: argparse.Namespace) -> int:
    given = [f for f in (args.contexts, args.a, args.b) if f]
    if given and len(given) < 3:
        raise HumanEvalInputError("--contexts, --a and --b go together (they create the --store or check it)")
    if not given and not Path(args.store).is_file():
        raise HumanEvalInputError(f"--store {args.store}: no such vote store; give --contexts, --a and --b to "
                                  f"create it")
    store = VoteStore.create_or_open(args.store, _inputs(args)) if given else VoteStore.open(args.store)
    base = args.base_url.rstrip("/")
    for judge, token in store.invite(args.judges):
        print(f"{judge}\t{base}/#token={token}")
    print(f"{args.judges} judge link(s) made; each is shown only now (the store keeps a SHA-256 of its token)",
          file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    store = VoteStore.open(args.store)
    meta, votes, linked = store.meta(), store.votes(), store.linked_judges()
    if args.json:
        print(json.dumps(report_dict(meta, votes, linked), indent=2))
    else:
        print(format_report(meta, votes, linked))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"serve": _serve, "invite": _invite, "report": _report}[args.command](args)
    except HumanEvalInputError as e:
        print(f"dialogpt-human-eval: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
