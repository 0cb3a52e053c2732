"""Candidate rerankers: forward log-prob, MMI (reverse model) and DialogRPT.

Every reranker maps ``histories`` (one list of turns per context) and ``candidates`` (one list of
reply strings per context) to one score per candidate, higher = better, all batched.

* ``logprob``: log p(candidate | history) under the forward model (optionally per token).
* ``mmi``: log p(source | candidate) under the reverse model, i.e. the sum of label log-probs of
  ``chat_format.encode_reverse`` (the DialoGPT paper's MMI reranking; length-normalised option).
* ``dialogrpt``: golsun/DialogRPT rankers as ``GPT2ForSequenceClassification`` (one label). The
  input is each context turn followed by ``<|endoftext|>``, then the response with no closing
  EOS; the score is the sigmoid of the logit at the response's last token (``src/model.py``
  ``ScorerBase.predict`` / ``Scorer.core``). With several rankers the original ensemble applies:
  ``final = prior * cond`` where each side is the weight-averaged score of its rankers, and a side
  with no ranker counts as 1 (``JointScorer.core``; weights may be negative, as ``width`` is in
  ``restore/ensemble.yml``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from dialogpt.chat_format import Turn, as_turns, build_prompt_ids, encode_reverse, encode_token_turns
from dialogpt.tensors import pad_right, token_nll

RERANK_CHOICES = ("none", "logprob", "mmi", "dialogrpt")


class Reranker(Protocol):
    def score(self, histories: Sequence[Sequence[Turn]], candidates: Sequence[Sequence[str]]) -> list[list[float]]:
        ...


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


def _max_positions(model, default: int = 1024) -> int:
    cfg = model.config
    return int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None) or default)


@torch.no_grad()
def sequence_logprobs(
    model, examples: Sequence[tuple[Sequence[int], Sequence[int]]], batch_size: int = 16, pad_id: int = 0,
) -> list[tuple[float, int]]:
    """Sum of log p(label) over the label positions of each ``(input_ids, labels)`` pair.

    Returns ``(sum_logprob, num_label_tokens)`` per example. Batches are padded and scored by the
    training code's own helpers (:func:`dialogpt.tensors.pad_right`, :func:`~dialogpt.tensors.token_nll`),
    sorted by length so little is padded: a reranker score is minus the training loss of that row.
    """
    device = _model_device(model)
    out: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        for i in idx:
            if len(examples[i][0]) != len(examples[i][1]):
                raise ValueError(f"example {i}: {len(examples[i][0])} input ids but {len(examples[i][1])} labels")
        batch = pad_right([examples[i][0] for i in idx], [examples[i][1] for i in idx], pad_id=pad_id)
        width = batch["input_ids"].shape[1]
        pos = torch.arange(width).unsqueeze(0).expand(len(idx), -1)
        logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                       position_ids=pos.to(device)).logits
        nll, counts = token_nll(logits, batch["labels"].to(device))
        for row, i in enumerate(idx):
            out[i] = (-float(nll[row]), int(counts[row]))
    return out


def _reshape(flat: list[float], candidates: Sequence[Sequence[str]]) -> list[list[float]]:
    res, k = [], 0
    for cands in candidates:
        res.append(flat[k:k + len(cands)])
        k += len(cands)
    return res


@dataclass
class LogprobReranker:
    """log p(candidate + EOS | prompt) under the forward model.

    The prompt is ``build_prompt_ids(history, max_prompt_tokens)`` (the Responder sets the budget it
    generated with), and never so long that prompt + candidate overflow the model's positions:
    whole turns go first, as in generation.
    """

    model: object
    tokenizer: object
    max_prompt_tokens: int | None = None
    length_normalize: bool = False
    batch_size: int = 16

    def score(self, histories, candidates) -> list[list[float]]:
        eos = self.tokenizer.eos_token_id
        window = _max_positions(self.model)
        examples = []
        for hist, cands in zip(histories, candidates):
            prompts: dict[int, list[int]] = {}
            for c in cands:
                resp = self.tokenizer(c, add_special_tokens=False)["input_ids"][: window - 2]
                budget = window - len(resp) - 1
                if self.max_prompt_tokens is not None:
                    budget = min(budget, self.max_prompt_tokens)
                if budget not in prompts:
                    prompts[budget] = build_prompt_ids(self.tokenizer, hist, budget)
                # The prompt (its closing EOS dropped: the format adds it back) as one context turn,
                # the candidate as the trained turn: chat_format gives the labels training uses,
                # the candidate's tokens and its closing EOS.
                enc = encode_token_turns([prompts[budget][:-1], resp], [0.0, 1.0], eos, max_seq_length=None)
                examples.append((enc.input_ids, enc.labels))
        scores = sequence_logprobs(self.model, examples, self.batch_size, eos)
        flat = [s / max(n, 1) if self.length_normalize else s for s, n in scores]
        return _reshape(flat, candidates)


@dataclass
class MMIReranker:
    """log p(source | candidate) under the reverse (MMI) model, via ``encode_reverse``."""

    reverse_model: object
    tokenizer: object
    length_normalize: bool = False
    max_seq_length: int | None = None
    batch_size: int = 16

    def score(self, histories, candidates) -> list[list[float]]:
        limit = self.max_seq_length or _max_positions(self.reverse_model)
        examples = []
        for hist, cands in zip(histories, candidates):
            ts = as_turns(hist)
            for c in cands:
                enc = encode_reverse(self.tokenizer, ts + [Turn(c, 1.0)], limit)
                examples.append((enc.input_ids, enc.labels))
        scores = sequence_logprobs(self.reverse_model, examples, self.batch_size, self.tokenizer.eos_token_id)
        flat = [s / max(n, 1) if self.length_normalize else s for s, n in scores]
        return _reshape(flat, candidates)


@dataclass
class RankerSpec:
    """One DialogRPT ranker of an ensemble: where it is, which side (prior/cond) and its weight."""

    path: str
    kind: str = "cond"
    weight: float = 1.0
    name: str = ""

    def __post_init__(self):
        if self.kind not in ("prior", "cond"):
            raise ValueError(f"ranker {self.path!r}: kind must be 'prior' or 'cond', got {self.kind!r}")
        self.name = self.name or Path(self.path).name


def parse_ranker_specs(values: Sequence[str]) -> list[RankerSpec]:
    """``--ranker`` values -> specs.

    Each value is a model dir / hub id (a ``cond`` ranker with weight 1), optionally written
    ``prior:PATH``, ``cond:PATH`` and/or ``PATH@WEIGHT``; or a YAML file in DialogRPT's
    ``restore/ensemble.yml`` layout (``prior:`` / ``cond:`` lists of ``{name, wt, path}``).
    """
    specs: list[RankerSpec] = []
    for v in values:
        if v.endswith((".yml", ".yaml")):
            import yaml

            p = Path(v)
            if not p.is_file():
                raise FileNotFoundError(f"--ranker {v}: no such ensemble file")
            cfg = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            for kind in ("prior", "cond"):
                for j, d in enumerate(cfg.get(kind) or []):
                    if "path" not in d:
                        raise ValueError(f"{p}: {kind}[{j}] has no 'path'")
                    path = Path(d["path"])
                    if not path.is_absolute() and (p.parent / path).exists():
                        path = p.parent / path
                    specs.append(RankerSpec(str(path), kind, float(d.get("wt", 1.0)), str(d.get("name", ""))))
            continue
        kind = "cond"
        if v.startswith(("prior:", "cond:")):
            kind, v = v.split(":", 1)
        weight = 1.0
        if "@" in v:
            v, w = v.rsplit("@", 1)
            try:
                weight = float(w)
            except ValueError:
                raise ValueError(f"--ranker weight {w!r} is not a number") from None
        specs.append(RankerSpec(v, kind, weight))
    return specs


def dialogrpt_input_ids(tokenizer, history: Sequence[Turn], response: str, max_len: int) -> list[int]:
    """DialogRPT's input: ``turn<|endoftext|>`` per context turn, then the response, no closing EOS.

    Turns and response are stripped, as ``ScorerBase.predict`` does. Too long inputs keep their end.
    """
    eos = tokenizer.eos_token_id
    texts = [t.text.strip() for t in as_turns(history)] + [response.strip()]
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    ids = [i for seg in enc[:-1] for i in seg + [eos]] + list(enc[-1])
    return ids[-max_len:]


@dataclass
class DialogRPTReranker:
    """Score candidates with one DialogRPT ranker or an ensemble (``prior x cond``)."""

    rankers: list[tuple[object, RankerSpec]]
    tokenizer: object
    batch_size: int = 16

    @classmethod
    def from_specs(cls, specs: Sequence[RankerSpec], fallback_tokenizer=None, device=None,
                   **kwargs) -> DialogRPTReranker:
        """Load the rankers (dirs or hub ids such as ``microsoft/DialogRPT-updown``).

        The tokenizer is the first ranker's own; DialogRPT shares GPT-2's vocabulary, so when a
        ranker dir has none, ``fallback_tokenizer`` (the generator's) is used.
        """
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not specs:
            raise ValueError("--rerank dialogrpt needs at least one --ranker")
        rankers = []
        for s in specs:
            m = AutoModelForSequenceClassification.from_pretrained(s.path).eval()
            if not hasattr(m, "score") or getattr(m.config, "num_labels", 1) != 1:
                raise ValueError(f"--ranker {s.path}: expected a DialogRPT GPT2ForSequenceClassification with "
                                 f"num_labels=1, got {type(m).__name__} with {m.config.num_labels} labels")
            if device is not None:
                m.to(device)
            rankers.append((m, s))
        try:
            tokenizer = AutoTokenizer.from_pretrained(specs[0].path)
        except (OSError, ValueError):
            if fallback_tokenizer is None:
                raise
            tokenizer = fallback_tokenizer
        if tokenizer.eos_token_id is None:
            raise ValueError(f"--ranker {specs[0].path}: its tokenizer has no eos_token (<|endoftext|>)")
        return cls(rankers, tokenizer, **kwargs)

    @torch.no_grad()
    def probabilities(self, model, inputs: Sequence[Sequence[int]]) -> list[float]:
        """sigmoid(logit at the last real token) for each input, right-padded batches."""
        device = _model_device(model)
        pad = self.tokenizer.eos_token_id
        base = model.base_model
        out = [0.0] * len(inputs)
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            batch = pad_right([inputs[i] for i in idx], pad_id=pad)
            ids, mask = batch["input_ids"], batch["attention_mask"]
            width = ids.shape[1]
            pos = torch.arange(width).unsqueeze(0).expand(len(idx), -1)
            hidden = base(input_ids=ids.to(device), attention_mask=mask.to(device),
                          position_ids=pos.to(device)).last_hidden_state
            logits = model.score(hidden).squeeze(-1).float()
            last = (mask.sum(-1) - 1).to(device)
            picked = torch.sigmoid(logits[torch.arange(len(idx), device=device), last]).tolist()
            for row, i in enumerate(idx):
                out[i] = float(picked[row])
        return out

    def score(self, histories, candidates) -> list[list[float]]:
        flat_inputs_by_model = []
        for model, _ in self.rankers:
            limit = _max_positions(model)
            inputs = [dialogrpt_input_ids(self.tokenizer, h, c, limit)
                      for h, cands in zip(histories, candidates) for c in cands]
            flat_inputs_by_model.append(self.probabilities(model, inputs))
        n = len(flat_inputs_by_model[0])

        def side(kind: str) -> list[float]:
            members = [(p, s.weight) for p, (_, s) in zip(flat_inputs_by_model, self.rankers) if s.kind == kind]
            if not members:
                return [1.0] * n
            total = sum(w for _, w in members)
            if total == 0:
                raise ValueError(f"DialogRPT {kind} rankers' weights sum to 0")
            return [sum(p[k] * w for p, w in members) / total for k in range(n)]

        prior, cond = side("prior"), side("cond")
        return _reshape([a * b for a, b in zip(prior, cond)], candidates)
