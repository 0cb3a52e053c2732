"""The flags that say how to read the user's dialogues, shared by every command that reads them.

One argparse group (:func:`add_conversation_args`) and one way back to
:class:`~dialogpt.conversations.ConversationOptions` (:func:`options_from_args`). Flag names are the
option field names (``--dialogue_column``, ``--user_roles`` ...; the dashed spelling works too), so
``dialogpt-train``'s ``TrainConfig`` fields, YAML keys and these flags are one vocabulary.
"""

from __future__ import annotations

import argparse

from dialogpt.conversations import LAYOUTS, ConversationOptions
from dialogpt.conversations.options import SYSTEM_MESSAGES

#: help text of each flag (``dialogpt-train`` reuses these for its TrainConfig fields)
CONVERSATION_HELP = {
    "dataset_config": "config (subset) of a Hub dataset, as load_dataset(name, config)",
    "layout": "force the layout instead of detecting it: " + ", ".join(LAYOUTS),
    "dialogue_column": "the column holding each dialogue (default: turns, messages, conversations, dialog, "
                       "dialogue, utterances, chat ... whichever exists)",
    "role_key": "key of the role inside a message (default: role, from, speaker, author, sender)",
    "content_key": "key of the text inside a message (default: content, value, text, message)",
    "user_roles": "comma-separated role values of the user side (default: user,human; LLaMA-Factory's "
                  "user_tag, axolotl's roles.user)",
    "assistant_roles": "comma-separated role values of the assistant side (default: assistant,gpt,bot,model)",
    "system_roles": "comma-separated role values of system messages (default: system)",
    "system_messages": "DialoGPT has no system role: drop them (counted; default) or keep each as a context-only "
                       "turn where it stood",
    "id_column": "dialogue id column (speaker tables group their rows by it: dialogue_id, conversation_id, "
                 "dialog_id ...)",
    "speaker_column": "speaker table: the speaker/character column (default: speaker, character, author, from, "
                      "role, sender, name)",
    "text_column": "speaker table: the utterance column (default: text, line, content, utterance, value, message)",
    "prompt_column": "prompt_completion: the prompt column (default: prompt; context only)",
    "completion_column": "prompt_completion: the completion column (default: completion; trained)",
    "context_column": "context_response: the context column (default: context; turns joined by ' EOS ')",
    "response_column": "context_response: the response column (default: response; trained)",
    "strict": "make every counted skip (empty turn, unknown role, too few turns ...) an error",
}
#: the ConversationOptions fields that are flags (min_turns is each command's own business)
OPTION_FLAGS = [n for n in ConversationOptions.field_names() if n != "min_turns"]
CHOICES = {"layout": LAYOUTS, "system_messages": SYSTEM_MESSAGES}


def _flags(name: str) -> list[str]:
    return [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])


def add_conversation_args(parser: argparse.ArgumentParser, *, dataset_config: bool = True):
    """Add the dialogue-reading flags (and ``--dataset_config`` unless told not to); returns the group."""
    g = parser.add_argument_group("reading dialogue files (jsonl, json, csv, parquet, arrow, tsv; folders, "
                                  "Hub ids): the layout is detected, these override it")
    names = (["dataset_config"] if dataset_config else []) + OPTION_FLAGS
    for name in names:
        if name == "strict":
            g.add_argument(*_flags(name), dest=name, action=argparse.BooleanOptionalAction,
                           help=CONVERSATION_HELP[name])
        else:  # no default here: the parser's own (None, or SUPPRESS in dialogpt-train's) applies
            g.add_argument(*_flags(name), dest=name, choices=CHOICES.get(name),
                           metavar=None if name in CHOICES else name.upper(), help=CONVERSATION_HELP[name])
    return g


def options_from_args(args: argparse.Namespace, **overrides) -> ConversationOptions:
    """The options the parsed flags give (a flag not given keeps the option's default)."""
    kw = {n: getattr(args, n) for n in OPTION_FLAGS if getattr(args, n, None) is not None}
    kw.update(overrides)
    return ConversationOptions(**kw)


def conversation_args_names(dataset_config: bool = True) -> list[str]:
    """The ``dest`` names :func:`add_conversation_args` adds (to take them out of a command's own config)."""
    return (["dataset_config"] if dataset_config else []) + OPTION_FLAGS
