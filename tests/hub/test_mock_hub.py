"""The loopback mock Hub is faithful enough for the real libraries: push a model, load it back by repo id.

Every call below is the unmodified ``huggingface_hub`` / ``transformers`` API talking HTTP to
``tests/mock_hub.py`` (``HF_ENDPOINT`` is set by conftest), so a regression in the fixture, or in how
our code uses the Hub, shows up here rather than in the stages that rely on it.
"""

from __future__ import annotations

import json
import logging
import uuid

import httpx
import pytest
import torch

TOKEN = "hf_mock_" + "s3cr3t" * 5  # distinctive, so a leak into logs or output cannot be missed


def _unique(name: str) -> str:
    """Repo names unique per call: the hub lives for the whole session, shared by all tests in a worker."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def hub_user(mock_hub):
    mock_hub.add_token(TOKEN, "alice", orgs=["org"])
    return "alice"


def _fresh_cache(tmp_path):
    return str(tmp_path / "fresh_cache")


def test_push_model_and_tokenizer_then_load_by_repo_id(mock_hub, tiny_model, tokenizer, tmp_path):
    from huggingface_hub import HfApi
    from transformers import AutoModelForCausalLM, AutoTokenizer

    repo_id = "org/tiny-dialogpt"
    tiny_model.push_to_hub(repo_id)
    tokenizer.push_to_hub(repo_id)

    files = mock_hub.repo_files("model", repo_id)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(files)
    # Weights went through the git-LFS batch API (as on the real Hub), config through the NDJSON commit.
    assert mock_hub.requests_matching(r"^/org/tiny-dialogpt\.git/info/lfs/objects/batch$", "POST")
    assert len(mock_hub.commit_shas("model", repo_id)) >= 3  # initial + model + tokenizer

    info = HfApi().model_info(repo_id)
    assert info.sha == mock_hub.commit_shas("model", repo_id)[0]
    assert {s.rfilename for s in info.siblings} == set(files)

    cache = _fresh_cache(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(repo_id, cache_dir=cache).eval()
    loaded_tok = AutoTokenizer.from_pretrained(repo_id, cache_dir=cache)

    ref = tiny_model.state_dict()
    got = loaded.state_dict()
    assert ref.keys() == got.keys()
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    ids = torch.tensor([tokenizer("hello there, how are you?")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(tiny_model(ids).logits, loaded(ids).logits)

    assert loaded_tok.chat_template == tokenizer.chat_template and loaded_tok.chat_template
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert loaded_tok.apply_chat_template(msgs, tokenize=False) == tokenizer.apply_chat_template(msgs, tokenize=False)
    assert loaded_tok.eos_token_id == tokenizer.eos_token_id
    assert loaded_tok("a test sentence")["input_ids"] == tokenizer("a test sentence")["input_ids"]
    assert mock_hub.errors == []


def test_revisions_and_downloads(mock_hub, tmp_path):
    """Each commit gets a sha; ``main`` moves, old shas stay loadable; Range and HfFileSystem reads work."""
    from huggingface_hub import HfApi, HfFileSystem, hf_hub_download, snapshot_download

    api = HfApi()
    repo_id = "org/" + _unique("revs")
    api.create_repo(repo_id)
    first = api.upload_file(path_or_fileobj=b"v1", path_in_repo="notes/a.txt", repo_id=repo_id).oid
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="notes/a.txt", repo_id=repo_id)
    assert open(hf_hub_download(repo_id, "notes/a.txt", cache_dir=tmp_path), "rb").read() == b"v2"
    assert open(hf_hub_download(repo_id, "notes/a.txt", revision=first, cache_dir=tmp_path), "rb").read() == b"v1"

    blob = bytes(range(256)) * 4
    api.upload_file(path_or_fileobj=blob, path_in_repo="data/x.bin", repo_id=repo_id)  # *.bin => LFS
    snap = snapshot_download(repo_id, cache_dir=tmp_path / "snap")
    assert open(f"{snap}/data/x.bin", "rb").read() == blob

    fs = HfFileSystem()
    assert sorted(fs.ls(repo_id, detail=False)) == [f"{repo_id}/{p}" for p in (".gitattributes", "data", "notes")]
    assert fs.info(f"{repo_id}/data/x.bin")["size"] == len(blob)
    with fs.open(f"{repo_id}/data/x.bin", "rb", block_size=16) as f:
        f.seek(300)
        assert f.read(10) == blob[300:310]
    r = httpx.get(f"{mock_hub.url}/{repo_id}/resolve/main/notes/a.txt", headers={"Range": "bytes=1-"})
    assert r.status_code == 206 and r.content == b"2" and r.headers["Content-Range"] == "bytes 1-1/2"

    api.delete_file("notes/a.txt", repo_id=repo_id)
    assert api.list_repo_files(repo_id) == [".gitattributes", "data/x.bin"]
    assert api.file_exists(repo_id, "data/x.bin") and not api.file_exists(repo_id, "notes/a.txt")
    assert mock_hub.errors == []


def test_private_repo_needs_token_and_token_never_leaks(mock_hub, hub_user, tiny_model_dir, tmp_path, caplog, capsys):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError
    from transformers import AutoModelForCausalLM

    caplog.set_level(logging.DEBUG)
    repo_id = "org/" + _unique("private-tiny")
    api = HfApi(token=TOKEN)
    assert api.whoami()["name"] == hub_user
    api.create_repo(repo_id, private=True)
    api.upload_folder(folder_path=str(tiny_model_dir), repo_id=repo_id)
    assert api.model_info(repo_id).private is True

    # Without a token the repo does not exist, for the API and for from_pretrained alike.
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info(repo_id)
    with pytest.raises(OSError, match="not a valid model identifier|private repository"):
        AutoModelForCausalLM.from_pretrained(repo_id, cache_dir=str(tmp_path / "anon"), token=False)
    # A valid token of someone else: still "not found" (404, not 403: the Hub hides private repos).
    mock_hub.add_token("hf_mock_bob", "bob")
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token="hf_mock_bob").model_info(repo_id)

    mock_hub.clear_requests()
    model = AutoModelForCausalLM.from_pretrained(repo_id, cache_dir=str(tmp_path / "auth"), token=TOKEN)
    assert model.config.n_layer == 2
    hub_requests = [r for r in mock_hub.requests if "/_mock_cdn/" not in r.path]
    assert hub_requests and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hub_requests)
    # LFS blobs come from the "CDN" host, and the library must not forward the token there.
    cdn_requests = [r for r in mock_hub.requests if "/_mock_cdn/" in r.path]
    assert cdn_requests and not any("authorization" in r.headers for r in cdn_requests)

    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(rec.args) for rec in caplog.records)
    assert mock_hub.errors == []


def test_branches_tags_and_pull_requests(mock_hub, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi()
    repo_id = "org/" + _unique("refs")
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"main v1", path_in_repo="f.txt", repo_id=repo_id)
    api.create_tag(repo_id, tag="v1")
    api.create_branch(repo_id, branch="dev")
    api.upload_file(path_or_fileobj=b"dev", path_in_repo="f.txt", repo_id=repo_id, revision="dev")
    pr = api.upload_file(path_or_fileobj=b"proposal", path_in_repo="f.txt", repo_id=repo_id, create_pr=True)
    api.upload_file(path_or_fileobj=b"main v2", path_in_repo="f.txt", repo_id=repo_id)

    def read(revision):
        return open(hf_hub_download(repo_id, "f.txt", revision=revision, cache_dir=tmp_path), "rb").read()

    assert [read(r) for r in ("main", "v1", "dev", pr.pr_revision)] == [b"main v2", b"main v1", b"dev", b"proposal"]
    refs = api.list_repo_refs(repo_id)
    assert {b.name for b in refs.branches} == {"main", "dev"} and [t.name for t in refs.tags] == ["v1"]
    titles = [c.title for c in api.list_repo_commits(repo_id)]
    assert titles[-1] == "initial commit" and len(titles) == 3  # the PR and dev commits are not on main
    assert mock_hub.errors == []


def test_anonymous_write_can_be_forbidden(mock_hub, hub_user):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    repo_id = "org/" + _unique("locked")
    mock_hub.allow_anonymous_write = False
    try:
        with pytest.raises(HfHubHTTPError) as err:
            HfApi(token=False).create_repo(repo_id)
        assert err.value.response.status_code == 401
        HfApi(token=TOKEN).create_repo(repo_id)
        with pytest.raises(HfHubHTTPError):
            HfApi(token=False).upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
        HfApi(token=TOKEN).upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    finally:
        mock_hub.allow_anonymous_write = True
    assert mock_hub.repo_files("model", repo_id)["x.txt"] == b"x"
    assert mock_hub.errors == []


def test_unknown_repo_and_file_raise_library_errors(mock_hub, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("org/does-not-exist")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/does-not-exist", "config.json", cache_dir=tmp_path)
    repo_id = "org/" + _unique("errors")
    HfApi().create_repo(repo_id)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "missing.json", cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, ".gitattributes", revision="no-such-branch", cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        HfApi().list_repo_files("org/does-not-exist", repo_type="dataset")
    assert mock_hub.errors == []


def test_malformed_requests_get_4xx_and_server_stays_up(mock_hub):
    from huggingface_hub import HfApi

    repo_id = "org/" + _unique("malformed")
    HfApi().create_repo(repo_id)
    base = mock_hub.url
    r = httpx.post(f"{base}/api/models/{repo_id}/commit/main", content=b"{not json\n",
                   headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 400 and "Invalid NDJSON" in r.json()["error"]
    r = httpx.post(f"{base}/api/models/{repo_id}/commit/main",
                   content=json.dumps({"key": "file", "value": {"path": "x"}}).encode())
    assert r.status_code == 400 and "header" in r.json()["error"]
    r = httpx.post(f"{base}/api/models/{repo_id}/preupload/main", content=b"[1, 2")
    assert r.status_code == 400
    r = httpx.post(f"{base}/api/repos/create", json={"name": "../../etc"})
    assert r.status_code == 400
    r = httpx.get(f"{base}/api/no/such/route")
    assert r.status_code == 404 and r.json()["error"].startswith("Unknown route")
    r = httpx.get(f"{base}/api/whoami-v2", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    # A commit referring to an LFS object that was never uploaded is refused, not stored half-done.
    header = {"key": "header", "value": {"summary": "x"}}
    lfs = {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": "0" * 64, "size": 3}}
    r = httpx.post(f"{base}/api/models/{repo_id}/commit/main",
                   content=b"\n".join(json.dumps(x).encode() for x in (header, lfs)))
    assert r.status_code == 422
    # Still serving, and nothing above was a crash inside the mock.
    assert HfApi().list_repo_files(repo_id) == [".gitattributes"]
    assert mock_hub.errors == []
