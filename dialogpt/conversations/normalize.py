"""One row of any layout -> one dialogue of ``turns`` ``{text, weight, role, speaker}``, with counted skips.

Pure functions over plain Python values: the same code runs inside ``datasets.map`` (Parquet, Arrow,
Hub) and over the rows a JSON/CSV/TSV reader yields, so every source obeys the same rules:

* a turn whose text is empty (after stripping outer whitespace) or not a string is dropped
  (``empty_turn``, ``non_string_turn``); a content part that is not text (an image, audio) is dropped
  (``non_text_part``) and a message left with no text is then an ``empty_turn``;
* a dialogue with a message whose role maps to no side (``tool``, ``function``, ``observation``) is
  dropped whole (``unknown_role``): the replies around a tool call are not a conversation without it;
  so is a row whose dialogue cell is not a list of messages (``not_a_dialogue``);
* a dialogue left with fewer than ``min_turns`` turns (system turns not counted) is dropped
  (``too_few_turns``);
* system messages are dropped and counted (``system_messages="drop"``) or kept as a weight-0 turn
  with role ``system`` where they stood (``"context"``);
* consecutive turns of the same speaker stay separate turns (DialoGPT's format has no speakers);
* a kept turn's text loses its outer whitespace (what is inside stays as written).

Roles: ``user`` / ``assistant`` from the role map where a layout carries roles (our ``turns`` rows keep
the ``role`` and ``speaker`` they carry, as ``dialogpt-data prepare`` writes them); for role-less turns
(string lists, the Reddit build's ``turns``, a context string) they alternate counted back from the last turn, which
is ``assistant`` (as :func:`dialogpt.chat_format.turns_to_messages`); a speaker-table character that maps
to no side has role ``""``. ``speaker`` is the raw role value / character as written in the file.
"""

from __future__ import annotations

from collections.abc import Mapping

from dialogpt.conversations.detect import Layout
from dialogpt.conversations.options import ConversationOptions
from dialogpt.legacy_tsv import TURN_SEPARATOR

#: reason -> what it drops (the report counts turns, parts and dialogues apart)
SKIP_UNITS = {"empty_turn": "turn", "non_string_turn": "turn", "non_text_part": "part", "missing_id": "turn",
              "unknown_role": "dialogue", "not_a_dialogue": "dialogue", "too_few_turns": "dialogue"}
#: columns every normalised row has; the ``_`` ones are bookkeeping that the loader removes
OUTPUT_COLUMNS = ("dialogue_id", "turns", "_keep", "_skips", "_detail", "_where", "_roles", "_system")


def output_features():
    import datasets

    turn = {"text": datasets.Value("string"), "weight": datasets.Value("float32"),
            "role": datasets.Value("string"), "speaker": datasets.Value("string")}
    return datasets.Features({
        "dialogue_id": datasets.Value("string"), "turns": datasets.List(turn), "_keep": datasets.Value("bool"),
        "_skips": datasets.List(datasets.Value("string")), "_detail": datasets.Value("string"),
        "_where": datasets.Value("string"), "_roles": datasets.List(datasets.Value("string")),
        "_system": datasets.Value("int32")})


class Dialogue:
    """Turns of one dialogue being built, and what was skipped on the way."""

    def __init__(self, options: ConversationOptions, role_map: Mapping[str, str]):
        self.options, self.role_map = options, role_map
        self.turns: list[dict] = []
        self.skips: list[str] = []
        self.detail = ""
        self.dropped: str | None = None
        self.system = 0
        self.roles: set[str] = set()

    def skip(self, reason: str, detail: str) -> None:
        self.skips.append(reason)
        self.detail = self.detail or detail

    def fail(self, reason: str, detail: str) -> None:
        """Drop the whole dialogue (the first reason is the one counted)."""
        if self.dropped is None:
            self.dropped = reason
            self.skip(reason, detail)

    def side(self, raw) -> str | None:
        side = self.role_map.get(raw.strip().lower()) if isinstance(raw, str) else None
        self.roles.add(f"{raw}={side or '?'}")
        return side

    def add(self, text, weight: float, role: str | None, speaker: str, what: str) -> None:
        if not isinstance(text, str):
            self.skip("non_string_turn", f"{what}: the text is {type(text).__name__}, not a string")
        elif not text.strip():
            self.skip("empty_turn", f"{what}: the text is empty")
        else:
            self.turns.append({"text": text.strip(), "weight": float(weight), "role": role, "speaker": speaker})

    def system_turn(self, text, speaker: str, what: str) -> None:
        self.system += 1
        if self.options.system_messages == "context":
            self.add(text, 0.0, "system", speaker, what)

    def finish(self, dialogue_id: str, where: str) -> dict:
        said = [t for t in self.turns if t["role"] != "system"]
        if self.dropped is None and len(said) < self.options.min_turns:
            self.fail("too_few_turns", f"{len(said)} turn(s) left, at least {self.options.min_turns} needed")
        k = 0
        for t in reversed(said):  # role-less turns alternate back from the last one, the assistant
            if t["role"] is None:
                t["role"] = "assistant" if k % 2 == 0 else "user"
                t["speaker"] = t["speaker"] or t["role"]
            k += 1
        return {"dialogue_id": dialogue_id, "turns": self.turns if self.dropped is None else [],
                "_keep": self.dropped is None, "_skips": self.skips, "_detail": self.detail, "_where": where,
                "_roles": sorted(self.roles), "_system": self.system}


# ---------------------------------------------------------------------------------------- message lists
def _content_text(d: Dialogue, content, what: str):
    """A message's text: a string, or the text parts of a part list (others skipped); else as it is."""
    if not isinstance(content, list):
        return content
    texts = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Mapping) and part.get("type", "text") in ("text", None) \
                and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
            d.skip("non_text_part", f"{what} part {j + 1} is {kind!r}, not text")
    return "\n".join(texts)


def _message_weight(m: Mapping) -> float:
    """0.0 where the file marks a message untrained (ours: trainable false; axolotl: weight 0 / training false)."""
    if m.get("trainable") is False or m.get("training") is False or m.get("weight") in (0, 0.0, False):
        return 0.0
    return 1.0


def _rows_of(value):
    """datasets' legacy ``Sequence(dict)`` gives a dict of lists: back to a list of dicts."""
    if isinstance(value, Mapping) and value and all(isinstance(v, list) for v in value.values()):
        return [dict(zip(value, vals)) for vals in zip(*value.values())]
    return value


def add_messages(d: Dialogue, msgs, role_key: str, content_key: str, weight: float | None = None,
                 name: str = "message") -> None:
    msgs = _rows_of(msgs)
    if not isinstance(msgs, list):
        d.fail("not_a_dialogue", f"the dialogue is {type(msgs).__name__}, not a list of messages")
        return
    for i, m in enumerate(msgs):
        what = f"{name} {i + 1}"
        if not isinstance(m, Mapping):
            d.fail("not_a_dialogue", f"{what} is {type(m).__name__}, not an object")
            continue
        raw = m.get(role_key)
        side = d.side(raw)
        if side is None:
            d.fail("unknown_role", f"{what} has role {raw!r}, which maps to no side (see --user_roles, "
                                   "--assistant_roles, --system_roles)")
            continue
        text = _content_text(d, m.get(content_key), what)
        if side == "system":
            d.system_turn(text, str(raw), what)
        else:
            d.add(text, _message_weight(m) if weight is None else weight, side, str(raw), what)


def _own_role(d: Dialogue, turn: Mapping) -> tuple[str | None, str]:
    """(role, speaker) a ``{text, weight, role, speaker}`` turn carries (``dialogpt-data prepare`` writes
    them): a role that maps to a side keeps it; a script character's ``""`` beside a speaker stays ``""``;
    none (or an unmapped one) alternates as role-less turns do."""
    raw, speaker = turn.get("role"), turn.get("speaker")
    speaker = speaker if isinstance(speaker, str) else ""
    if raw == "" and speaker:
        return "", speaker
    side = d.role_map.get(raw.strip().lower()) if isinstance(raw, str) else None
    return side, speaker or (raw if isinstance(raw, str) else "")


def add_texts(d: Dialogue, texts, weight: float, name: str) -> None:
    """Role-less turns: a list of strings, or our ``{text, weight}`` dicts, whose weight (and role and
    speaker, when they carry them) is kept."""
    texts = _rows_of(texts)
    if not isinstance(texts, list):
        d.fail("not_a_dialogue", f"the dialogue is {type(texts).__name__}, not a list")
        return
    for i, t in enumerate(texts):
        w, role, speaker = weight, None, ""
        if isinstance(t, Mapping):
            w = 1.0 if t.get("weight") is None else t["weight"]
            if not isinstance(w, (int, float)):
                d.fail("not_a_dialogue", f"{name} {i + 1} has weight {w!r}, not a number")
                continue
            role, speaker = _own_role(d, t)
            t = t.get("text")
        d.add(t, w, role, speaker, f"{name} {i + 1}")


def _add_side(d: Dialogue, value, layout: Layout, weight: float, name: str) -> None:
    """One side of a pair: a string (one turn; a context string holds ' EOS '-joined turns), strings, or
    messages. Role-less turns get their role by alternation back from the last turn (the assistant)."""
    if isinstance(value, str):
        split = layout.name == "context_response" and weight == 0.0
        add_texts(d, value.split(TURN_SEPARATOR) if split else [value], weight, name)
    elif value is None or (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        add_texts(d, value if value is not None else [None], weight, name)
    else:
        add_messages(d, value, layout.role_key or "role", layout.content_key or "content", weight, name)


def normalize_row(row: Mapping, layout: Layout, options: ConversationOptions, role_map: Mapping[str, str],
                  default_id: str, where: str) -> dict:
    """One row of a row-per-dialogue layout -> the output row (``_keep`` false when it is skipped)."""
    d = Dialogue(options, role_map)
    if layout.name in ("messages", "sharegpt"):
        add_messages(d, row.get(layout.dialogue_column), layout.role_key, layout.content_key)
    elif layout.name in ("turns", "strings"):
        add_texts(d, row.get(layout.dialogue_column), 1.0, "turn")
    else:
        first, second = ("prompt", "completion") if layout.name == "prompt_completion" else ("context", "response")
        # the prompt/context is context only (TRL's completion-only loss); the completion/response is trained
        _add_side(d, row.get(layout.first_column), layout, 0.0, first)
        _add_side(d, row.get(layout.second_column), layout, 1.0, second)
    raw_id = row.get(layout.id_column) if layout.id_column else None
    return d.finish(default_id if raw_id is None or str(raw_id) == "" else str(raw_id), where)


def normalize_batch(batch: Mapping[str, list], indices: list[int], layout: Layout, options: ConversationOptions,
                    source: str, id_prefix: str) -> dict[str, list]:
    """``datasets.map(batched=True, with_indices=True)`` body: :func:`normalize_row` over a batch."""
    role_map = options.role_map()
    out: dict[str, list] = {k: [] for k in OUTPUT_COLUMNS}
    for j, idx in enumerate(indices):
        row = {k: v[j] for k, v in batch.items()}
        r = normalize_row(row, layout, options, role_map, f"{id_prefix}:{idx}", f"{source} row {idx}")
        for k in OUTPUT_COLUMNS:
            out[k].append(r[k])
    return out


def group_speaker_rows(rows, layout: Layout, options: ConversationOptions, id_prefix: str):
    """Speaker-per-line rows ``(where, row)`` -> dialogues, grouped by the id column.

    Groups come out in the order of their first row and keep file order inside (a dialogue's rows
    need not be contiguous); without an id column the whole input is one dialogue (a script). A row
    with an empty id is dropped (``missing_id``). A speaker that maps to a side gets that role (a
    system speaker follows ``system_messages``); any other speaker (a character) has role ``""``.
    """
    role_map = options.role_map()
    groups: dict[str, tuple[str, Dialogue]] = {}
    missing: list[tuple[str, str]] = []
    for where, row in rows:
        key = str(row.get(layout.id_column) or "") if layout.id_column else id_prefix
        if not key:
            missing.append((where, f"the {layout.id_column!r} cell is empty"))
            continue
        if key not in groups:
            groups[key] = (where, Dialogue(options, role_map))
        d = groups[key][1]
        raw = row.get(layout.speaker_column) if layout.speaker_column else None
        speaker = "" if raw is None else str(raw)
        side = d.side(speaker) if speaker else None
        text = row.get(layout.text_column)
        if side == "system":
            d.system_turn(text, speaker, where)
        else:
            d.add(text, 1.0, side or "", speaker, where)
    for where, detail in missing:  # counted on a row of its own: it belongs to no dialogue
        yield {"dialogue_id": "", "turns": [], "_keep": False, "_skips": ["missing_id"], "_detail": detail,
               "_where": where, "_roles": [], "_system": 0}
    for key, (where, d) in groups.items():
        yield d.finish(key, where)
