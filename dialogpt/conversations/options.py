"""What the reader is told about a file (flags override detection), and how other tools spell the same.

Field names are the flag names (``--layout``, ``--dialogue_column``, ``--user_roles`` ...) and the
``TrainConfig`` field names, so a YAML config, the command line and this dataclass never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

#: Every layout the readers accept (``--layout`` forces one; otherwise it is detected).
LAYOUTS = ("messages", "sharegpt", "turns", "strings", "prompt_completion", "context_response", "speaker_table")
#: What each layout looks like, for the "not recognised" error and ``--help``.
LAYOUT_SHAPES = {
    "messages": "a column of [{role, content}] (OpenAI/TRL)",
    "sharegpt": "a column of [{from, value}] (ShareGPT, LLaMA-Factory)",
    "turns": "a 'turns' column of [{text, weight}] (our Reddit build, the seed's .tsv)",
    "strings": "a column of [str, ...] (dialog/utterances/turns, DailyDialog-style)",
    "prompt_completion": "'prompt' + 'completion' columns (TRL; strings or message lists)",
    "context_response": "'context' + 'response' columns (context turns joined by ' EOS ')",
    "speaker_table": "one utterance per row: a text column + a speaker column (+ a dialogue id column)",
}
SYSTEM_MESSAGES = ("drop", "context")
DEFAULT_USER_ROLES = ("user", "human")
DEFAULT_ASSISTANT_ROLES = ("assistant", "gpt", "bot", "model")
DEFAULT_SYSTEM_ROLES = ("system",)


class ConversationError(ValueError):
    """A user's dialogue file or option cannot be read; the message is one line naming the input."""


class MissingSplit(ConversationError):
    """The dataset has no split of that name (a validation split is optional: training catches this one)."""


def _roles(value, flag: str) -> tuple[str, ...] | None:
    """``"human,user"`` or a sequence -> a tuple of lower-cased role values (matching ignores case)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    out = tuple(str(v).strip().lower() for v in items if str(v).strip())
    if not out:
        raise ConversationError(f"{flag} needs at least one role value, got {value!r}")
    return out


@dataclass
class ConversationOptions:
    """How to read a dialogue file. ``None`` everywhere means "detect it"."""

    layout: str | None = None             # force one of LAYOUTS
    dialogue_column: str | None = None    # the column holding the dialogue (messages / conversations / dialog ...)
    role_key: str | None = None           # key of the role inside a message (role / from ...)
    content_key: str | None = None        # key of the text inside a message (content / value ...)
    user_roles: tuple[str, ...] | None = None       # role values of the user side (default: user, human)
    assistant_roles: tuple[str, ...] | None = None  # assistant side (default: assistant, gpt, bot, model)
    system_roles: tuple[str, ...] | None = None     # system messages (default: system)
    system_messages: str = "drop"         # drop (counted) | context (a weight-0 turn where it stood)
    id_column: str | None = None          # dialogue id (speaker tables group rows by it)
    speaker_column: str | None = None     # speaker / character / author of a speaker-table row
    text_column: str | None = None        # the utterance of a speaker-table row
    prompt_column: str | None = None      # prompt_completion: the prompt (default 'prompt')
    completion_column: str | None = None  # prompt_completion: the completion (default 'completion')
    context_column: str | None = None     # context_response: the context (default 'context')
    response_column: str | None = None    # context_response: the response (default 'response')
    min_turns: int = 2                    # dialogues with fewer turns (system turns not counted) are skipped
    strict: bool = False                  # any counted skip is an error naming the input and the reason

    def __post_init__(self):
        if self.layout is not None and self.layout not in LAYOUTS:
            raise ConversationError(f"--layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.system_messages not in SYSTEM_MESSAGES:
            raise ConversationError(f"--system_messages must be drop or context, got {self.system_messages!r}")
        if not isinstance(self.min_turns, int) or self.min_turns < 1:
            raise ConversationError(f"min_turns must be an integer >= 1, got {self.min_turns!r}")
        for name in ("user_roles", "assistant_roles", "system_roles"):
            setattr(self, name, _roles(getattr(self, name), f"--{name}"))
        seen: dict[str, str] = {}
        for side, values in self.role_sides().items():
            for v in values:
                if seen.setdefault(v, side) != side:
                    raise ConversationError(f"role value {v!r} is given to both --{seen[v]}_roles and --{side}_roles")

    def role_sides(self) -> dict[str, tuple[str, ...]]:
        """side -> role values; a side the user set replaces its defaults, the others keep theirs."""
        given = {"user": self.user_roles, "assistant": self.assistant_roles, "system": self.system_roles}
        defaults = {"user": DEFAULT_USER_ROLES, "assistant": DEFAULT_ASSISTANT_ROLES, "system": DEFAULT_SYSTEM_ROLES}
        taken = {v for vals in given.values() if vals for v in vals}
        # a default role value the user gave to another side moves there (e.g. --user_roles bot)
        return {side: vals if vals is not None else tuple(v for v in defaults[side] if v not in taken)
                for side, vals in given.items()}

    def role_map(self) -> dict[str, str]:
        """Lower-cased role value -> ``user`` | ``assistant`` | ``system``."""
        return {v: side for side, values in self.role_sides().items() for v in values}

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def from_llamafactory(entry: Mapping, **overrides) -> ConversationOptions:
    """Options from one LLaMA-Factory ``dataset_info.json`` entry (``formatting: sharegpt``).

    ``columns.messages`` names the dialogue column; ``tags`` give the role/content keys and the
    user/assistant/system role values (LLaMA-Factory's defaults: from/value, human/gpt/system).
    Observation and function-call messages have no place in DialoGPT: they are unknown roles.
    """
    if entry.get("formatting", "alpaca") != "sharegpt":
        raise ConversationError("only LLaMA-Factory's sharegpt formatting maps to a dialogue layout "
                                f"(got formatting {entry.get('formatting', 'alpaca')!r})")
    columns, tags = entry.get("columns") or {}, entry.get("tags") or {}
    role_key = tags.get("role_tag", "from")
    kw = dict(layout="sharegpt" if role_key == "from" else "messages",
              dialogue_column=columns.get("messages", "conversations"), role_key=role_key,
              content_key=tags.get("content_tag", "value"), user_roles=(tags.get("user_tag", "human"),),
              assistant_roles=(tags.get("assistant_tag", "gpt"),), system_roles=(tags.get("system_tag", "system"),))
    kw.update(overrides)
    return ConversationOptions(**kw)


def from_axolotl(dataset: Mapping, **overrides) -> ConversationOptions:
    """Options from one axolotl ``datasets:`` entry of ``type: chat_template``.

    Reads ``field_messages``, ``message_property_mappings`` (or the older ``message_field_role`` /
    ``message_field_content``) and ``roles`` ({user: [...], assistant: [...], system: [...]}).
    """
    props = dataset.get("message_property_mappings") or {}
    roles = dataset.get("roles") or {}
    kw = dict(dialogue_column=dataset.get("field_messages", "messages"),
              role_key=props.get("role", dataset.get("message_field_role", "role")),
              content_key=props.get("content", dataset.get("message_field_content", "content")),
              user_roles=roles.get("user"), assistant_roles=roles.get("assistant"), system_roles=roles.get("system"))
    kw.update(overrides)
    return ConversationOptions(**kw)
