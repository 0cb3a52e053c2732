"""The judges' HTTP API (blind by construction, clean 4xx), and `dialogpt-human-eval serve` killed and restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_helpers import free_port
from fastapi.testclient import TestClient
from test_human_eval_store import all_first, write_inputs

from dialogpt.serve.human_eval_app import create_human_eval_app
from dialogpt.serve.human_eval_inputs import QUESTIONS, load_inputs
from dialogpt.serve.human_eval_store import VoteStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def client(tmp_path):
    store = VoteStore.create_or_open(tmp_path / "v.sqlite", load_inputs(*write_inputs(tmp_path, n=3)))
    return TestClient(create_human_eval_app(store))


def test_the_api_never_says_which_side_is_a(client):
    page = client.get("/")
    assert page.status_code == 200 and "Response 1" in page.text
    assert "a.hyp.txt" not in page.text and "b.hyp.txt" not in page.text
    item = client.get("/api/next", params={"judge": "ann"}).json()
    assert set(item) == {"done", "item", "context", "first", "second", "judged", "total"}
    assert item["done"] is False and item["judged"] == 0 and item["total"] == 3
    assert client.get("/api/info").json()["questions"] == QUESTIONS


def test_bad_requests_get_clean_4xx(client):
    assert client.get("/api/next", params={"judge": "<script>"}).status_code == 400
    assert client.get("/api/next").status_code == 422
    item = client.get("/api/next", params={"judge": "ann"}).json()["item"]
    vote = {"judge": "ann", "item": item, "answers": all_first()}
    assert client.post("/api/vote", json={**vote, "answers": {"relevance": "first"}}).status_code == 400
    assert client.post("/api/vote", json={**vote, "answers": all_first("A")}).status_code == 400  # A/B not accepted
    assert client.post("/api/vote", json={**vote, "judge": "bob"}).status_code == 409  # never shown to bob
    assert client.post("/api/vote", json=vote).json() == {"ok": True}
    again = client.post("/api/vote", json=vote)
    assert again.status_code == 409 and "already answered" in again.json()["detail"]
    assert client.post("/api/vote", content=b"[" * 100_000, headers={"content-type": "application/json"}).status_code < 500


@pytest.mark.parametrize("body, status, needle", [
    (b'{"judge": "ann", "item": ' + b"9" * 5000 + b', "answers": {}}', 400, "'item' is a number of 5000 digits"),
    (b'{"judge": "ann", "item": NaN, "answers": {}}', 400, "'item' is NaN"),
    (b'{"judge": "ann", "item": 0, "answers": {"x": "\\ud800"}}', 400, "'answers.x' is not valid Unicode"),
    (b'{"judge": "ann", "item": 0, "answers": {}, "pad": "' + b"x" * 70_000 + b'"}', 413, "at most 65536"),
    (b"[1]", 400, "body must be"),
])
def test_vote_bodies_take_the_api_servers_checks(client, body, status, needle):
    r = client.post("/api/vote", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status and needle in r.json()["detail"], r.text


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def _start(args: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dialogpt.cli.human_eval", "serve", *args, "--port", str(port)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            _get(base + "/api/info")
            return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"server did not start: {proc.stdout.read()}") from None
            time.sleep(0.2)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_serve_killed_mid_session_loses_no_vote_and_resumes(tmp_path):
    ctx, a, b = write_inputs(tmp_path, n=3)
    args = ["--contexts", str(ctx), "--a", str(a), "--b", str(b), "--store", str(tmp_path / "v.sqlite")]
    proc, base = _start(args)
    try:
        first = _get(base + "/api/next?judge=ann")
        assert _post(base + "/api/vote", {"judge": "ann", "item": first["item"], "answers": all_first()})["ok"]
        pending = _get(base + "/api/next?judge=ann")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    proc, base = _start(args)
    try:
        again = _get(base + "/api/next?judge=ann")
        assert (again["item"], again["first"], again["judged"]) == (pending["item"], pending["first"], 1)
    finally:
        proc.terminate()
        proc.wait(30)
    votes = VoteStore.open(tmp_path / "v.sqlite").votes()
    assert [(v.judge, v.item) for v in votes] == [("ann", first["item"])] * len(QUESTIONS)
