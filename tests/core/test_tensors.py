"""The shared padding and loss agree with GPT-2's own loss and keep the EOS labels."""

from __future__ import annotations

import pytest
import torch

from dialogpt.chat_format import IGNORE_INDEX
from dialogpt.tensors import pad_right, token_nll


def test_pad_right_masks_padding_and_keeps_eos_labels():
    eos = 9
    batch = pad_right([[1, 2, eos], [3, eos, 4, eos, 5]], [[IGNORE_INDEX, 2, eos], [-100, eos, 4, eos, 5]],
                      pad_id=eos, pad_to_multiple_of=4)
    assert batch["input_ids"].tolist() == [[1, 2, eos, eos, eos, eos, eos, eos], [3, eos, 4, eos, 5, eos, eos, eos]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]]
    assert batch["labels"][0].tolist() == [-100, 2, eos, -100, -100, -100, -100, -100]


def test_pad_right_refuses_mismatched_labels():
    with pytest.raises(ValueError, match="row 0 has 2 ids but 1 labels"):
        pad_right([[1, 2]], [[1]], pad_id=0)


def test_token_nll_equals_the_models_mean_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    labels = torch.tensor([[-100, 3, 4, -100, -100], [-100, -100, 1, 2, 7]])
    total, count = token_nll(logits, labels)
    assert count.tolist() == [2, 3]
    ref = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1))
    assert torch.allclose(total.sum() / count.sum(), ref)
