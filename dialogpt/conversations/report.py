"""What was read: the layout detected, the counts, and every skip by reason (one printed line)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from dialogpt.conversations.normalize import SKIP_UNITS

_ROLE_LIST_LIMIT = 6


def _n(x: int) -> str:
    return f"{x:,}"


@dataclass
class ConversationReport:
    """Facts about one :func:`~dialogpt.conversations.load_conversations` call.

    ``skipped`` counts by reason; what a reason drops (a turn, a content part or a whole dialogue) is
    :data:`~dialogpt.conversations.normalize.SKIP_UNITS`. ``roles`` maps each raw role value / speaker
    seen to its side (``?``: none). ``layout`` is what the coverage JSON calls ``source_format``.
    """

    source: str
    file_type: str                 # jsonl | json | csv | parquet | arrow | tsv | hub | folder
    layout: str
    columns_used: dict[str, str] = field(default_factory=dict)
    dialogues: int = 0
    turns: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    system_messages: int = 0       # system messages met (dropped, or kept as context turns)
    system_handling: str = "drop"
    roles: dict[str, str] = field(default_factory=dict)
    renamed_ids: int = 0           # duplicated dialogue ids made unique with a '#k' suffix

    def _count(self, unit: str) -> int:
        return sum(n for r, n in self.skipped.items() if SKIP_UNITS.get(r) == unit)

    @property
    def skipped_dialogues(self) -> int:
        return self._count("dialogue")

    @property
    def skipped_turns(self) -> int:
        return self._count("turn")

    def _roles_text(self) -> str:
        if self.layout == "speaker_table":
            mapped = [f"{r}->{s}" for r, s in self.roles.items() if s != "?"]
            return f"{_n(len(self.roles))} speakers" + (f" ({', '.join(mapped)})" if mapped else "")
        pairs = [f"{r}->{s if s != '?' else 'unknown'}" for r, s in self.roles.items()]
        more = len(pairs) - _ROLE_LIST_LIMIT
        return ", ".join(pairs[:_ROLE_LIST_LIMIT]) + (f" and {more} more" if more > 0 else "")

    def _layout_text(self) -> str:
        c = self.columns_used
        if self.layout in ("messages", "sharegpt"):
            parts = [f"column '{c['dialogue_column']}', role '{c['role_key']}', text '{c['content_key']}'"]
        elif self.layout in ("turns", "strings"):
            parts = [f"column '{c['dialogue_column']}'"]
        elif self.layout == "speaker_table":
            grouped = f"grouped by '{c['id_column']}'" if "id_column" in c else "one dialogue per file"
            speaker = f", speaker '{c['speaker_column']}'" if "speaker_column" in c else ""
            parts = [f"text '{c['text_column']}'{speaker}, {grouped}"]
        else:
            cols = [v for k, v in c.items() if k != "id_column"]
            parts = [" + ".join(f"'{v}'" for v in cols)]
        if self.roles:
            parts.append(self._roles_text())
        return "; ".join(parts)

    def skipped_text(self) -> str:
        groups = []
        for unit in ("dialogue", "turn", "part"):
            reasons = {r: n for r, n in sorted(self.skipped.items()) if SKIP_UNITS.get(r) == unit and n}
            if reasons:
                detail = ", ".join(f"{r} {_n(n)}" for r, n in reasons.items())
                groups.append(f"{_n(sum(reasons.values()))} {unit}{'s' if sum(reasons.values()) != 1 else ''} "
                              f"({detail})")
        return "skipped " + ", ".join(groups) if groups else "nothing skipped"

    def describe(self) -> str:
        """One line: what was detected, how much was read, what was skipped and what became of system messages."""
        line = (f"{self.source}: layout {self.layout} ({self._layout_text()}): {_n(self.dialogues)} dialogues, "
                f"{_n(self.turns)} turns; {self.skipped_text()}")
        if self.system_messages:
            what = "dropped" if self.system_handling == "drop" else "kept as context turns"
            line += f"; {_n(self.system_messages)} system message{'s' if self.system_messages != 1 else ''} {what}"
        if self.renamed_ids:
            line += f"; {_n(self.renamed_ids)} duplicated dialogue ids suffixed '#k'"
        return line

    def as_dict(self) -> dict:
        d = asdict(self)
        d["source_format"] = self.layout
        d["skipped_dialogues"], d["skipped_turns"] = self.skipped_dialogues, self.skipped_turns
        return d
