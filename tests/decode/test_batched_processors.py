"""process_rows: many rows with their own penalties and sampling values, batched, give each row
exactly what its own transformers processors give it alone."""

from __future__ import annotations

import torch

from dialogpt.decode import GenerationOptions
from dialogpt.decode.processors import process_rows, response_processors, sampling_warpers


def test_process_rows_equals_each_rows_own_processors():
    torch.manual_seed(0)
    vocab = 50
    options = [
        GenerationOptions(),  # greedy, nothing to do
        GenerationOptions(repetition_penalty=1.3),
        GenerationOptions(repetition_penalty=1.3, frequency_penalty=0.5, presence_penalty=-0.25),
        GenerationOptions(strategy="sample", temperature=0.7, top_k=5, top_p=0.9, repetition_penalty=1.3),
        GenerationOptions(strategy="sample", temperature=1.3, top_k=0, top_p=0.5),
        GenerationOptions(strategy="sample", top_k=3),
        GenerationOptions(repetition_penalty=1.3),
    ]
    generated = [[1, 2], [3, 3, 4], [5, 5, 5, 6], [7], [], [8, 9], []]
    scores = torch.randn(len(options), vocab) * 3
    got = process_rows(scores.clone(), generated, options)
    for i, (opts, gen) in enumerate(zip(options, generated)):
        prompt = [11, 12, 13]  # what the rows' own processors see: prompt + response
        ids = torch.tensor([prompt + gen])
        want = response_processors(opts, len(prompt))(ids, scores[i:i + 1].clone())
        want = sampling_warpers(opts)(ids, want)
        assert torch.equal(got[i:i + 1], want), f"row {i}"
    assert torch.equal(got[0], scores[0]) and not torch.equal(got[1], scores[1])
    assert 1 <= int(torch.isfinite(got[3]).sum()) <= 5  # top-k 5, then top-p
