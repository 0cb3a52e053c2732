"""bench/conversations.py runs (small) and writes the JSON the committed results come from."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "conversations.py"


def test_reader_bench_smoke(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_conversations", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "r.json"
    assert mod.main(["--dialogues", "300", "--output", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["dialogues"] == 300 and got["turns"] >= 600
    assert set(got["results"]) == {"parquet_load_dataset_only", "parquet_load_conversations_cold",
                                   "parquet_load_conversations_cached", "jsonl_messages_cold", "jsonl_messages_cached"}
    assert all(v["cpu_s"] >= 0 and v["wall_s"] >= 0 for v in got["results"].values())
    assert len(got["loadavg_before"]) == 3 and got["command"].endswith("--dialogues 300")
    committed = json.loads(BENCH.with_name("conversations.results.json").read_text())
    assert committed["command"] == "python bench/conversations.py --dialogues 100000"
