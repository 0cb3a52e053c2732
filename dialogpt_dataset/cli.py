"""``build_dataset.py`` / ``dialogpt-build-dataset``: Pushshift dumps -> a Reddit dialogue dataset folder.

    python scripts/build_dataset.py --size dummy --output ./reddit-dialog
    python scripts/build_dataset.py --size small --dumps ./pushshift --output ./reddit-dialog --num-proc 8
    python scripts/build_dataset.py --months 2006-01:2006-06 --dumps ./pushshift --output ./rd --export-tsv
"""

from __future__ import annotations

from dialogpt_dataset.process import limit_blas_threads

# this module is the dialogpt-build-dataset command (console script, python -m, scripts/build_dataset.py):
# the process is its own, and nothing below has imported numpy yet (see dialogpt_dataset.process)
limit_blas_threads()

import argparse  # noqa: E402
import sys  # noqa: E402

from dialogpt.legacy_tsv import LegacyFormatError  # noqa: E402
from dialogpt_dataset.build import BuildConfig, SubmittedToSlurm, build_dataset  # noqa: E402
from dialogpt_dataset.dumps import DumpError  # noqa: E402
from dialogpt_dataset.pipeline import PlanError  # noqa: E402
from dialogpt_dataset.process import freeze_owned_process  # noqa: E402
from dialogpt_dataset.rules import PRESETS, SWITCHABLE  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="build_dataset.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dumps", help="folder of RS_YYYY-MM.* / RC_YYYY-MM.* Pushshift dumps (not needed for --size dummy; "
                   "with neither --size nor --months, every month found in it is built)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--size", choices=["dummy", "small", "full"],
                   help="dummy (default): the shipped sample; small: 2005-12..2009-12; "
                   "full: 2005-12..2017-11 (+ test 2018-03..2019-01)")
    g.add_argument("--months", help="custom range(s), e.g. 2006-01:2006-06 or 2006-01,2006-03")
    p.add_argument("--test-months", help="months for the multi-reference test split (default: full -> 2018-03:2019-01; "
                   "otherwise, or with --test-months '', a stable hash of the thread id picks test threads)")
    p.add_argument("--output", required=True, help="dataset folder to write (Parquet, README.md, test.refs.txt, keys.txt)")
    p.add_argument("--num-proc", type=int, default=1, help="parallel tasks (datatrove workers and datasets num_proc; default 1)")
    p.add_argument("--keys-file", help="keep only these instance ids (our keys.txt, or the original's keys-*.gz)")
    p.add_argument("--discard-keys-file", help="sha224 hashes of turns to keep as context only (weight 0.0), "
                   "like the original's keys/<month>-o.gz")
    p.add_argument("--min-refs", type=int, default=5, help="fewest distinct replies for a test context (default 5)")
    p.add_argument("--max-refs", type=int, default=None, help="keep at most this many references (best score first)")
    p.add_argument("--executor", choices=["local", "ray", "slurm"], default="local",
                   help="datatrove executor: local (default); ray (joins the cluster in RAY_ADDRESS or one "
                   "started with `ray start`, else starts a local Ray with --num-proc CPUs); slurm (submits jobs)")
    p.add_argument("--slurm-partition", default="cpu", help="with --executor slurm")
    p.add_argument("--num-shards", type=int, default=None, help="hash partitions of each month (default: sized from the input)")
    p.add_argument("--max-bad-lines", type=int, default=1000, help="malformed JSON lines tolerated per file (skipped, counted; default 1000)")
    p.add_argument("--allow-empty-months", action="store_true", help="an empty RS/RC dump file (usually a failed "
                   "download, an error by default) is read as a month without those records, with a warning")
    _add_rule_args(p)
    p.add_argument("--quiet", action="store_true", help="hide datatrove's per-task log lines")
    p.add_argument("--export-tsv", action="store_true", help="also write train.tsv in the original DialoGPT format")
    p.add_argument("--push-to-hub", metavar="ORG/NAME", help="upload the folder as a Hub dataset repo")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create a private repo")
    return p.parse_args(argv)


def _add_rule_args(p: argparse.ArgumentParser) -> None:
    """The extraction-rule options (dialogpt_dataset.rules): a preset, then switches and settings."""
    g = p.add_argument_group("extraction rules", "a preset, then any of these settings on top of it")
    g.add_argument("--preset", choices=list(PRESETS), default="default",
                   help="original: exactly the DialoGPT extractor's selection (title off, empty blocklists, no "
                   "test/validation split in training months, no project-only rules); default: the project's "
                   "(every project-only rule, shipped blocklists, title on, 5%% test + 5%% validation threads)")
    g.add_argument("--rules", metavar="+NAME,-NAME", help="switch project-only rules on/off on top of the preset: "
                   + ", ".join(SWITCHABLE) + " (also all / none); write --rules=-bot when the list starts with '-'")
    g.add_argument("--words-blocklist", metavar="FILE", help="offensive words/phrases, one a line (whole-word, "
                   "case-insensitive, as flashtext); 'none' or 'shipped'")
    g.add_argument("--subreddits-blocklist", metavar="FILE", help="subreddits never used, one a line; 'none' or 'shipped'")
    g.add_argument("--test-fraction", type=float, help="share of training-month threads hashed into the test split")
    g.add_argument("--validation-fraction", type=float, help="share of training-month threads for validation")
    t = g.add_mutually_exclusive_group()
    t.add_argument("--use-title", dest="use_title", action="store_true", default=None,
                   help="the submission title as root turn (`title : ...`)")
    t.add_argument("--no-title", dest="use_title", action="store_false", help="no title turn (the original's TITLE=0)")
    g.add_argument("--selftext", action="store_true", default=None, help="append the submission's selftext to the title")


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the command owns this process (console script, python -m): the ~100K objects of
        freeze_owned_process()  # the modules imported above (datasets, pyarrow, pandas) leave the GC's passes
    args = parse_args(argv)
    try:
        cfg = BuildConfig(
            output_dir=args.output, dumps_dir=args.dumps, size=args.size, months=args.months,
            test_months=args.test_months, num_proc=args.num_proc, keys_file=args.keys_file,
            discard_keys_file=args.discard_keys_file,
            min_refs=args.min_refs, max_refs=args.max_refs, executor=args.executor,
            export_tsv=args.export_tsv, push_to_hub=args.push_to_hub, private=args.private,
            max_bad_lines=args.max_bad_lines, allow_empty_months=args.allow_empty_months, num_shards=args.num_shards, preset=args.preset, rules=args.rules,
            use_title=args.use_title, use_selftext=args.selftext, test_fraction=args.test_fraction,
            validation_fraction=args.validation_fraction, words_blocklist=args.words_blocklist,
            subreddits_blocklist=args.subreddits_blocklist, slurm_kwargs={"partition": args.slurm_partition}, quiet=args.quiet,
        )
        result = build_dataset(cfg)
    except SubmittedToSlurm as e:
        print(str(e))
        return 0
    except (ValueError, FileNotFoundError, DumpError, PlanError, LegacyFormatError, RuntimeError) as e:
        print(f"build_dataset: error: {e}", file=sys.stderr)
        return 2
    print(result.counts_table())
    if result.months_without_rs:
        print(f"months without an RS (submissions) file, threads rooted at top-level comments: "
              f"{', '.join(result.months_without_rs)}")
    print(f"wrote {result.output_dir}: " + ", ".join(f"{s} {n} rows" for s, n in result.num_rows.items()))
    print(f"  dataset card: {result.card_path}\n  multi-reference file: {result.refs_path}\n  keys: {result.keys_path}")
    if result.tsv_path:
        print(f"  legacy train.tsv: {result.tsv_path}")
    if result.hub_url:
        print(f"  pushed to {result.hub_url}")
    print(f'load it with: datasets.load_dataset("{result.output_dir}")')
    return 0


if __name__ == "__main__":
    sys.exit(main())
