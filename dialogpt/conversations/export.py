"""Read dialogues -> the rows ``dialogpt-data prepare`` writes: ``dialogue_id``, ``turns`` and ``messages``.

``turns`` (``{text, weight, role, speaker}``) is the reader's row with each weight set under ``--train_on``
(:func:`dialogpt.windowing.train_on_weights`): with ``assistant`` or a speaker name the other turns are
written with weight 0, so ``dialogpt-train --dataset DIR`` (whose reader takes ``turns`` first and alternates
roles there) trains the same turns with its default ``--train_on all``.

``messages`` (``{role, content, trainable}``) is the same dialogue for stock tools (TRL, ``apply_chat_template``),
as the Reddit build writes it (``dialogpt_dataset/messages.py``): ``trainable`` is true exactly where
:mod:`dialogpt.chat_format` puts labels (not the first turn, not a weight-0 turn), so the tokenizer's
``{% generation %}`` blocks and TRL's assistant-only loss train what DialoGPT trains. Roles are the rows'
own (``user``, ``assistant``, ``system`` kept as context with ``--system_messages context``); a script's
character, which has none, is ``assistant`` when it is the ``--train_on`` speaker and ``user`` otherwise,
and under ``all`` / ``assistant`` alternates back from the last turn, as ``train_on_weights`` counts it.
(The chat template skips system messages, as DialoGPT has no system role, while ``turns`` keeps them as
context: with ``--system_messages context`` the template's first turn is the first non-system one, so the two
encodings differ there; by default system messages are dropped on reading and they agree.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dialogpt.windowing import train_on_weights

SIDES = ("user", "assistant", "system")


def prepared_features():
    import datasets

    turn = {"text": datasets.Value("string"), "weight": datasets.Value("float32"),
            "role": datasets.Value("string"), "speaker": datasets.Value("string")}
    message = {"role": datasets.Value("string"), "content": datasets.Value("string"),
               "trainable": datasets.Value("bool")}
    return datasets.Features({"dialogue_id": datasets.Value("string"), "turns": datasets.List(turn),
                              "messages": datasets.List(message)})


def _role(turn: Mapping, i: int, n: int, train_on: str) -> str:
    role = turn.get("role") or ""
    if role in SIDES:
        return role
    if train_on not in ("all", "assistant"):
        return "assistant" if turn.get("speaker") == train_on else "user"
    return "assistant" if (n - 1 - i) % 2 == 0 else "user"


def prepared_row(turns: Sequence[Mapping], train_on: str = "all") -> dict:
    """One dialogue's ``turns`` (weights under ``train_on``) and ``messages``."""
    weights = train_on_weights(turns, train_on)
    n = len(turns)
    out_turns = [{"text": t["text"], "weight": w, "role": t.get("role") or "", "speaker": t.get("speaker") or ""}
                 for t, w in zip(turns, weights)]
    messages = [{"role": _role(t, i, n, train_on), "content": t["text"], "trainable": i > 0 and w != 0.0}
                for i, (t, w) in enumerate(zip(turns, weights))]
    return {"turns": out_turns, "messages": messages}


def _prepare_batch(batch, train_on: str):
    rows = [prepared_row(turns, train_on) for turns in batch["turns"]]
    return {"dialogue_id": batch["dialogue_id"], "turns": [r["turns"] for r in rows],
            "messages": [r["messages"] for r in rows]}


def prepare_rows(ds, train_on: str = "all", num_proc: int | None = None):
    """Dialogues (``dialogue_id``, ``turns``) -> the prepared rows (a cached, batched ``datasets.map``)."""
    n_proc = num_proc if (num_proc and num_proc > 1 and len(ds) >= 2 * num_proc) else None
    return ds.map(_prepare_batch, batched=True, fn_kwargs={"train_on": train_on}, features=prepared_features(),
                  remove_columns=ds.column_names, num_proc=n_proc, desc="writing turns and messages")
