"""``load_conversations``: files, a folder or a Hub id -> one ``datasets.Dataset`` of dialogues + a report.

Two drivers, one normaliser (:mod:`dialogpt.conversations.normalize`):

* JSON Lines / JSON / CSV / TSV files are read row by row in Python (``file:line`` errors) and written
  by ``Dataset.from_generator`` (Arrow on disk, cached by the files' path, size and mtime);
* Parquet / Arrow files, built datasets (our Reddit build included), ``save_to_disk`` folders and Hub
  ids are read by ``datasets`` and normalised with a batched, cached ``Dataset.map`` (``num_proc``).

Both produce the same bookkeeping columns, counted, checked (``strict``) and dropped in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dialogpt.conversations.detect import JSON_CELL_COLUMNS, Layout, detect_layout, kinds_from_features, kinds_from_rows
from dialogpt.conversations.fast_turns import turns_batch
from dialogpt.conversations.normalize import (
    OUTPUT_COLUMNS,
    group_speaker_rows,
    normalize_batch,
    normalize_row,
    output_features,
)
from dialogpt.conversations.options import ConversationError, ConversationOptions, MissingSplit
from dialogpt.conversations.readers import (
    FILE_TYPES,
    ROW_FILE_TYPES,
    file_type,
    folder_split_files,
    iter_file_rows,
    sample_rows,
)
from dialogpt.conversations.report import ConversationReport
from dialogpt.dialog_data import DialogDataError, MissingSplitError, load_dialog_split
from dialogpt.errors import first_line

#: bump when the normalised rows change, so cached Arrow files of older code are not reused
READER_VERSION = 1
HELPER_COLUMNS = [c for c in OUTPUT_COLUMNS if c.startswith("_")]


def _json_columns(options: ConversationOptions) -> tuple[str, ...]:
    extra = (options.dialogue_column, options.prompt_column, options.completion_column, options.context_column)
    return JSON_CELL_COLUMNS + tuple(c for c in extra if c)


def _check_files(files: Sequence[str], flag: str) -> tuple[list[Path], str]:
    if not files:
        raise ConversationError(f"{flag}: no file given")
    paths, types = [Path(f) for f in files], set()
    for p in paths:
        if not p.is_file():
            raise ConversationError(f"{flag} {p}: no such file")
        ftype = file_type(p)
        if ftype is None:
            raise ConversationError(f"{flag} {p}: unknown file type {p.suffix!r} (accepted: {', '.join(FILE_TYPES)})")
        types.add(ftype)
    if len(types) > 1:
        raise ConversationError(f"{flag}: give files of one type, got {', '.join(sorted(types))}")
    return paths, types.pop()


def _source_name(paths: Sequence[Path]) -> str:
    return str(paths[0]) + (f" (+{len(paths) - 1} more)" if len(paths) > 1 else "")


def _same_layout(layouts: list[Layout], paths: Sequence) -> Layout:
    for p, lay in zip(paths[1:], layouts[1:]):
        if lay != layouts[0]:
            raise ConversationError(f"{p}: layout {lay.name} {lay.columns_used()} differs from {paths[0]}'s "
                                    f"{layouts[0].name} {layouts[0].columns_used()}: give files of one layout")
    return layouts[0]


# ---------------------------------------------------------------------------------------- JSON / CSV / TSV
def _generate(paths: list[str], ftype: str, layout: Layout, options: ConversationOptions, json_columns):
    """Normalised rows of every file, in order (the generator ``Dataset.from_generator`` runs)."""
    role_map = options.role_map()
    for path in paths:
        stem = Path(path).stem
        rows = iter_file_rows(path, ftype, json_columns)
        if layout.name == "speaker_table":
            yield from group_speaker_rows(rows, layout, options, stem)
            continue
        for k, (where, row) in enumerate(rows):
            yield normalize_row(row, layout, options, role_map, f"{stem}:{k}", where)


def _detect_file(path: Path, ftype: str, options: ConversationOptions, json_columns) -> Layout:
    if ftype == "tsv":  # the seed's train.tsv is our turns layout, with its weights
        return Layout("turns", dialogue_column="turns")
    sample = sample_rows(path, ftype, json_columns=json_columns)
    if not sample:
        raise ConversationError(f"{path}: no rows (the file is empty)")
    return detect_layout(kinds_from_rows(sample), options, str(path))


def _row_files(paths: list[Path], ftype: str, options: ConversationOptions, cache_dir: str | None):
    import datasets
    from datasets.fingerprint import Hasher

    json_columns = _json_columns(options)
    layout = _same_layout([_detect_file(p, ftype, options, json_columns) for p in paths], paths)
    stamps = [(str(p), str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    fingerprint = Hasher.hash([READER_VERSION, stamps, ftype, layout, options, json_columns])
    try:
        ds = datasets.Dataset.from_generator(
            _generate, features=output_features(), cache_dir=cache_dir, fingerprint=fingerprint,
            gen_kwargs={"paths": [str(p) for p in paths], "ftype": ftype, "layout": layout, "options": options,
                        "json_columns": json_columns})
    except datasets.exceptions.DatasetGenerationError as e:
        if isinstance(e.__cause__, ConversationError):
            raise e.__cause__ from None
        raise
    return ds, layout


# ---------------------------------------------------------------------------------------- typed sources
def _rows(ds, batch_size: int = 4096):
    """Rows of a dataset as dicts, a batch at a time (10x faster than iterating the Dataset row by row)."""
    for batch in ds.iter(batch_size=batch_size):
        cols = list(batch)
        yield from (dict(zip(cols, values)) for values in zip(*(batch[c] for c in cols)))


def _typed(ds, options: ConversationOptions, source: str, id_prefix: str, num_proc: int | None):
    import datasets

    layout = detect_layout(kinds_from_features(ds.features), options, source)
    cols = layout.columns()
    view = ds.select_columns(cols)
    if layout.name == "speaker_table":  # a group-by over rows: in memory (scripts and chat logs are small)
        rows = ((f"{source} row {i}", r) for i, r in enumerate(_rows(view)))
        out = list(group_speaker_rows(rows, layout, options, id_prefix))
        return datasets.Dataset.from_list(out, features=output_features()), layout
    # our turns layout (the Reddit build, at any size) has an Arrow shortcut; everything else maps in Python
    fn, view = (turns_batch, view.with_format("arrow")) if layout.name == "turns" else (normalize_batch, view)
    out = view.map(fn, batched=True, with_indices=True, remove_columns=cols, features=output_features(),
                   num_proc=num_proc, desc="reading dialogues",
                   fn_kwargs={"layout": layout, "options": options, "source": source, "id_prefix": id_prefix})
    return out.with_format(None), layout


def _typed_files(paths: list[Path], ftype: str, options, flag: str, cache_dir, num_proc):
    import datasets

    parts, layouts = [], []
    for p in paths:
        try:
            ds = datasets.load_dataset(ftype, data_files=[str(p)], split="train", cache_dir=cache_dir)
        except Exception as e:  # not Parquet/Arrow at all, truncated file
            cause = e.__cause__ if isinstance(e, datasets.exceptions.DatasetGenerationError) and e.__cause__ else e
            raise ConversationError(f"{flag} {p}: cannot read it as {ftype} ({first_line(cause, 300)})") from None
        out, layout = _typed(ds, options, str(p), p.stem, num_proc)
        parts.append(out)
        layouts.append(layout)
    layout = _same_layout(layouts, paths)
    return (parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)), layout


# ---------------------------------------------------------------------------------------- counting
def _counts(raw) -> tuple[dict[str, int], int, dict[str, str]]:
    import pyarrow.compute as pc

    table = raw.data
    skips = pc.value_counts(pc.list_flatten(table.column("_skips"))).to_pylist()
    skipped = {v["values"]: int(v["counts"]) for v in skips}
    system = int(pc.sum(table.column("_system")).as_py() or 0)
    roles = {}
    for pair in sorted(pc.unique(pc.list_flatten(table.column("_roles"))).to_pylist()):
        raw_role, _, side = pair.rpartition("=")
        roles[raw_role] = side
    return skipped, system, roles


def _strict_error(raw, options: ConversationOptions) -> None:
    import pyarrow.compute as pc

    lengths = pc.list_value_length(raw.data.column("_skips")).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(lengths > 0)
    if options.strict and len(bad):
        row = raw[int(bad[0])]
        raise ConversationError(f"{row['_where']}: {row['_detail']} ({row['_skips'][0]}; --strict makes every "
                                "skip an error)")


def _unique_ids(raw, keep: np.ndarray, report: ConversationReport):
    """``raw`` with the kept rows' dialogue ids made unique (a repeat gets ``#2``, ``#3`` ...)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = raw.data.column("dialogue_id")
    if pc.count_distinct(pc.filter(ids, pa.array(keep))).as_py() == int(keep.sum()):
        return raw
    seen: dict[str, int] = {}
    new = []
    for i, k in zip(ids.to_pylist(), keep):
        if k:
            seen[i] = seen.get(i, 0) + 1
            i = i if seen[i] == 1 else f"{i}#{seen[i]}"
        new.append(i)
    report.renamed_ids = sum(n - 1 for n in seen.values())
    return raw.remove_columns("dialogue_id").add_column("dialogue_id", new)


def _finish(raw, report: ConversationReport, options: ConversationOptions, flag: str):
    """Count, check, drop the skipped rows and the bookkeeping columns; fill in the report."""
    import pyarrow.compute as pc

    report.skipped, report.system_messages, report.roles = _counts(raw)
    report.system_handling = options.system_messages
    _strict_error(raw, options)
    keep = raw.data.column("_keep").to_numpy(zero_copy_only=False).astype(bool)
    report.turns = int(pc.sum(pc.list_value_length(raw.data.column("turns"))).as_py() or 0)
    report.dialogues = int(keep.sum())
    if report.dialogues == 0:
        why = f" ({report.skipped_text()})" if len(raw) else " (the input is empty)"
        raise ConversationError(f"{flag} {report.source}: no dialogues to read{why}")
    kept = _unique_ids(raw, keep, report).select_columns(["dialogue_id", "turns"])
    return (kept if keep.all() else kept.select(np.flatnonzero(keep))), report


def load_conversations(*, files: Sequence[str] | None = None, dataset: str | None = None,
                       dataset_config: str | None = None, split: str = "train",
                       options: ConversationOptions | None = None, flag: str = "--train_file",
                       cache_dir: str | None = None, num_proc: int | None = None):
    """Dialogues from ``files`` (same type and layout) or a ``dataset`` (a folder, a file or a Hub id).

    Returns ``(dataset, report)``: one row per dialogue with ``dialogue_id`` and ``turns`` (each
    ``{text, weight, role, speaker}``, oldest first), and a :class:`ConversationReport` whose
    ``describe()`` is the one line to print. Raises :class:`ConversationError` (one line naming the
    input) for a malformed line, an unrecognised layout, a missing file or split, zero dialogues, and
    any skip when ``options.strict``.
    """
    options = options or ConversationOptions()
    if (files is None) == (dataset is None):
        raise ConversationError(f"{flag}: give dialogue files or a dataset (one of them)")
    if dataset is not None and Path(dataset).is_file():
        files = [dataset]
    if files is not None:
        paths, ftype = _check_files(files, flag)
        report_type = ftype
        if ftype in ROW_FILE_TYPES:
            raw, layout = _row_files(paths, ftype, options, cache_dir)
        else:
            raw, layout = _typed_files(paths, ftype, options, flag, cache_dir, num_proc)
        source = _source_name(paths)
    else:
        raw, layout, report_type = _dataset(dataset, dataset_config, split, options, flag, cache_dir, num_proc)
        source = f"{dataset}{f' ({dataset_config})' if dataset_config else ''} [{split}]"
    report = ConversationReport(source=source, file_type=report_type, layout=layout.name,
                                columns_used=layout.columns_used())
    return _finish(raw, report, options, flag)


def _dataset(dataset: str, config: str | None, split: str, options, flag: str, cache_dir, num_proc):
    path = Path(dataset)
    by_split = folder_split_files(path, split) if path.is_dir() and config is None else None
    if by_split is not None:
        if split not in by_split:
            raise MissingSplit(f"{flag} {dataset}: no split {split!r} (has {', '.join(by_split)})")
        paths, ftype = _check_files(by_split[split], flag)
        raw, layout = _row_files(paths, ftype, options, cache_dir)
        return raw, layout, "folder"
    try:
        ds = load_dialog_split(dataset, split, flag=flag, cache_dir=cache_dir, column=None, name=config)
    except DialogDataError as e:
        raise (MissingSplit if isinstance(e, MissingSplitError) else ConversationError)(str(e)) from None
    raw, layout = _typed(ds, options, f"{dataset} [{split}]", split, num_proc)
    return raw, layout, "folder" if path.is_dir() else "hub"


def dialogue_contexts(ds, layout: str) -> list[list[str]]:
    """Each dialogue as a context to answer (batch decoding, human evaluation): all its turns' texts; for
    ``prompt_completion`` / ``context_response`` the prompt/context only (the completion is the reference)."""
    pairs = layout in ("prompt_completion", "context_response")
    return [[t["text"] for t in turns if not pairs or t["weight"] == 0.0] for turns in ds["turns"]]
