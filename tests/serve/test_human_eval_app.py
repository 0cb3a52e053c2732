"""The judges' HTTP API (blind by construction, clean 4xx), judge links (only a valid token votes, as its own
judge, once per item, 50 at once), and `dialogpt-human-eval serve` killed and restarted."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from browser_helpers import free_port, live_server
from fastapi.testclient import TestClient
from test_human_eval_store import all_first, write_inputs

from dialogpt.cli.human_eval import main
from dialogpt.serve.human_eval_app import HumanEvalConfig, create_human_eval_app
from dialogpt.serve.human_eval_inputs import QUESTIONS, load_inputs
from dialogpt.serve.human_eval_store import VoteStore, token_digest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def client(tmp_path):
    store = VoteStore.create_or_open(tmp_path / "v.sqlite", load_inputs(*write_inputs(tmp_path, n=3)))
    return TestClient(create_human_eval_app(store, HumanEvalConfig(open=True)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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
    assert client.get("/api/next").status_code == 400  # no name, no link
    item = client.get("/api/next", params={"judge": "ann"}).json()["item"]
    vote = {"judge": "ann", "item": item, "answers": all_first()}
    assert client.post("/api/vote", json={**vote, "answers": {"relevance": "first"}}).status_code == 400
    assert client.post("/api/vote", json={**vote, "answers": all_first("A")}).status_code == 400  # A/B not accepted
    assert client.post("/api/vote", json={**vote, "judge": "bob"}).status_code == 409  # never shown to bob
    assert client.post("/api/vote", json=vote).json() == {"ok": True}
    again = client.post("/api/vote", json=vote)
    assert again.status_code == 409 and "already answered" in again.json()["detail"]
    assert client.post("/api/vote", content=b"[" * 100_000, headers={"content-type": "application/json"}).status_code < 500


def test_judge_links_decide_who_votes_and_the_report_counts_them(tmp_path, capsys):
    ctx, a, b = write_inputs(tmp_path, n=3)
    path = tmp_path / "v.sqlite"
    assert main(["invite", "--contexts", str(ctx), "--a", str(a), "--b", str(b), "--store", str(path),
                 "--judges", "2", "--base-url", "https://eval.example/"]) == 0
    links = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert list(links) == ["judge-001", "judge-002"]
    assert all(u.startswith("https://eval.example/#token=") for u in links.values())
    t1, t2 = (u.split("#token=")[1] for u in links.values())
    with sqlite3.connect(path) as db:  # only hashes are kept
        assert db.execute("SELECT judge, token_sha256 FROM judges ORDER BY judge").fetchall() == [
            ("judge-001", token_digest(t1)), ("judge-002", token_digest(t2))]
    assert not any(t1.encode() in f.read_bytes() for f in tmp_path.glob("v.sqlite*"))
    store = VoteStore.open(path)
    client = TestClient(create_human_eval_app(store))  # links only (no --open)
    assert client.get("/api/info").json()["mode"] == "link"
    assert client.get("/api/info", headers=bearer(t1)).json()["judge"] == "judge-001"
    assert client.get("/api/next", params={"judge": "ann"}).status_code == 403  # typed names: no
    assert client.get("/api/next", headers=bearer("made-up")).status_code == 403
    item = client.get("/api/next", headers=bearer(t1)).json()["item"]
    vote = {"item": item, "answers": all_first()}
    for headers, body in [(bearer("made-up"), vote), ({}, {**vote, "judge": "judge-001"}),
                          (bearer(t1), {**vote, "judge": "judge-002"}), (bearer(t2), {**vote, "judge": "judge-001"})]:
        r = client.post("/api/vote", json=body, headers=headers)
        assert r.status_code == 403, (headers, body, r.text)
    assert store.votes() == []  # nothing written by any of them
    assert client.post("/api/vote", json=vote, headers=bearer(t1)).json() == {"ok": True}
    assert client.post("/api/vote", json=vote, headers=bearer(t1)).status_code == 409  # replayed: counted once
    assert client.post("/api/vote", json=vote, headers=bearer(t2)).status_code == 409  # never shown to judge-002
    opened = TestClient(create_human_eval_app(store, HumanEvalConfig(open=True)))
    assert opened.get("/api/next", params={"judge": "judge-002"}).status_code == 403  # a link judge's name
    zed = opened.get("/api/next", params={"judge": "zed"}).json()["item"]
    assert opened.post("/api/vote", json={"judge": "zed", "item": zed, "answers": all_first()}).json()["ok"]
    assert main(["report", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["judge_links"] == 2 and report["judges"] == ["judge-001", "zed"]
    assert report["per_judge"] == {"judge-001": {"link": True, "items": 1, "judgments": 3},
                                   "judge-002": {"link": True, "items": 0, "judgments": 0},
                                   "zed": {"link": False, "items": 1, "judgments": 3}}
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 judge link(s) issued, 1 used; 1 typed name(s) (--open)" in out and "| judge-002 | yes | 0 | 0 |" in out


def test_serve_needs_judge_links_or_open_and_invite_checks_its_inputs(tmp_path, capsys):
    ctx, a, b = write_inputs(tmp_path, n=3)
    store = str(tmp_path / "v.sqlite")
    assert main(["serve", "--contexts", str(ctx), "--a", str(a), "--b", str(b), "--store", store]) == 2
    err = capsys.readouterr().err
    assert "has no judge links" in err and "--open" in err and err.count("\n") == 1
    assert main(["invite", "--store", str(tmp_path / "new.sqlite"), "--judges", "2"]) == 2
    assert "no such vote store" in capsys.readouterr().err
    assert main(["invite", "--store", store, "--contexts", str(ctx), "--judges", "2"]) == 2
    assert "go together" in capsys.readouterr().err
    assert main(["invite", "--store", store, "--judges", "0"]) == 2
    assert "--judges must be >= 1" in capsys.readouterr().err


def test_fifty_judges_vote_at_once_each_counted_once(tmp_path):
    store = VoteStore.create_or_open(tmp_path / "v.sqlite", load_inputs(*write_inputs(tmp_path, n=5)),
                                     judges_per_item=None)
    tokens = [t for _, t in store.invite(50)]
    with live_server(create_human_eval_app(store)) as base, \
            httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_connections=101)) as http:
        with ThreadPoolExecutor(50) as pool:
            items = list(pool.map(lambda t: http.get("/api/next", headers=bearer(t)).json()["item"], tokens))
        # every judge's vote sent twice at once (a double click, a replayed request) and one unknown token
        sends = [(t, i) for t, i in zip(tokens, items)] * 2 + [("made-up", items[0])]
        start = threading.Barrier(len(sends))

        def send(token_item: tuple[str, int]) -> int:
            start.wait()
            return http.post("/api/vote", json={"item": token_item[1], "answers": all_first()},
                             headers=bearer(token_item[0])).status_code

        with ThreadPoolExecutor(len(sends)) as pool:
            statuses = list(pool.map(send, sends))
    assert statuses[-1] == 403
    for k, token in enumerate(tokens):
        assert sorted((statuses[k], statuses[k + 50])) == [200, 409], token
    judges = Counter(v.judge for v in store.votes())
    assert len(judges) == 50 and set(judges.values()) == {len(QUESTIONS)}  # each vote recorded exactly once


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


def _get(url: str, token: str | None = None) -> dict:
    req = urllib.request.Request(url, headers=bearer(token) if token else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def _post(url: str, body: dict, token: str) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json", **bearer(token)})
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
    [(judge, token)] = VoteStore.create_or_open(tmp_path / "v.sqlite", load_inputs(ctx, a, b)).invite(1)
    proc, base = _start(args)
    try:
        first = _get(base + "/api/next", token)
        assert _post(base + "/api/vote", {"item": first["item"], "answers": all_first()}, token)["ok"]
        pending = _get(base + "/api/next", token)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    proc, base = _start([*args, "--open"])  # --open: typed names as well as links
    try:
        again = _get(base + "/api/next", token)
        assert (again["item"], again["first"], again["judged"]) == (pending["item"], pending["first"], 1)
        assert _get(base + "/api/next?judge=zed")["done"] is False
    finally:
        proc.terminate()
        proc.wait(30)
    votes = VoteStore.open(tmp_path / "v.sqlite").votes()
    assert [(v.judge, v.item) for v in votes] == [(judge, first["item"])] * len(QUESTIONS)
