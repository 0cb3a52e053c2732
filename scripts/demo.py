#!/usr/bin/env python
"""``make demo``: the whole DialoGPT loop, end to end, through the same commands users run.

    build the dialogue dataset -> train a tokenizer (only when training from scratch)
    -> train the forward model and the reverse (MMI) model with ``accelerate launch``
    -> decode the multi-reference test split with MMI reranking -> score it (NIST/BLEU/METEOR/...)
    -> put the measured metrics into the model card -> three multi-turn chats
    -> fine-tune that model on "your own dialogues" (a shipped chatterbot-corpus sample, a messages JSONL;
       ``--own-dialogues FILE`` takes yours, in any layout ``dialogpt-train`` reads) and chat with it.

On the shipped sample (``--size dummy``, the default) it runs on a laptop CPU in a few minutes.
With dumps, a GPU and the network the same script runs the real thing, e.g.::

    python scripts/demo.py --size small --dumps ./pushshift --model microsoft/DialoGPT-medium \\
        --steps 20000 --batch-size 16 --output runs/small
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHATS = [
    ["Does money buy happiness?", "What is the best way to buy happiness?", "This is so difficult!"],
    ["What's your favourite game?", "Why do you like it so much?"],
    ["I just adopted a dog :)", "He is a golden retriever.", "Any tips for the first week?"],
]
#: "your own dialogues": 791 conversations of chatterbot-corpus (BSD-3-Clause; its licence note beside it)
OWN_DIALOGUES = REPO / "dialogpt" / "data" / "chatterbot_english.jsonl"
OWN_CHAT = ["Hello", "What is your name?", "Do you like music?"]
# the decoding every stage uses: sampling from the top 40 tokens, 4 candidates reranked by MMI
SAMPLING = ["--strategy", "sample", "--top-k", "40", "--num-candidates", "4", "--max-new-tokens", "32",
            "--seed", "0", "--device", "cpu"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default="runs/demo", help="folder for everything the demo writes (default: runs/demo)")
    p.add_argument("--size", default="dummy", choices=["dummy", "small", "full"], help="dataset size (default: dummy)")
    p.add_argument("--dumps", help="folder of Pushshift RS_/RC_ dumps (needed for --size small|full)")
    p.add_argument("--model", help="fine-tune this model (dir or hub id, e.g. microsoft/DialoGPT-medium) "
                                   "instead of training a tiny GPT-2 from scratch")
    p.add_argument("--reverse-model", help="an existing reverse (MMI) model instead of training one")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps of the forward model (default: 300)")
    p.add_argument("--reverse-steps", type=int, default=None, help="steps of the reverse model (default: steps/2)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--num-proc", type=int, default=2, help="parallel workers for the dataset build")
    p.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    p.add_argument("--limit", type=int, default=None, help="decode only the first N test contexts")
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (needs Java)")
    p.add_argument("--own-dialogues", default=str(OWN_DIALOGUES), help="dialogues to fine-tune on in the last stage: "
                   "any file dialogpt-train reads (default: the shipped chatterbot-corpus sample, messages JSONL)")
    p.add_argument("--own-steps", type=int, default=120, help="optimizer steps of that fine-tune (default: 120)")
    return p.parse_args(argv)


class Stage:
    """Prints a numbered header, runs commands, and reports time and what was written."""

    def __init__(self, total: int):
        self.total, self.n, self.t0 = total, 0, time.time()

    def start(self, title: str) -> None:
        self.n += 1
        self._t = time.time()
        print(f"\n=== [{self.n}/{self.total}] {title}", flush=True)

    def done(self, wrote: str) -> None:
        print(f"--- done in {time.time() - self._t:.1f}s; wrote {wrote}", flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **kw.pop("env", {})}
    proc = subprocess.run(cmd, cwd=REPO, env=env, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"demo: stage failed (exit {proc.returncode}): {cmd[0]} ... see the output above")
    return proc


def tool(name: str) -> list[str]:
    """A console script of this package, run with the interpreter that runs the demo."""
    if name == "build_dataset":  # the data side has its own CLI: dialogpt never imports dialogpt_dataset
        return [sys.executable, "-m", "dialogpt_dataset.cli"]
    return [sys.executable, "-m", "dialogpt.cli", name]


def accelerate_launch(script: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", script]


def train_tokenizer(data_dir: Path, out_dir: Path) -> None:
    from datasets import load_dataset

    from dialogpt.tokenization import train_bytelevel_tokenizer

    train = load_dataset(str(data_dir), split="train")
    texts = (t["text"] for row in train for t in row["turns"])
    train_bytelevel_tokenizer(texts, vocab_size=2000, save_dir=out_dir)


def train_args(a: argparse.Namespace, data: Path, out: Path, tokenizer: str | None, steps: int) -> list[str]:
    args = ["--dataset", str(data), "--output_dir", str(out), "--num_optim_steps", str(steps),
            "--train_batch_size", str(a.batch_size), "--gradient_accumulation_steps", "1",
            "--max_seq_length", str(a.max_seq_length), "--lr_schedule", "BERT",
            "--warmup_proportion", "0.05", "--logging_steps", str(max(1, steps // 10)),
            "--eval_steps", str(max(1, steps // 3)), "--save_steps", str(max(1, steps // 2)),
            "--save_total_limit", "1", "--mixed_precision", a.mixed_precision, "--seed", "42",
            "--overwrite_output_dir"]  # `make demo` again retrains from scratch
    if a.model:
        args += ["--model_name_or_path", a.model, "--learning_rate", "5e-5"]
    else:
        args += ["--model_config", "tiny", "--tokenizer_name", str(tokenizer), "--learning_rate", "3e-3"]
    return args


def write_limited_refs(data_dir: Path, limit: int, path: Path) -> Path:
    from datasets import load_dataset

    test = load_dataset(str(data_dir), split="test").select(range(limit))
    path.write_text("".join("\t".join(" ".join(r.split()) for r in row["references"]) + "\n" for row in test))
    return path


def add_metrics_to_card(model_dir: Path, scores: dict[str, float], test_name: str) -> None:
    """Re-render the model card with the metrics just measured (never placeholders)."""
    from dialogpt.cards import add_metrics

    add_metrics(model_dir, scores, split=test_name)


@dataclass
class Paths:
    """Where each stage writes, all under ``--output``."""

    out: Path
    data: Path
    tok: Path
    fwd: Path
    rev: Path
    hyp: Path
    scores: Path
    own: Path

    @classmethod
    def under(cls, out: Path, reverse_model: str | None) -> Paths:
        # the data folder's name is the dataset's name in the model cards (no Hub id here): make it say what it is
        return cls(out, out / "reddit-dialog", out / "tokenizer", out / "model",
                   Path(reverse_model) if reverse_model else out / "reverse", out / "test.hyp.txt", out / "scores.json",
                   out / "own-dialogues")


def build_stage(a: argparse.Namespace, p: Paths, stage: Stage) -> None:
    stage.start(f"Build the {a.size} Reddit dialogue dataset (datatrove pipeline -> Parquet)")
    build = tool("build_dataset") + ["--size", a.size, "--output", str(p.data), "--num-proc", str(a.num_proc),
                                     "--quiet"]
    run(build + (["--dumps", a.dumps] if a.dumps else []))
    stage.done(f"{p.data}/ (Parquet splits, README.md dataset card with filter counts, test.refs.txt)")


def tokenizer_stage(a: argparse.Namespace, p: Paths, stage: Stage) -> None:
    stage.start("Tokenizer")
    if a.model:
        print(f"using the tokenizer of {a.model}")
        stage.done("nothing (the model's own tokenizer is used)")
        return
    train_tokenizer(p.data, p.tok)
    stage.done(f"{p.tok}/ (ByteLevel BPE trained on the train split, with the dialogue chat_template)")


def training_stages(a: argparse.Namespace, p: Paths, stage: Stage) -> None:
    stage.start(f"Train the forward model ({a.model or 'tiny GPT-2 from scratch'}, {a.steps} steps)")
    run(accelerate_launch("scripts/run_clm_dialog.py") + train_args(a, p.data, p.fwd, p.tok, a.steps))
    stage.done(f"{p.fwd}/ (model, tokenizer, generation_config, README.md card, train_log.txt, eval_log.txt)")
    stage.start("Train the reverse (MMI) model: response -> source")
    if a.reverse_model:
        print(f"using {a.reverse_model}")
        stage.done("nothing")
        return
    steps = a.reverse_steps or max(1, a.steps // 2)
    run(accelerate_launch("scripts/run_clm_dialog.py") + train_args(a, p.data, p.rev, p.tok, steps) + ["--reverse"])
    stage.done(f"{p.rev}/")


def decode_stage(a: argparse.Namespace, p: Paths, stage: Stage) -> None:
    stage.start("Decode the multi-reference test split (sampling, 4 candidates, MMI reranking)")
    gen = tool("chat") + [str(p.fwd), "--reverse-model", str(p.rev), "--input", str(p.data), "--split", "test",
                          "--output", str(p.hyp), *SAMPLING]
    run(gen + (["--limit", str(a.limit)] if a.limit else []))
    stage.done(f"{p.hyp}")


def evaluate_stage(a: argparse.Namespace, p: Paths, stage: Stage) -> None:
    stage.start("Evaluate against the multi-reference test set (NIST, BLEU, METEOR, Entropy, Distinct)")
    refs = ["--refs", str(p.data / "test.refs.txt")]  # the seed's multi-reference file, in test-split order
    if a.limit:  # score only the decoded contexts: their references, as a TAB-separated file
        limited = write_limited_refs(p.data, a.limit, p.out / "test.refs.limit.tsv")
        refs = ["--refs", str(limited), "--refs-format", "tsv"]
    ev = tool("eval") + ["--hyp", str(p.hyp), *refs, "--output-json", str(p.scores), "--name", "demo",
                         "--allow-empty"]
    run(ev + (["--no-meteor"] if a.no_meteor else []))
    add_metrics_to_card(p.fwd, json.loads(p.scores.read_text()), "test (multi-reference)")
    stage.done(f"{p.scores}; metrics added to {p.fwd}/README.md")


def chat_stage(p: Paths, stage: Stage) -> None:
    """Each conversation is its own ``dialogpt-chat`` process fed on stdin: piped input gets exactly one
    reply line per input line (``/commands`` such as ``/reset`` work only in an interactive session)."""
    stage.start("Three multi-turn chats (stdin -> stdout, one process per conversation)")
    for c, chat in enumerate(CHATS, start=1):
        proc = run(tool("chat") + [str(p.fwd), "--reverse-model", str(p.rev), *SAMPLING],
                   input="\n".join(chat) + "\n", capture_output=True, text=True)
        replies = proc.stdout.splitlines()
        print(f"--- chat {c}")
        for k, user in enumerate(chat):
            print(f"  User: {user}")
            print(f"  Bot:  {replies[k] if k < len(replies) else '(no reply)'}")
    stage.done("nothing (printed above)")


def own_dialogues_stage(a: argparse.Namespace, p: Paths, stage: Stage) -> None:
    """Fine-tune the forward model on a chat file (whole dialogues held out for validation), then chat."""
    stage.start(f"Fine-tune it on your own dialogues ({Path(a.own_dialogues).name}, {a.own_steps} steps) and chat")
    run(accelerate_launch("scripts/run_clm_dialog.py") + [
        "--train_file", a.own_dialogues, "--model_name_or_path", str(p.fwd), "--output_dir", str(p.own),
        "--validation_split_percentage", "10", "--eval_on_start", "--num_optim_steps", str(a.own_steps),
        "--train_batch_size", str(a.batch_size), "--gradient_accumulation_steps", "1", "--learning_rate", "1e-3",
        "--lr_schedule", "None", "--max_seq_length", str(a.max_seq_length), "--eval_steps", "0", "--save_steps", "0",
        "--logging_steps", str(max(1, a.own_steps // 4)), "--mixed_precision", a.mixed_precision, "--seed", "42",
        "--overwrite_output_dir", "--no-pbar"])
    res = json.loads((p.own / "train_results.json").read_text())
    cov = res["data_coverage"]
    print(f"held-out perplexity ({cov['validation_dialogues']} whole dialogues): {res['initial_eval_ppl']:.1f} "
          f"before -> {res['eval_ppl']:.1f} after; {cov['trained_turns']:,} of {cov['turns']:,} turns trained "
          f"in {cov['windows']:,} windows")
    proc = run(tool("chat") + [str(p.own), *SAMPLING[:4], "--max-new-tokens", "32", "--seed", "0", "--device", "cpu"],
               input="\n".join(OWN_CHAT) + "\n", capture_output=True, text=True)
    for user, bot in zip(OWN_CHAT, proc.stdout.splitlines() + ["(no reply)"] * len(OWN_CHAT)):
        print(f"  User: {user}\n  Bot:  {bot}")
    stage.done(f"{p.own}/ (the fine-tuned model; train_results.json has data_coverage and the perplexities)")


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.size != "dummy" and not a.dumps:
        print("demo: --size small|full needs --dumps DIR with Pushshift RS_/RC_ files", file=sys.stderr)
        return 2
    out = (REPO / a.output) if not Path(a.output).is_absolute() else Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    paths = Paths.under(out, a.reverse_model)
    stage = Stage(total=8)
    build_stage(a, paths, stage)
    tokenizer_stage(a, paths, stage)
    training_stages(a, paths, stage)
    decode_stage(a, paths, stage)
    evaluate_stage(a, paths, stage)
    chat_stage(paths, stage)
    own_dialogues_stage(a, paths, stage)
    print(f"\nDemo finished in {time.time() - stage.t0:.0f}s. Everything is under {out}/.")
    print(f"Chat with it yourself:  dialogpt-chat {paths.fwd} --reverse-model {paths.rev}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
