"""``dialogpt-chat``: talk to a DialoGPT model, script it, or decode a whole test set.

Three modes, one Responder:

* interactive (stdin is a terminal): a multi-turn chat with ``/reset``, ``/history``, ``/quit``;
* piped (stdin is not a terminal): each input line is a user turn and gets exactly one output
  line, in order, and nothing else goes to stdout (an empty line gets an empty line; a line
  starting with "/" is a turn like any other: commands exist only in an interactive session), so
  ``paste contexts.txt <(dialogpt-chat MODEL < contexts.txt)`` lines up (the history carries over);
* batch (``--input CONTEXTS --output hyp.txt``): one hypothesis per line for a test set, ready
  for ``scripts/evaluate_multiref.py``. CONTEXTS is the seed's multi-reference file
  (``test.refs.txt``), a plain text file (one context per line, turns separated by `` EOS `` or a
  TAB), a dialogue file in any layout ``dialogpt-train`` reads (``.jsonl``, ``.json``, ``.csv``,
  ``.parquet``, ``.arrow``: each dialogue is one context, all its turns; for ``prompt_completion`` and
  ``context_response`` the prompt/context only) or a built dataset (directory or hub id) with
  ``--split``. Any skip is an error there (one hypothesis line per context, always). Hypotheses are
  written batch by batch; ``--resume`` keeps those of an interrupted run and generates the rest.

``--self-play N`` lets the model talk to itself for N turns from ``--prompt``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from dialogpt.chat_format import Turn
from dialogpt.cli.conversation_args import add_conversation_args, options_from_args
from dialogpt.cli.responder_args import add_responder_args, quiet_transformers, spec_from_args
from dialogpt.conversations import ConversationOptions, dialogue_contexts, file_type, load_conversations
from dialogpt.decode import build_responder, save_generation_defaults
from dialogpt.legacy_tsv import TURN_SEPARATOR, read_refs

_REF_COL = re.compile(r"^-?\d+(\.\d*)?([eE][-+]?\d+)?\|")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dialogpt-chat",
        description="Chat with a DialoGPT model (interactive, piped stdin -> stdout, or batch --input/--output).",
    )
    add_responder_args(p)
    m = p.add_argument_group("modes")
    m.add_argument("--input", help="batch mode: refs file, text file of contexts, dialogue file (jsonl, json, csv, "
                                   "parquet, arrow; any layout), or dataset dir/hub id")
    m.add_argument("--output", help="batch mode: hypothesis file, one line per context")
    m.add_argument("--split", default="test", help="dataset split for a dataset --input (default: test)")
    m.add_argument("--limit", type=int, help="batch mode: only the first N contexts")
    m.add_argument("--resume", action="store_true",
                   help="batch mode: keep the hypotheses already in --output and generate the rest")
    m.add_argument("--self-play", type=int, metavar="N", help="let the model talk to itself for N turns")
    m.add_argument("--prompt", default="Hello, how are you?", help="first turn of --self-play")
    m.add_argument("--show-candidates", action="store_true", help="print every candidate and its score (stderr)")
    m.add_argument("--save-decoding-defaults", action="store_true",
                   help="write the decoding options given here (--decoding-config and the flags) into the local "
                        "MODEL dir's generation_config.json, so dialogpt-chat, dialogpt-serve and "
                        "Responder.from_pretrained use them by default; then exit")
    add_conversation_args(p)
    return p


# ---------------------------------------------------------------------- contexts for batch mode
def _split_context(line: str) -> list[str]:
    parts = line.split("\t") if "\t" in line else line.split(TURN_SEPARATOR)
    return [t.strip() for t in parts if t.strip()]


def _looks_like_refs(line: str) -> bool:
    cols = line.rstrip("\r\n").split("\t")
    return len(cols) >= 2 and all(_REF_COL.match(c) for c in cols[1:])


def read_contexts(source: str, split: str = "test", options: ConversationOptions | None = None,
                  dataset_config: str | None = None) -> list[list[str]]:
    """Contexts (lists of turn texts) from a refs file, a plain text file, a dialogue file or a dataset split."""
    path = Path(source)
    if path.is_file() and file_type(path) not in (None, "tsv"):
        return _dialogue_contexts(source, split, options, dataset_config)
    if path.is_file():
        try:
            with open(path, encoding="utf-8") as f:
                lines = [ln.rstrip("\r\n") for ln in f]
        except UnicodeDecodeError as e:
            raise ValueError(f"--input {path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        first = next((ln for ln in lines if ln.strip()), None)
        if first is None:
            raise ValueError(f"{path}: no contexts (the file is empty)")
        if _looks_like_refs(first):
            return [_split_context(row.key) for row in read_refs(path)]
        contexts = []
        for no, ln in enumerate(lines, start=1):
            if not ln.strip():
                continue
            turns = _split_context(ln)
            if not turns:
                raise ValueError(f"{path}:{no}: empty context")
            contexts.append(turns)
        return contexts
    return _dialogue_contexts(source, split, options, dataset_config)


def _dialogue_contexts(source: str, split: str, options: ConversationOptions | None,
                       dataset_config: str | None) -> list[list[str]]:
    """Each dialogue is one context; strict, since a skipped one would shift every later hypothesis line."""
    opts = replace(options or ConversationOptions(), min_turns=1, strict=True)
    ds, report = load_conversations(dataset=source, dataset_config=dataset_config, split=split, options=opts,
                                    flag="--input")
    print(report.describe(), file=sys.stderr)
    return dialogue_contexts(ds, report.layout)


# ---------------------------------------------------------------------- modes
def run_batch(responder, args, contexts: list[list[str]] | None = None) -> int:
    if contexts is None:
        contexts = read_contexts(args.input, args.split, options_from_args(args), args.dataset_config)
    if args.limit is not None:
        contexts = contexts[: args.limit]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _complete_lines(out, len(contexts)) if args.resume else 0
    if done:
        print(f"resuming: {out} already has {done} of {len(contexts)} hypotheses", file=sys.stderr)
    from tqdm.auto import tqdm

    # Hypotheses are written (and flushed) batch by batch, so an interrupted run keeps what it did
    # and --resume carries on from there.
    with open(out, "a" if done else "w", encoding="utf-8", newline="\n") as f, \
            tqdm(total=len(contexts), initial=done, desc="generating", unit="ctx") as bar:
        for start in range(done, len(contexts), responder.batch_size):
            replies = responder.respond_batch(contexts[start:start + responder.batch_size])
            f.writelines(" ".join(r.text.split()) + "\n" for r in replies)
            f.flush()
            bar.update(len(replies))
    print(f"wrote {len(contexts) - done} hypotheses to {out} ({_stats_line(responder)})", file=sys.stderr)
    return 0


def _complete_lines(path: Path, expected: int) -> int:
    """How many whole lines ``path`` holds (a torn last line, from a killed run, is cut off)."""
    if not path.is_file():
        return 0
    data = path.read_bytes()
    n = data.count(b"\n")
    if n > expected:
        raise ValueError(f"--resume: {path} has {n} lines but --input gives only {expected} contexts; "
                         "is it the output of another run?")
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        with open(path, "r+b") as f:
            f.truncate(keep)
    return n


def _stats_line(responder) -> str:
    s = responder.stats
    return (f"contexts={s['contexts']} candidates={s['candidates']} blocked={s['blocked_candidates']} "
            f"all_blocked={s['all_blocked']} truncated_prompts={s['truncated_prompts']}")


def _show(responder, reply, args) -> None:
    if args.show_candidates:
        for k, c in enumerate(reply.candidates):
            mark = "*" if k == reply.chosen else ("x" if c.blocked else " ")
            score = "" if c.score is None else f"{c.score:.4f} "
            print(f"  {mark} {score}{c.text}", file=sys.stderr)


def run_self_play(responder, args) -> int:
    history = [Turn(args.prompt)]
    print(f"A: {args.prompt}", flush=True)
    for k in range(args.self_play):
        reply = responder.respond(history)
        _show(responder, reply, args)
        history.append(Turn(reply.text))
        print(f"{'B' if k % 2 == 0 else 'A'}: {reply.text}", flush=True)
    return 0


def _valid_text(text: str, where: str) -> str:
    """``text`` with bytes that were not UTF-8 (read as surrogates, see ``_lenient_stdin``) replaced by U+FFFD,
    with a warning: the line still gets its reply line, so piped output stays aligned."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        fixed = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        fixed = text.encode("utf-8", "replace").decode("utf-8")
    print(f"warning: {where}: bytes that are not UTF-8 were replaced by U+FFFD", file=sys.stderr)
    return fixed


@contextlib.contextmanager
def _lenient_stdin():
    """Read stdin with ``surrogateescape``, so a stray non-UTF-8 byte costs one character, not the
    session (a strict UTF-8 stdin raises on it); the caller's setting is put back afterwards."""
    stream = sys.stdin
    errors = getattr(stream, "errors", None)
    if errors is None or not hasattr(stream, "reconfigure"):
        yield
        return
    try:
        stream.reconfigure(errors="surrogateescape")
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        try:
            stream.reconfigure(errors=errors)
        except (ValueError, OSError):
            pass


HELP = "commands: /reset (forget the history), /history (show it), /quit (leave)"


def run_chat(responder, args, stdin=None, stdout=None) -> int:
    """Interactive when stdin is a terminal, else exactly one output line per input line."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    if stdin.isatty():
        return _interactive(responder, args, stdin, stdout)
    history: list[Turn] = []
    for lineno, line in enumerate(iter(stdin.readline, ""), start=1):
        # Every line is a turn: a script's "/r/AskReddit is great" is text, not a command, and an
        # empty line still gets its (empty) line so output line N always answers input line N.
        text = " ".join(_valid_text(line, f"stdin line {lineno}").split())
        reply = _turn(responder, args, history, text) if text else ""
        stdout.write(" ".join(reply.split()) + "\n")
        stdout.flush()
    return 0


def _turn(responder, args, history: list[Turn], text: str) -> str:
    history.append(Turn(text))
    reply = responder.respond(history)
    _show(responder, reply, args)
    history.append(Turn(reply.text))
    return reply.text


def _interactive(responder, args, stdin, stdout) -> int:
    history: list[Turn] = []
    print(f"DialoGPT chat ({args.model}). {HELP}", file=stdout)
    lineno = 0
    while True:
        print(">> You: ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line:
            break
        lineno += 1
        text = _valid_text(line.strip(), f"stdin line {lineno}")
        if not text:
            continue
        if text.startswith("/"):
            if _command(text.split()[0].lower(), history, stdout) == "quit":
                break
            continue
        print(f"Bot: {_turn(responder, args, history, text)}", file=stdout, flush=True)
    return 0


def _command(cmd: str, history: list[Turn], stdout) -> str | None:
    if cmd in ("/quit", "/exit"):
        return "quit"
    if cmd == "/reset":
        history.clear()
        print("(history cleared)", file=stdout)
    elif cmd == "/history":
        for k, t in enumerate(history):
            who = "You" if (len(history) - k) % 2 == 0 else "Bot"
            print(f"{who}: {t.text}", file=stdout)
    elif cmd == "/help":
        print(HELP, file=stdout)
    else:
        print(f"unknown command {cmd}; {HELP}", file=stdout)
    stdout.flush()
    return None


def make_responder(args):
    """The Responder the flags describe (see :func:`dialogpt.decode.build_responder`)."""
    responder = build_responder(spec_from_args(args))
    if responder.reranker is not None and responder.options.num_candidates == 1:
        print("note: reranking needs --num-candidates > 1 (and --strategy sample or beam) to have a choice",
              file=sys.stderr)
    return responder


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.input is None) != (args.output is None):
        print("error: batch mode needs both --input and --output", file=sys.stderr)
        return 2
    if args.input is not None and args.self_play is not None:
        print("error: --self-play and --input/--output are different modes; pick one", file=sys.stderr)
        return 2
    if args.self_play is not None and args.self_play < 1:
        print("error: --self-play N needs N >= 1", file=sys.stderr)
        return 2
    if args.save_decoding_defaults and not Path(args.model).is_dir():
        print(f"error: --save-decoding-defaults needs MODEL to be a local directory, got {args.model}",
              file=sys.stderr)
        return 2
    if args.resume and args.input is None:
        print("error: --resume is for batch mode (--input/--output)", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print(f"error: --limit N needs N >= 1, got {args.limit}", file=sys.stderr)
        return 2
    try:
        with quiet_transformers():
            import transformers

            if args.seed is not None:
                transformers.set_seed(args.seed)
            contexts = None
            if args.input is not None:
                # Fail on a bad --input before spending time on loading the model.
                if not Path(args.input).exists() and Path(args.input).suffix:
                    raise FileNotFoundError(f"--input {args.input}: no such file")
                if not args.save_decoding_defaults:
                    contexts = read_contexts(args.input, args.split, options_from_args(args), args.dataset_config)
            responder = make_responder(args)
            if args.save_decoding_defaults:
                path = save_generation_defaults(args.model, responder.options, responder.tokenizer.eos_token_id)
                print(f"wrote decoding defaults to {path}: {responder.options}", file=sys.stderr)
                return 0
            if args.input is not None:
                return run_batch(responder, args, contexts)
            if args.self_play is not None:
                return run_self_play(responder, args)
            with _lenient_stdin():
                return run_chat(responder, args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError, OSError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
