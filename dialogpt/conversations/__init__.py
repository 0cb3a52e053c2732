"""The user's own dialogues, in the formats they already have, read the same way by train, eval and chat.

    from dialogpt.conversations import ConversationOptions, load_conversations, split_dialogues
    ds, report = load_conversations(files=["chats.jsonl"])      # or dataset="./folder" / "org/name"
    print(report.describe())
    train, validation = split_dialogues(ds, 5.0, seed=42)

Inputs: ``.jsonl``, ``.json`` (an array or JSON Lines), ``.csv``, ``.parquet``, ``.arrow`` and the seed's
``.tsv`` (through :mod:`dialogpt.legacy_tsv`); a folder of them (split by datasets' file naming: ``train.*``,
``validation.*``, ``test.*``); a built dataset, a ``save_to_disk`` folder or a Hub id (+ config, split).

Layouts (detected; ``ConversationOptions`` overrides every guess) and the weights they give
(weight 0.0 = context only, 1.0 = may be trained; DialoGPT never trains a dialogue's first turn, a
rule :mod:`dialogpt.chat_format` applies later):

* ``messages`` ``[{role, content}]`` (OpenAI/TRL; ``content`` a string or a list of parts, whose text
  parts are joined by a newline) and ``sharegpt`` ``[{from, value}]``: every user and assistant
  message 1.0, except one the file marks untrained (``trainable: false``, axolotl's ``weight: 0`` or
  ``training: false``): 0.0;
* ``turns`` ``[{text, weight}]`` (our Reddit build, the seed's TSV): the file's weights (and the
  ``role`` / ``speaker`` of ``dialogpt-data prepare``'s ``{text, weight, role, speaker}``);
* ``strings``: a list of strings per row (``dialog``, ``utterances`` ...): all 1.0;
* ``prompt_completion`` (TRL) and ``context_response`` (a context string holds turns joined by
  `` EOS ``, DSTC-7 style): the prompt/context turns 0.0, the completion/response 1.0 (TRL's
  completion-only loss);
* ``speaker_table``: one utterance per row, grouped by a dialogue-id column in order of first
  appearance (rows of a dialogue need not be contiguous; file order is kept inside); without an id
  column a whole file is one dialogue (a script: windowing makes it trainable). All 1.0.

Roles: ``user`` / ``assistant`` through the role map (defaults user/human -> user,
assistant/gpt/bot/model -> assistant, system -> system; matching ignores case; LLaMA-Factory's
``tags`` and axolotl's ``roles`` map onto the same options, see :func:`from_llamafactory` and
:func:`from_axolotl`); role-less turns alternate back from the last turn, the assistant; a script's
character that maps to no side has role ``""`` and its name in ``speaker``.

System messages: DialoGPT has no system role. ``system_messages="drop"`` (default) drops them and
counts them; ``"context"`` keeps each as a weight-0 turn with role ``system`` where it stood.

Skips (counted by reason in the report; ``strict`` makes the first one an error naming the input):
a turn with empty text or text that is not a string is dropped (``empty_turn``, ``non_string_turn``),
as is a content part that is not text (``non_text_part``) and a table row with an empty dialogue id
(``missing_id``); a dialogue with a role that maps to no side (``unknown_role``), a cell that is not a
dialogue (``not_a_dialogue``) or fewer than ``min_turns`` turns left (``too_few_turns``, system turns
not counted) is dropped whole. Consecutive turns of one speaker stay separate turns. Texts keep their
inner whitespace; outer whitespace is stripped.
"""

from dialogpt.conversations.load import dialogue_contexts, load_conversations
from dialogpt.conversations.options import (
    LAYOUTS,
    ConversationError,
    ConversationOptions,
    MissingSplit,
    from_axolotl,
    from_llamafactory,
)
from dialogpt.conversations.readers import file_type
from dialogpt.conversations.report import ConversationReport
from dialogpt.conversations.split import split_dialogues

__all__ = ["LAYOUTS", "ConversationError", "ConversationOptions", "ConversationReport", "MissingSplit", "dialogue_contexts", "file_type",
           "from_axolotl", "from_llamafactory", "load_conversations", "split_dialogues"]
