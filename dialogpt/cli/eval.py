"""``dialogpt-eval`` / ``scripts/evaluate_multiref.py``: DSTC7's metrics (and perplexity) in one command.

    dialogpt-eval --hyp test.hyp.txt --refs data/test.refs.txt --output-json scores.json
    dialogpt-eval --hyp submission.txt --refs dstc/test.refs --keys keys/test.2k.txt --clean
    dialogpt-eval --hyp hyp.txt --refs refs.tsv                     # TAB-separated references per line
    dialogpt-eval --hyp hyp.txt --refs ./reddit-dialog --split test  # a dataset with a `references` column
    dialogpt-eval --model runs/medium --dataset ./reddit-dialog --split validation   # perplexity
    dialogpt-eval --model runs/medium --dataset chats.jsonl          # perplexity on your own dialogues

Prints the seed's table row (NIST2 NIST4 BLEU2 BLEU4 METEOR ENT-4 DIST-1 DIST-2 Avg.Len) as
markdown; ``--output-json`` writes the raw fractions. Reference selection follows ``dstc.py``:
for the multi-reference test set (``test.refs.txt``, DSTC7 refs, or a dataset's ``references``,
which hold the same rows) the defaults are dstc.py's ``--n-refs 6 --vshuman 1`` (slots
[0, 2, 2, 3, 4, 5]: ref 1 dropped, ref 2 twice), which is how the seed's tables were scored; a
plain TSV is used as given (rows padded by cycling to the widest one). ``--vshuman -1`` keeps every
reference. The selection used is reported on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dialogpt.chat_format import install_chat_template
from dialogpt.cli.conversation_args import add_conversation_args, conversation_args_names, options_from_args
from dialogpt.conversations import ConversationOptions, load_conversations
from dialogpt.dialog_data import load_dialog_split
from dialogpt.errors import first_line
from dialogpt.scoring import METRIC_KEYS, prepare, score_all
from dialogpt.scoring.meteor import MeteorError
from dialogpt.scoring.refs import (
    DSTC_N_REFS,
    DSTC_VSHUMAN,
    InputError,
    dstc_hyps_refs,
    read_keys,
    read_legacy_refs,
    read_lines,
    read_tsv_refs,
    select_references,
    sniff_refs_format,
    suspicious_separator,
)

REFS_FORMATS = ("auto", "legacy", "tsv", "dataset")
TABLE_COLUMNS = ("NIST2", "NIST4", "BLEU2", "BLEU4", "METEOR", "ENT-4", "DIST-1", "DIST-2", "Avg. Len")


@dataclass
class EvalConfig:
    """What to score. Checked once, in ``__post_init__``, naming the flags that clash."""

    hyp: str | None = None            # hypotheses, one per line (or a DSTC7 submission with --keys)
    refs: str | None = None           # refs file (legacy / TSV) or dataset dir / Hub id
    refs_format: str = "auto"         # auto | legacy | tsv | dataset
    keys: str | None = None           # DSTC7 keys file: --hyp is then a submission (hash ... TAB response)
    split: str = "test"               # dataset split for --refs and for --model
    clean: bool = False               # DSTC7 clean_str on hypotheses and references
    n_refs: int | None = None         # reference slots (default: 6 as dstc.py, widest row for a plain TSV)
    vshuman: int | None = None        # reference index to skip (default: 1 as dstc.py, -1 for a plain TSV)
    meteor: bool = True               # run the METEOR jar (needs Java)
    meteor_heap: str = "1g"           # each METEOR JVM's -Xmx (DSTC7 used 1g)
    allow_empty: bool = False         # score empty hypothesis lines (as DSTC7's __empty__) instead of failing
    output_json: str | None = None
    name: str | None = None           # first column of the table row
    model: str | None = None          # causal LM for perplexity
    dataset: str | None = None        # dialogues for perplexity: a file, folder or Hub id (default: --refs when a dataset)
    dataset_config: str | None = None  # Hub config of --dataset
    conversation: ConversationOptions = field(default_factory=ConversationOptions)  # how to read --dataset
    max_seq_length: int = 128
    batch_size: int = 8

    def __post_init__(self):
        if self.refs_format not in REFS_FORMATS:
            raise ValueError(f"--refs-format must be one of {', '.join(REFS_FORMATS)}, got {self.refs_format!r}")
        if self.hyp is None and self.model is None:
            raise ValueError("nothing to do: give --hyp (with --refs) and/or --model")
        if self.hyp is not None and self.refs is None:
            raise ValueError("--hyp needs --refs")
        if self.refs is not None and self.hyp is None and self.model is None:
            raise ValueError("--refs needs --hyp")
        if self.keys is not None and self.refs_format in ("tsv", "dataset"):
            raise ValueError(f"--keys needs a DSTC7 refs file, not --refs-format {self.refs_format}")
        if self.n_refs is not None and self.n_refs < 1:
            raise ValueError(f"--n-refs must be >= 1, got {self.n_refs}")
        if self.model is not None and self.dataset is None:
            if self.refs is not None and self._refs_kind() == "dataset":
                self.dataset = self.refs
            else:
                raise ValueError("--model needs --dataset DIR_OR_ID (or --refs given as a dataset) for its turns")
        if self.output_json is not None:
            parent = Path(self.output_json).parent
            if not parent.is_dir():
                raise InputError(f"--output-json {self.output_json}: folder {parent} does not exist")
            if Path(self.output_json).is_dir():
                raise InputError(f"--output-json {self.output_json}: is a directory")
        if self.max_seq_length < 2 or self.batch_size < 1:
            raise ValueError("--max-seq-length must be >= 2 and --batch-size >= 1")

    def _refs_kind(self) -> str:
        if self.refs_format != "auto":
            return self.refs_format
        p = Path(self.refs)
        if p.is_file():
            return "legacy" if self.keys is not None else sniff_refs_format(p)
        if p.is_dir():
            return "dataset"
        if p.suffix in (".txt", ".tsv", ".refs") or p.parent != Path(".") and p.parent.exists():
            raise InputError(f"{p}: no such references file")
        return "dataset"  # a Hub id such as org/name


def _read_hyps(cfg: EvalConfig) -> list[str]:
    hyps = read_lines(cfg.hyp)
    if not hyps:
        raise InputError(f"{cfg.hyp}: no hypotheses in the file")
    if not cfg.allow_empty:
        for i, h in enumerate(hyps, start=1):
            if not h.strip():
                raise InputError(f"{cfg.hyp}:{i}: empty hypothesis (pass --allow-empty to score it as "
                                 "DSTC7 does, as the segment __empty__)")
    return hyps


def _check_counts(hyp_path: str, n_hyp: int, refs_desc: str, n_refs: int) -> None:
    if n_hyp != n_refs:
        line = min(n_hyp, n_refs) + 1
        longer = hyp_path if n_hyp > n_refs else refs_desc
        raise InputError(f"{hyp_path} has {n_hyp} hypotheses but {refs_desc} has {n_refs} reference rows "
                         f"({longer}:{line} has no partner)")


def load_hyps_refs(cfg: EvalConfig) -> tuple[list[str], list[list[str]]]:
    """The hypotheses and their selected references (uncleaned), from whichever input format."""
    kind = cfg._refs_kind()
    if cfg.keys is not None:
        n_refs = cfg.n_refs or DSTC_N_REFS
        vshuman = DSTC_VSHUMAN if cfg.vshuman is None else cfg.vshuman
        hyps, refs = dstc_hyps_refs(cfg.hyp, cfg.refs, cfg.keys, n_refs=n_refs, vshuman=vshuman)
        _report_selection(n_refs, vshuman)
        if not cfg.allow_empty and any(not h.strip() for h in hyps):
            # name the submission line that dstc.py kept for that key (the last one with it)
            wanted, last = set(read_keys(cfg.keys)), {}
            for i, line in enumerate(read_lines(cfg.hyp), start=1):
                cols = line.split("\t")
                if cols[0] in wanted:
                    last[cols[0]] = (i, cols[-1])
            line_no, key = min((i, k) for k, (i, text) in last.items() if not text.strip())
            raise InputError(f"{cfg.hyp}:{line_no}: empty response for key {key!r} (pass --allow-empty to score "
                             "it as DSTC7 does, as the segment __empty__)")
        return hyps, refs
    hyps = _read_hyps(cfg)
    if kind == "legacy":
        rows = [texts for _, texts in read_legacy_refs(cfg.refs)]
        n_refs = cfg.n_refs or DSTC_N_REFS
        vshuman = DSTC_VSHUMAN if cfg.vshuman is None else cfg.vshuman
        desc = cfg.refs
    elif kind == "tsv":
        rows = read_tsv_refs(cfg.refs)
        sep = suspicious_separator(rows)
        if sep is not None:
            print(f"dialogpt-eval: warning: {cfg.refs}: each line is scored as ONE reference, yet most lines contain "
                  f"{sep!r}; if that separates references, put a TAB between them (see --refs-format)",
                  file=sys.stderr)
        n_refs, vshuman, desc = cfg.n_refs, (-1 if cfg.vshuman is None else cfg.vshuman), cfg.refs
    else:
        ds = load_dialog_split(cfg.refs, cfg.split, flag="--refs", column="references")
        rows = [list(r) for r in ds["references"]]
        for i, r in enumerate(rows):
            if not r:
                raise InputError(f"--refs {cfg.refs} split {cfg.split} row {i}: no references")
        n_refs = cfg.n_refs or DSTC_N_REFS
        vshuman = DSTC_VSHUMAN if cfg.vshuman is None else cfg.vshuman
        desc = f"{cfg.refs} [{cfg.split}]"
    _check_counts(cfg.hyp, len(hyps), desc, len(rows))
    if n_refs is None:
        n_refs = max(len(r) for r in rows)
    _report_selection(n_refs, vshuman)
    return hyps, [select_references(r, n_refs, vshuman) for r in rows]


def _report_selection(n_refs: int, vshuman: int) -> None:
    skip = f"skipping reference index {vshuman} (dstc.py's --vshuman; -1 keeps all)" if vshuman >= 0 else \
        "keeping every reference"
    print(f"dialogpt-eval: {n_refs} reference slots per hypothesis, {skip}", file=sys.stderr)


def model_perplexity(cfg: EvalConfig) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dialogpt.scoring.perplexity import perplexity  # deferred: torch, 2 s that metric-only runs skip

    # the same reader as training: any layout, one line saying what was read (printed once the model loads,
    # so a bad --model still gives one line); single-turn dialogues have nothing to score
    ds, report = load_conversations(dataset=cfg.dataset, dataset_config=cfg.dataset_config, split=cfg.split,
                                    options=cfg.conversation, flag="--dataset")
    p = Path(cfg.model)
    if not p.is_dir() and (p.exists() or cfg.model.startswith((".", "/", "~"))):
        raise InputError(f"--model {cfg.model}: no such model directory")
    try:
        tok = AutoTokenizer.from_pretrained(cfg.model)
        install_chat_template(tok)
        model = AutoModelForCausalLM.from_pretrained(cfg.model)
    except (OSError, ValueError) as e:
        raise InputError(f"--model {cfg.model}: cannot load a tokenizer and causal LM ({first_line(e)})") from None
    print(f"dialogpt-eval: {report.describe()}", file=sys.stderr)
    res = perplexity(model, tok, ds["turns"], max_seq_length=cfg.max_seq_length, batch_size=cfg.batch_size,
                     progress=True)
    return {"perplexity": res.ppl, "eval_loss": res.loss, "eval_tokens": res.tokens}


def run(cfg: EvalConfig) -> dict:
    """Scores as a dict: :data:`METRIC_KEYS` (METEOR only if run) and/or perplexity keys."""
    out: dict = {}
    if cfg.hyp is not None:
        hyps, refs = load_hyps_refs(cfg)
        hyps, refs = prepare(hyps, refs, clean=cfg.clean)
        out.update(score_all(hyps, refs, compute_meteor=cfg.meteor, meteor_heap=cfg.meteor_heap))
    if cfg.model is not None:
        out.update(model_perplexity(cfg))
    return out


def format_table(name: str, scores: dict) -> str:
    """The seed's README row: NIST with 2 decimals, BLEU/METEOR/Distinct in %, entropy, length."""
    def pct(k):
        return f"{100 * scores[k]:.2f}%" if k in scores else "-"

    def num(k, d):
        return f"{scores[k]:.{d}f}" if k in scores else "-"

    cells = [num("nist2", 2), num("nist4", 2), pct("bleu2"), pct("bleu4"), pct("meteor"), num("entropy4", 2),
             pct("dist1"), pct("dist2"), num("avg_len", 1)]
    head = "| Experiment | " + " | ".join(TABLE_COLUMNS) + " |"
    sep = "|" + "---|" * (len(TABLE_COLUMNS) + 1)
    return "\n".join([head, sep, f"| {name} | " + " | ".join(cells) + " |"])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dialogpt-eval", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--hyp", help="hypotheses, one per line (a DSTC7 submission when --keys is given)")
    p.add_argument("--refs", help="test.refs.txt / DSTC7 refs (key TAB score|ref ...), a TSV of references, "
                                  "or a dataset dir / Hub id with a 'references' column")
    p.add_argument("--refs-format", default="auto", choices=REFS_FORMATS,
                   help="how to read --refs. legacy: 'key TAB score|ref TAB score|ref ...' per line (DialoGPT's "
                        "test.refs.txt, DSTC7 refs; text after a second '|' is cut, as dstc.py does). tsv: line i "
                        "holds the TAB-separated references of hypothesis i (one field = one reference; other "
                        "separators such as ' ||| ' are not split, a warning says so). dataset: a dataset folder or "
                        "Hub id whose --split has a 'references' column. auto (default): a folder or Hub id is a "
                        "dataset; a file is legacy when every line has that shape, else tsv")
    p.add_argument("--keys", help="DSTC7 keys file: score only these hashes, sorted, as dstc.py")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--clean", action="store_true", help="DSTC7 clean_str on hypotheses and references (dstc.py -c)")
    p.add_argument("--n-refs", type=int, default=None, help="reference slots per hypothesis (default 6 as dstc.py; widest row for a plain TSV)")
    p.add_argument("--vshuman", type=int, default=None,
                   help="reference index to skip when filling slots; default 1 (dstc.py) for refs files and "
                        "datasets, -1 (none) for a plain TSV")
    p.add_argument("--no-meteor", dest="meteor", action="store_false", help="skip METEOR (no Java needed)")
    p.add_argument("--meteor-heap", default="1g", metavar="SIZE",
                   help="maximum heap of each METEOR JVM (java -Xmx; default 1g as DSTC7): raise it, e.g. 4g, "
                        "when METEOR reports java.lang.OutOfMemoryError")
    p.add_argument("--allow-empty", action="store_true", help="score empty hypothesis lines (as DSTC7 did: the segment __empty__ for NIST/BLEU, 0 words) "
                        "instead of failing")
    p.add_argument("--output-json", help="write the raw scores (fractions) to this JSON file")
    p.add_argument("--name", help="name in the table row (default: the --hyp file name)")
    p.add_argument("--model", help="causal LM (dir or Hub id): report its perplexity on --dataset/--split")
    p.add_argument("--dataset", help="dialogues for --model's perplexity: a file (jsonl, json, csv, parquet, arrow, "
                                     "tsv), a folder or a Hub id, in any layout dialogpt-train reads")
    p.add_argument("--max-seq-length", type=int, default=128,
                   help="perplexity: a longer session becomes several windows of this many tokens, as in training")
    p.add_argument("--batch-size", type=int, default=8, help="perplexity: sessions per forward pass")
    add_conversation_args(p)
    return p


def _one_line(e: BaseException) -> str:
    """A one-line message as it is; a multi-line or empty one as ``Type: first line``."""
    text = str(e).strip()
    return text if text and "\n" not in text else first_line(e)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        own = {k: v for k, v in vars(args).items() if k not in conversation_args_names() or k == "dataset_config"}
        cfg = EvalConfig(**own, conversation=options_from_args(args))
        scores = run(cfg)
    except (InputError, MeteorError, ValueError, FileNotFoundError, OSError) as e:
        print(f"dialogpt-eval: error: {_one_line(e)}", file=sys.stderr)
        return 2
    if cfg.hyp is not None:
        print(format_table(cfg.name or Path(cfg.hyp).name, scores))
    if "perplexity" in scores:
        print(f"perplexity {scores['perplexity']:.4f} (loss {scores['eval_loss']:.4f} over "
              f"{scores['eval_tokens']} label tokens, {cfg.dataset} [{cfg.split}])")
    if cfg.output_json:
        ordered = {k: scores[k] for k in METRIC_KEYS if k in scores}
        ordered.update({k: v for k, v in scores.items() if k not in ordered})
        try:
            Path(cfg.output_json).write_text(json.dumps(ordered, indent=1) + "\n", encoding="utf-8")
        except OSError as e:
            print(f"dialogpt-eval: error: --output-json {cfg.output_json}: {_one_line(e)}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
