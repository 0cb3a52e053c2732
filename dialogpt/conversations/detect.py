"""Which layout a file has, from its columns' kinds (typed features, or a sample of JSON/CSV rows).

Detection order: a dialogue column (``turns`` first, so the Reddit build and ``dialogpt-data prepare``'s
folders, which also carry ``messages``, keep their weights; a ``turns`` column of ``{text, weight, ...}``
is our turns layout even when its dicts also have a ``role``), then ``prompt``/``completion``, then ``context``/``response``, then a
speaker-per-line table. Every flag of :class:`ConversationOptions` overrides what is guessed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from dialogpt.conversations.options import LAYOUT_SHAPES, LAYOUTS, ConversationError, ConversationOptions

DIALOGUE_COLUMNS = ("turns", "messages", "conversations", "conversation", "dialog", "dialogue", "utterances", "chat")
ROLE_KEYS = ("role", "from", "speaker", "author", "sender")
CONTENT_KEYS = ("content", "value", "text", "message", "utterance")
ROW_ID_COLUMNS = ("dialogue_id", "conversation_id", "dialog_id", "conv_id", "id")
#: a speaker table's plain ``id`` is usually the line's id (Cornell's lineID), so it does not group rows
TABLE_ID_COLUMNS = ("dialogue_id", "conversation_id", "dialog_id", "conv_id", "chat_id")
SPEAKER_COLUMNS = ("speaker", "character", "author", "from", "role", "sender", "name")
TEXT_COLUMNS = ("text", "line", "content", "utterance", "value", "message")
PAIRS = {"prompt_completion": ("prompt", "completion"), "context_response": ("context", "response")}
#: columns whose CSV cells holding a JSON array are decoded (a message list written into a CSV cell)
JSON_CELL_COLUMNS = DIALOGUE_COLUMNS + ("prompt", "completion", "context")
MAX_LISTED = 20  # columns named in the "not recognised" error (a JSON map of 7,000 ids is not a table)


@dataclass(frozen=True)
class ColumnKind:
    """What a column holds: str | list_str | list_dict (with the dicts' keys) | list | other | null."""

    kind: str
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    """A detected (or forced) layout and the columns/keys it reads."""

    name: str
    dialogue_column: str | None = None
    role_key: str | None = None
    content_key: str | None = None
    first_column: str | None = None    # prompt / context
    second_column: str | None = None   # completion / response
    id_column: str | None = None
    speaker_column: str | None = None
    text_column: str | None = None

    def columns(self) -> list[str]:
        """The columns this layout reads (message keys are not columns)."""
        names = (self.dialogue_column, self.first_column, self.second_column, self.id_column, self.speaker_column,
                 self.text_column)
        return list(dict.fromkeys(c for c in names if c is not None))

    def columns_used(self) -> dict[str, str]:
        names = ("dialogue_column", "role_key", "content_key", "first_column", "second_column", "id_column",
                 "speaker_column", "text_column")
        out = {n: getattr(self, n) for n in names if getattr(self, n) is not None}
        if self.name in PAIRS:
            a, b = PAIRS[self.name]
            out[f"{a}_column"], out[f"{b}_column"] = out.pop("first_column"), out.pop("second_column")
        return out


# ---------------------------------------------------------------------------------------- column kinds
def kinds_from_features(features: Mapping) -> dict[str, ColumnKind]:
    """Column kinds of a typed dataset (Parquet, Arrow, Hub): no row needs to be read."""
    import datasets

    def kind(f) -> ColumnKind:
        if isinstance(f, dict) and f and all(isinstance(v, datasets.List) for v in f.values()):
            return ColumnKind("list_dict", tuple(f))  # datasets' legacy Sequence(dict): a dict of lists
        if isinstance(f, datasets.Value):
            return ColumnKind("str" if f.dtype in ("string", "large_string") else "other")
        inner = getattr(f, "feature", None)
        if isinstance(f, (list, tuple)) and len(f) == 1:
            inner = f[0]
        elif inner is None:
            return ColumnKind("other")
        if isinstance(inner, dict):
            return ColumnKind("list_dict", tuple(inner))
        if isinstance(inner, datasets.Value) and inner.dtype in ("string", "large_string"):
            return ColumnKind("list_str")
        return ColumnKind("list")

    return {name: kind(f) for name, f in features.items()}


def _value_kind(v) -> ColumnKind | None:
    if v is None:
        return None
    if isinstance(v, str):
        return ColumnKind("str")
    if not isinstance(v, list):
        return ColumnKind("other")
    items = [x for x in v if x is not None]
    if not items:
        return None  # an empty list says nothing yet
    if all(isinstance(x, dict) for x in items):
        keys: list[str] = []
        for x in items:
            keys.extend(k for k in x if k not in keys)
        return ColumnKind("list_dict", tuple(keys))
    return ColumnKind("list_str" if isinstance(items[0], str) else "list")


def kinds_from_rows(rows: Iterable[Mapping]) -> dict[str, ColumnKind]:
    """Column kinds from a sample of rows: the first informative value of each column decides."""
    out: dict[str, ColumnKind | None] = {}
    for row in rows:
        for name, v in row.items():
            if out.get(name) is None:
                out[name] = _value_kind(v)
    return {name: k or ColumnKind("null") for name, k in out.items()}


# ---------------------------------------------------------------------------------------- detection
def _first(candidates: Iterable[str], present: Iterable[str]) -> str | None:
    present = list(present)
    return next((c for c in candidates if c in present), None)


def _message_layout(col: str, kind: ColumnKind, options: ConversationOptions, forced: str | None,
                    source: str) -> Layout | None:
    role = options.role_key or _first(ROLE_KEYS, kind.keys)
    content = options.content_key or _first(CONTENT_KEYS, kind.keys)
    for flag, key in (("--role_key", options.role_key), ("--content_key", options.content_key)):
        if key is not None and key not in kind.keys:
            raise ConversationError(f"{source}: {flag} {key!r} is not a key of column {col!r}'s messages "
                                    f"(keys: {', '.join(kind.keys)})")
    # our own rows (the Reddit build, dialogpt-data prepare's {text, weight, role, speaker}) are turns, roles or not
    ours = col == "turns" and {"text", "weight"} <= set(kind.keys) and options.role_key is None
    if forced == "turns" or (forced is None and (role is None or ours) and "text" in kind.keys):
        if "text" not in kind.keys:
            raise ConversationError(f"{source}: --layout turns needs [{{text, weight}}] in column {col!r} "
                                    f"(keys: {', '.join(kind.keys)})")
        return Layout("turns", dialogue_column=col)
    if role is None or content is None:
        if forced is None:
            return None
        raise ConversationError(f"{source}: --layout {forced} needs a role and a text key in column {col!r}'s "
                                f"messages (keys: {', '.join(kind.keys)}); name them with --role_key/--content_key")
    name = forced or ("sharegpt" if role == "from" or content == "value" else "messages")
    return Layout(name, dialogue_column=col, role_key=role, content_key=content)


def _dialogue_layout(kinds: dict[str, ColumnKind], options: ConversationOptions, source: str) -> Layout | None:
    forced = options.layout
    if forced not in (None, "messages", "sharegpt", "turns", "strings"):
        return None
    if options.dialogue_column is not None and options.dialogue_column not in kinds:
        raise ConversationError(f"{source}: --dialogue_column {options.dialogue_column!r} is not a column "
                                f"(columns: {', '.join(kinds)})")
    candidates = [options.dialogue_column] if options.dialogue_column else [c for c in DIALOGUE_COLUMNS if c in kinds]
    for col in candidates:
        kind = kinds[col]
        if kind.kind == "list_dict" and forced != "strings":
            layout = _message_layout(col, kind, options, forced, source)
        elif kind.kind == "list_str" and forced in (None, "strings"):
            layout = Layout("strings", dialogue_column=col)
        else:
            layout = None
        if layout is not None:
            return layout
        if forced is not None or options.dialogue_column:
            what = f"[{{{', '.join(kind.keys)}}}]" if kind.keys else kind.kind
            raise ConversationError(f"{source}: column {col!r} holds {what}, which is not the "
                                    f"{forced or 'dialogue'} layout ({LAYOUT_SHAPES.get(forced or '', 'a list')})")
    return None


def _pair_layout(kinds: dict[str, ColumnKind], options: ConversationOptions, source: str) -> Layout | None:
    for name, (a, b) in PAIRS.items():
        if options.layout not in (None, name):
            continue
        first = getattr(options, f"{a}_column") or a
        second = getattr(options, f"{b}_column") or b
        if first in kinds and second in kinds:
            return Layout(name, first_column=first, second_column=second,
                          id_column=options.id_column or _first(ROW_ID_COLUMNS, kinds))
        if options.layout == name:
            missing = [c for c in (first, second) if c not in kinds]
            raise ConversationError(f"{source}: --layout {name} needs column(s) {', '.join(map(repr, missing))} "
                                    f"(columns: {', '.join(kinds)}); name them with --{a}_column/--{b}_column")
    return None


def _table_layout(kinds: dict[str, ColumnKind], options: ConversationOptions, source: str) -> Layout | None:
    if options.layout not in (None, "speaker_table"):
        return None
    text = options.text_column or _first([c for c in TEXT_COLUMNS if c in kinds and kinds[c].kind in ("str", "null")],
                                         kinds)
    speaker = options.speaker_column or _first(SPEAKER_COLUMNS, kinds)
    dialogue_id = options.id_column or _first(TABLE_ID_COLUMNS, kinds)
    for flag, col in (("--text_column", options.text_column), ("--speaker_column", options.speaker_column),
                      ("--id_column", options.id_column)):
        if col is not None and col not in kinds:
            raise ConversationError(f"{source}: {flag} {col!r} is not a column (columns: {', '.join(kinds)})")
    if text is not None and (speaker is not None or options.layout == "speaker_table"):
        return Layout("speaker_table", id_column=dialogue_id, speaker_column=speaker, text_column=text)
    if options.layout == "speaker_table":
        raise ConversationError(f"{source}: --layout speaker_table needs a text column (columns: "
                                f"{', '.join(kinds)}); name it with --text_column")
    return None


def detect_layout(kinds: dict[str, ColumnKind], options: ConversationOptions, source: str) -> Layout:
    """The layout of a source whose columns have ``kinds``; an error lists the columns and the layouts."""
    if not kinds:
        raise ConversationError(f"{source}: no columns (an empty file?)")
    layout = _dialogue_layout(kinds, options, source)
    if layout is not None:
        if layout.id_column is None:
            layout = replace(layout, id_column=options.id_column or _first(ROW_ID_COLUMNS, kinds))
        return layout
    layout = _pair_layout(kinds, options, source) or _table_layout(kinds, options, source)
    if layout is not None:
        return layout
    cols = ", ".join(f"{c} ({k.kind})" for c, k in list(kinds.items())[:MAX_LISTED])
    if len(kinds) > MAX_LISTED:
        cols += f", ... {len(kinds) - MAX_LISTED} more"
    accepted = "; ".join(f"{n}: {LAYOUT_SHAPES[n]}" for n in LAYOUTS)
    raise ConversationError(f"{source}: no dialogue layout recognised in its columns [{cols}]; accepted layouts: "
                            f"{accepted}; name yours with --layout and the column flags")
