"""Shared fixtures: a tiny GPT-2, a ByteLevel BPE tokenizer trained here, and a loopback mock Hub.

Nothing is downloaded. The mock Hub is started at import time, before anything imports
``huggingface_hub``, because the library reads ``HF_ENDPOINT`` once, when it is first imported.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
DATA_DIR = TESTS_DIR / "data"
REPO_ROOT = TESTS_DIR.parent

# --- environment that must exist before huggingface_hub / transformers / datasets are imported ---
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="dialogpt-tests-"))
os.environ["HF_HOME"] = str(_SESSION_TMP / "hf_home")
os.environ["HF_DATASETS_CACHE"] = str(_SESSION_TMP / "hf_datasets_cache")
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.pop("HF_TOKEN", None)
sys.path.insert(0, str(TESTS_DIR))

from mock_hub import MockHubServer  # noqa: E402  (stdlib only; must precede huggingface_hub)

MOCK_HUB = MockHubServer(storage_dir=_SESSION_TMP / "mock_hub")
MOCK_HUB.start()
os.environ["HF_ENDPOINT"] = MOCK_HUB.url

import pytest  # noqa: E402

TINY_GPT2 = dict(n_layer=2, n_head=2, n_embd=64, n_positions=256)


def pushshift_texts() -> list[str]:
    """Real Reddit text from the shipped Pushshift samples: the tokenizer's training corpus."""
    texts = []
    for name, keys in (("test_comments.json", ("body",)), ("test_submissions.json", ("title", "selftext"))):
        with open(DATA_DIR / "pushshift" / name, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                texts.extend(str(rec.get(k) or "") for k in keys)
    return [t for t in texts if t]


@pytest.fixture(scope="session")
def mock_hub() -> MockHubServer:
    """The loopback Hub every test talks to (``HF_ENDPOINT`` already points at it)."""
    return MOCK_HUB


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    from dialogpt.tokenization import train_bytelevel_tokenizer

    d = tmp_path_factory.mktemp("tokenizer")
    train_bytelevel_tokenizer(pushshift_texts(), vocab_size=1000, save_dir=d)
    return d


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_dir))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer_dir, tokenizer) -> Path:
    """A randomly initialised 2-layer, 64-wide GPT-2 saved with its tokenizer (seeded, so stable)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id, **TINY_GPT2,
    )
    model = GPT2LMHeadModel(config)
    d = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(str(d))
    tokenizer.save_pretrained(str(d))
    return d


@pytest.fixture()
def tiny_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
