"""A loopback mock of the Hugging Face Hub HTTP API, for tests that must never touch the network.

Why a server and not ``unittest.mock``: the code under test calls ``huggingface_hub``, ``transformers`` and
``datasets`` unmodified, so the only honest seam is the wire. ``HF_ENDPOINT`` points the libraries here and they
speak their real protocol (preupload, NDJSON commit, git-LFS batch upload, ``resolve`` with ``X-Repo-Commit`` /
``ETag`` / LFS redirects and ``Range``, the tree and paths-info APIs that ``HfFileSystem`` uses).

Stdlib only: ``tests/conftest.py`` imports this module before ``huggingface_hub`` is imported, because the
library reads ``HF_ENDPOINT`` once, at import time.

What it models (enough for ``create_repo``, ``upload_folder``, ``push_to_hub``, ``from_pretrained``,
``Dataset.push_to_hub``, ``load_dataset`` and ``HfFileSystem``; not a full Hub):

* repos of type model/dataset/space, public or private, each a chain of commits with 40-hex shas; branches
  (``main`` always), tags, and ``refs/pr/N`` refs for ``create_pr=True``;
* content-addressed blobs on disk under ``storage_dir``; files matching the usual LFS patterns (``*.safetensors``,
  ``*.parquet``, ...) or over 10 MB go through the LFS batch API like on the real Hub, the rest are "regular"
  base64 files inside the commit payload;
* auth: tokens registered with :meth:`MockHubServer.add_token`. An unknown token is a 401 everywhere (as on the
  Hub). A private repo answers 401 ``RepoNotFound`` to anonymous callers and 404 ``RepoNotFound`` to users
  without access, so the library raises ``RepositoryNotFoundError`` in both cases. Anonymous writes to public
  repos are allowed by default (``allow_anonymous_write``) so tests need no token unless they test auth;
* errors carry ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) and
  ``X-Error-Message``; bad input is a 4xx with a JSON ``{"error": ...}``; a bug in this file is a 500 whose
  traceback is kept in :attr:`MockHubServer.errors` (never printed), so tests can assert it stayed empty.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

REPO_TYPES = ("model", "dataset", "space")
# URL prefix of each repo type in "resolve" and git URLs (models have none), as in huggingface_hub.constants.
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# Patterns of the .gitattributes the real Hub writes into every new repo (abridged): these files are LFS.
DEFAULT_LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lz4", "*.mds",
    "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle",
    "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip",
    "*.zst", "*tfevents*",
)
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024  # the Hub refuses regular files over 10 MB
# Sub-resources after /api/{type}s/{repo_id}/: used to tell a one-segment repo id ("gpt2") from "org/name".
API_ACTIONS = {
    "revision", "tree", "paths-info", "preupload", "commit", "commits", "refs", "branch", "tag", "settings",
    "treesize", "lfs-files", "discussions", "auth-check", "like", "likers", "leaderboard", "super-squash",
}
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"


class RequestRecord(NamedTuple):
    """One request the server received: ``method, path, headers`` (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]

    def __repr__(self) -> str:  # a failing assertion must not print a token into the test report
        shown = {k: ("<redacted>" if k == "authorization" else v) for k, v in self.headers.items()}
        return f"RequestRecord(method={self.method!r}, path={self.path!r}, headers={shown!r})"


class HubError(Exception):
    """An HTTP error answer: raised anywhere in a handler, turned into a JSON error response."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


@dataclass(frozen=True)
class Blob:
    """A file's content identity: its sha256 (name on disk), size, git blob sha1 and whether it is LFS."""

    sha256: str
    size: int
    git_oid: str  # what git (and the Hub's "oid"/ETag) calls the file: sha1 of the blob or of the LFS pointer
    lfs: bool


@dataclass
class Commit:
    sha: str
    parent: str | None
    title: str
    description: str
    date: str
    author: str
    files: dict[str, Blob]
    last_change: dict[str, str]  # path -> sha of the commit that last added/changed it


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    owner: str
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # name -> sha ("refs/pr/N" included)
    tags: dict[str, str] = field(default_factory=dict)
    num_prs: int = 0

    @property
    def url_path(self) -> str:
        return URL_PREFIX[self.repo_type] + self.repo_id


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


class MockHubServer:
    """A Hub on ``127.0.0.1:<random port>`` in a daemon thread; see the module docstring for what it models.

    Args:
        storage_dir: where blobs and commit manifests are written (created if missing).
        allow_anonymous_write: let requests without a token create and push to public repos (as user
            ``anonymous``). Private repos always need a token.
    """

    def __init__(self, storage_dir: str | Path, allow_anonymous_write: bool = True):
        self.storage_dir = Path(storage_dir)
        self.allow_anonymous_write = allow_anonymous_write
        self.lfs_patterns: list[str] = list(DEFAULT_LFS_PATTERNS)
        self.tokens: dict[str, str] = {}
        self.user_orgs: dict[str, set[str]] = {}
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[RequestRecord] = []
        self.responses: list[tuple[str, str, int]] = []  # (method, path, status), same order as ``requests``
        self.errors: list[str] = []  # tracebacks of 500s (bugs in the mock), never printed
        self._lock = threading.RLock()
        self._counter = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        (self.storage_dir / "blobs").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> MockHubServer:
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.hub = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mock-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> MockHubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("MockHubServer.url: call start() first")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def cdn_url(self) -> str:
        """Same server under another host name: huggingface_hub treats it as a CDN (not followed on HEAD, and
        the Authorization header is dropped before downloading from it), as with the real Hub's LFS storage."""
        return self.url.replace("127.0.0.1", "localhost")

    # ------------------------------------------------------------------ helpers for tests
    def add_token(self, token: str, user: str, orgs: tuple[str, ...] | list[str] = ()) -> None:
        """Register ``token`` as belonging to ``user`` (member of ``orgs``): it may read/write their repos."""
        with self._lock:
            self.tokens[token] = user
            self.user_orgs.setdefault(user, set()).update(orgs)

    def repo_files(self, repo_type: str, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of a repo at ``revision`` as ``{path: content}`` (no HTTP; for assertions)."""
        with self._lock:
            repo = self.repos.get((repo_type, repo_id))
            if repo is None:
                raise KeyError(f"no {repo_type} repo {repo_id!r} on the mock hub")
            commit = self._resolve(repo, revision)
            return {p: self.read_blob(b) for p, b in sorted(commit.files.items())}

    def commit_shas(self, repo_type: str, repo_id: str, revision: str = "main") -> list[str]:
        """Shas of the commits reachable from ``revision``, newest first."""
        with self._lock:
            repo = self.repos[(repo_type, repo_id)]
            commit: Commit | None = self._resolve(repo, revision)
            out = []
            while commit is not None:
                out.append(commit.sha)
                commit = repo.commits.get(commit.parent) if commit.parent else None
            return out

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.responses.clear()

    def requests_matching(self, pattern: str, method: str | None = None) -> list[RequestRecord]:
        """Logged requests whose path matches the regex ``pattern`` (and ``method`` if given)."""
        rx = re.compile(pattern)
        with self._lock:
            return [r for r in self.requests if rx.search(r.path) and (method is None or r.method == method)]

    # ------------------------------------------------------------------ storage
    def _blob_path(self, sha256: str) -> Path:
        return self.storage_dir / "blobs" / sha256[:2] / sha256

    def store_blob(self, data: bytes, lfs: bool) -> Blob:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self._blob_path(sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{sha256}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        git_oid = _git_blob_sha1(LFS_POINTER.format(oid=sha256, size=len(data)).encode() if lfs else data)
        return Blob(sha256=sha256, size=len(data), git_oid=git_oid, lfs=lfs)

    def has_blob(self, sha256: str) -> bool:
        return bool(re.fullmatch(r"[0-9a-f]{64}", sha256)) and self._blob_path(sha256).exists()

    def read_blob(self, blob: Blob | str) -> bytes:
        return self._blob_path(blob if isinstance(blob, str) else blob.sha256).read_bytes()

    def is_lfs_path(self, path: str, size: int) -> bool:
        name = path.rsplit("/", 1)[-1]
        return size > LFS_SIZE_THRESHOLD or any(fnmatch.fnmatch(name, p) for p in self.lfs_patterns)

    # ------------------------------------------------------------------ repo model
    def _new_sha(self, *parts: str) -> str:
        with self._lock:
            self._counter += 1
            return hashlib.sha1("\0".join((*parts, str(self._counter), str(time.time_ns()))).encode()).hexdigest()

    def create_repo(self, repo_type: str, repo_id: str, private: bool, owner: str) -> Repo:
        """Create a repo with its first commit holding ``.gitattributes`` (what the real Hub does)."""
        with self._lock:
            repo = Repo(repo_type=repo_type, repo_id=repo_id, private=private, owner=owner, created_at=_now())
            gitattributes = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in self.lfs_patterns)
            blob = self.store_blob(gitattributes.encode(), lfs=False)
            self._add_commit(repo, None, "initial commit", "", owner, {".gitattributes": blob}, set())
            repo.branches["main"] = next(iter(repo.commits))
            self.repos[(repo_type, repo_id)] = repo
            return repo

    def _add_commit(
        self, repo: Repo, parent: Commit | None, title: str, description: str, author: str,
        files: dict[str, Blob], changed: set[str],
    ) -> Commit:
        sha = self._new_sha(repo.repo_id, parent.sha if parent else "", title)
        last_change = dict(parent.last_change) if parent else {}
        for path in list(last_change):
            if path not in files:
                del last_change[path]
        for path in files:
            if path in changed or path not in last_change:
                last_change[path] = sha
        commit = Commit(sha, parent.sha if parent else None, title, description, _now(), author, files, last_change)
        repo.commits[sha] = commit
        manifest = self.storage_dir / "repos" / f"{repo.repo_type}s" / repo.repo_id / "commits" / f"{sha}.json"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps({
            "sha": sha, "parent": commit.parent, "title": title, "date": commit.date,
            "files": {p: {"sha256": b.sha256, "size": b.size, "lfs": b.lfs} for p, b in files.items()},
        }, indent=1))
        return commit

    def _resolve(self, repo: Repo, revision: str) -> Commit:
        sha = repo.branches.get(revision) or repo.tags.get(revision)
        if sha is None and re.fullmatch(r"[0-9a-f]{40}", revision) and revision in repo.commits:
            sha = revision
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[sha]


# ====================================================================== HTTP layer
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: MockHubServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints tracebacks to stderr; a client hanging up is normal, anything else is kept."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            with self.hub._lock:
                self.hub.errors.append(f"connection from {client_address}\n{traceback.format_exc()}")


class _Handler(BaseHTTPRequestHandler):
    """Routes one request. All state lives on ``server_hub``; every answer goes through :meth:`_send`."""

    server_hub: MockHubServer
    protocol_version = "HTTP/1.1"  # keep-alive: httpx reuses connections; every reply sets Content-Length

    # ------------------------------------------------------------------ plumbing
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr access logs
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        with self.server_hub._lock:
            self.server_hub.responses.append((self.command, self.path, status))
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
        for k, v in headers.items():  # header values must be latin-1 on one line (paths may be unicode)
            self.send_header(k, " ".join(str(v).splitlines()).encode("latin-1", "backslashreplace").decode("latin-1"))
        self.send_header("Content-Length", str(len(body)))  # for HEAD too: the size of what GET would send
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _dispatch(self, method: str) -> None:
        hub = self.server_hub
        split = urlsplit(self.path)
        self.query = parse_qs(split.query, keep_blank_values=True)
        self.segments = [s for s in split.path.split("/") if s]  # still percent-encoded
        with hub._lock:
            hub.requests.append(RequestRecord(method, self.path, {k.lower(): v for k, v in self.headers.items()}))
        try:
            self.body = self._read_body()
        except (ValueError, OSError) as e:
            self.close_connection = True  # the stream position is unknown: do not reuse this connection
            return self._json({"error": f"Unreadable request body: {e}"}, 400)
        try:
            self.user = self._authenticate()
            self._route(method)
        except HubError as e:
            headers = {"X-Error-Message": e.message, **({"X-Error-Code": e.code} if e.code else {}), **e.headers}
            self._json({"error": e.message}, e.status, headers)
        except Exception:  # a bug in the mock: answer 500, keep the traceback for the test to assert on
            with hub._lock:
                hub.errors.append(f"{method} {self.path}\n{traceback.format_exc()}")
            self._json({"error": "mock hub internal error"}, 500, {"X-Error-Message": "mock hub internal error"})

    def _authenticate(self) -> str | None:
        auth = self.headers.get("Authorization")
        if not auth:
            return None
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        user = self.server_hub.tokens.get(token)
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    # ------------------------------------------------------------------ routing
    def _route(self, method: str) -> None:
        seg = self.segments
        if seg[:2] == ["api", "whoami-v2"] and method == "GET":
            return self._whoami()
        if seg == ["api", "validate-yaml"] and method == "POST":
            return self._validate_yaml()
        if seg == ["api", "agent-harnesses"] and method == "GET":  # huggingface_hub's user-agent registry
            return self._json({"standardEnvVars": [], "harnesses": {}})
        if seg[:2] == ["api", "repos"] and len(seg) == 3:
            action = {("POST", "create"): self._create_repo, ("DELETE", "delete"): self._delete_repo,
                      ("POST", "move"): self._move_repo}.get((method, seg[2]), self._not_found)
            return action()
        if len(seg) == 2 and seg[0] == "api" and seg[1][:-1] in REPO_TYPES and method == "GET":
            return self._list_repos(seg[1][:-1])
        if len(seg) >= 3 and seg[0] == "api" and seg[1].endswith("s") and seg[1][:-1] in REPO_TYPES:
            return self._route_api(method, seg[1][:-1], seg[2:])
        if seg[:1] == ["_mock_lfs"] and len(seg) == 2:
            return self._lfs_object(method, unquote(seg[1]))
        if seg[:1] == ["_mock_cdn"] and len(seg) == 2:
            return self._cdn(method, unquote(seg[1]))
        # git-LFS batch: /{prefix}{repo_id}.git/info/lfs/objects/batch
        if len(seg) >= 5 and seg[-4:] == ["info", "lfs", "objects", "batch"] and method == "POST":
            repo_type, rest = self._split_type(seg[:-4])
            if rest and rest[-1].endswith(".git"):
                rest[-1] = rest[-1][:-4]
                return self._lfs_batch(repo_type, "/".join(unquote(s) for s in rest))
        # /{prefix}{repo_id}/resolve/{revision}/{path}
        repo_type, rest = self._split_type(seg)
        for n in (2, 1):
            if len(rest) > n + 1 and rest[n] in ("resolve", "raw") and method in ("GET", "HEAD"):
                return self._resolve_file(repo_type, "/".join(rest[:n]), rest[n], unquote(rest[n + 1]), rest[n + 2:])
        self._not_found()

    def _not_found(self) -> None:
        raise HubError(404, f"Unknown route: {self.command} {urlsplit(self.path).path}")

    @staticmethod
    def _split_type(seg: list[str]) -> tuple[str, list[str]]:
        if seg and seg[0] in ("datasets", "spaces"):
            return seg[0][:-1], list(seg[1:])
        return "model", list(seg)

    def _route_api(self, method: str, repo_type: str, rest: list[str]) -> None:
        # "org/name/<action>/..." or "name/<action>/..." (canonical one-segment ids)
        n = 2 if len(rest) >= 2 and rest[1] not in API_ACTIONS else 1
        repo_id, action, args = "/".join(unquote(s) for s in rest[:n]), rest[n:n + 1], rest[n + 1:]
        act = action[0] if action else None
        if act is None and method == "GET":
            return self._repo_info(repo_type, repo_id, "main")
        if act == "revision" and args and method == "GET":
            return self._repo_info(repo_type, repo_id, unquote(args[0]))
        if act == "tree" and args and method == "GET":
            return self._tree(repo_type, repo_id, unquote(args[0]), unquote("/".join(args[1:])))
        if act == "paths-info" and args and method == "POST":
            return self._paths_info(repo_type, repo_id, unquote(args[0]))
        if act == "preupload" and args and method == "POST":
            return self._preupload(repo_type, repo_id, unquote(args[0]))
        if act == "commit" and args and method == "POST":
            return self._commit(repo_type, repo_id, unquote(args[0]))
        if act == "commits" and args and method == "GET":
            return self._list_commits(repo_type, repo_id, unquote(args[0]))
        if act == "refs" and method == "GET":
            return self._refs(repo_type, repo_id)
        if act in ("branch", "tag") and args and method in ("POST", "DELETE"):
            return self._ref_write(act, method, repo_type, repo_id, unquote("/".join(args)))
        if act == "settings" and method == "PUT":
            return self._settings(repo_type, repo_id)
        if act == "auth-check" and method == "GET":
            self._repo(repo_type, repo_id)
            return self._json({})
        self._not_found()

    # ------------------------------------------------------------------ access control
    def _can_write_namespace(self, namespace: str) -> bool:
        hub = self.server_hub
        if self.user is None:
            return hub.allow_anonymous_write
        return namespace == self.user or namespace in hub.user_orgs.get(self.user, set())

    def _repo(self, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        """The repo if the caller may see it (and write it); Hub-shaped errors otherwise."""
        hub = self.server_hub
        repo = hub.repos.get((repo_type, repo_id))
        namespace = repo_id.split("/")[0] if "/" in repo_id else ""
        visible = repo is not None and (
            not repo.private or (self.user is not None and (self.user == repo.owner or self._can_write_namespace(namespace)))
        )
        if not visible:
            # The Hub does not reveal private repos: 401 to anonymous callers, 404 to signed-in ones.
            status = 401 if self.user is None else 404
            raise HubError(status, "Repository not found", "RepoNotFound")
        if write and not (self._can_write_namespace(namespace) or self.user == repo.owner):
            if self.user is None:
                raise HubError(401, "You must be authenticated to write to this repo", "RepoNotFound")
            raise HubError(403, f"You don't have the rights to write to {repo_type}s/{repo_id}")
        return repo

    # ------------------------------------------------------------------ JSON bodies
    def _json_body(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            raise HubError(400, f"Invalid JSON body: {e}") from None

    def _json_object(self, *required: str) -> dict:
        body = self._json_body()
        if not isinstance(body, dict):
            raise HubError(400, "Expected a JSON object body")
        missing = [k for k in required if k not in body]
        if missing:
            raise HubError(400, f"Missing field(s) in JSON body: {', '.join(missing)}")
        return body

    # ------------------------------------------------------------------ account and repos
    def _whoami(self) -> None:
        if self.user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        orgs = sorted(self.server_hub.user_orgs.get(self.user, set()))
        self._json({
            "type": "user", "id": hashlib.sha1(self.user.encode()).hexdigest()[:24], "name": self.user,
            "fullname": self.user, "email": f"{self.user}@example.invalid", "emailVerified": True,
            "isPro": False, "canPay": False, "orgs": [{"type": "org", "name": o, "fullname": o} for o in orgs],
            "auth": {"type": "access_token", "accessToken": {"displayName": "mock", "role": "write"}},
        })

    def _validate_yaml(self) -> None:
        """ModelCard/DatasetCard.push_to_hub asks the Hub to check the card's YAML; we only check the shape."""
        body = self._json_object("content")
        if not isinstance(body["content"], str):
            raise HubError(400, "'content' must be a string")
        self._json({"errors": [], "warnings": []})

    def _create_repo(self) -> None:
        hub = self.server_hub
        body = self._json_object("name")
        repo_type = body.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        name, namespace = str(body["name"]), body.get("organization") or self.user or "anonymous"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", name) or not re.fullmatch(
                r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", str(namespace)):
            raise HubError(400, f"Invalid repo name {namespace}/{name}")
        if not self._can_write_namespace(namespace):
            if self.user is None:
                raise HubError(401, "You must be authenticated to create a repo")
            raise HubError(403, f"You don't have the rights to create a repo under {namespace}")
        private = body.get("visibility") == "private" if "visibility" in body else bool(body.get("private"))
        if private and self.user is None:
            raise HubError(401, "You must be authenticated to create a private repo")
        repo_id = f"{namespace}/{name}"
        with hub._lock:
            url = f"{hub.url}/{URL_PREFIX[repo_type]}{repo_id}"
            if (repo_type, repo_id) in hub.repos:
                return self._json({"error": "You already created this repo", "url": url}, 409,
                                  {"X-Error-Message": "You already created this repo"})
            hub.create_repo(repo_type, repo_id, private, self.user or "anonymous")
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> None:
        hub = self.server_hub
        body = self._json_object("name")
        repo_type = body.get("type") or "model"
        namespace = body.get("organization") or self.user or "anonymous"
        repo_id = f"{namespace}/{body['name']}"
        with hub._lock:
            self._repo(repo_type, repo_id, write=True)
            del hub.repos[(repo_type, repo_id)]
        self._json({})

    def _move_repo(self) -> None:
        hub = self.server_hub
        body = self._json_object("fromRepo", "toRepo")
        repo_type = body.get("type") or "model"
        with hub._lock:
            repo = self._repo(repo_type, body["fromRepo"], write=True)
            if (repo_type, body["toRepo"]) in hub.repos:
                raise HubError(409, f"Repo {body['toRepo']} already exists")
            del hub.repos[(repo_type, repo.repo_id)]
            repo.repo_id = body["toRepo"]
            hub.repos[(repo_type, repo.repo_id)] = repo
        self._json({})

    def _settings(self, repo_type: str, repo_id: str) -> None:
        body = self._json_object()
        with self.server_hub._lock:
            repo = self._repo(repo_type, repo_id, write=True)
            if "private" in body:
                repo.private = bool(body["private"])
            if "visibility" in body:
                repo.private = body["visibility"] == "private"
        self._json({})

    def _repo_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.server_hub
        with hub._lock:
            repo = self._repo(repo_type, repo_id)
            info = self._info_dict(repo, hub._resolve(repo, revision))
        self._json(info)

    @staticmethod
    def _info_dict(repo: Repo, commit: Commit) -> dict[str, Any]:
        """What /api/{type}s/{id} returns (``cardData`` is left out: the stdlib has no YAML parser)."""
        siblings = [
            {"rfilename": p, "size": b.size, "blobId": b.git_oid,
             **({"lfs": {"sha256": b.sha256, "size": b.size, "pointerSize": 134}} if b.lfs else {})}
            for p, b in sorted(commit.files.items())
        ]
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0], "sha": commit.sha, "lastModified": commit.date,
            "createdAt": repo.created_at, "private": repo.private, "gated": False, "disabled": False,
            "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
            "usedStorage": sum(b.size for b in commit.files.values()),
        }
        if repo.repo_type == "model":
            info.update({"modelId": repo.repo_id, "library_name": "transformers"})
        if repo.repo_type == "space":
            info.update({"sdk": "static", "runtime": {"stage": "RUNNING", "hardware": {"current": None}}})
        return info

    def _list_repos(self, repo_type: str) -> None:
        """GET /api/models?author=&search= (list_models / list_datasets): visible repos, newest first."""
        hub = self.server_hub
        author, search = self.query.get("author", [None])[0], self.query.get("search", [None])[0]
        out = []
        with hub._lock:
            for (rtype, repo_id), repo in hub.repos.items():
                if rtype != repo_type or (author and repo_id.split("/")[0] != author):
                    continue
                if search and search.lower() not in repo_id.lower():
                    continue
                try:
                    self._repo(rtype, repo_id)
                except HubError:
                    continue
                out.append(self._info_dict(repo, repo.commits[repo.branches["main"]]))
        self._json(out[::-1])

    # ------------------------------------------------------------------ tree / paths-info
    def _entry(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict:
        blob = commit.files.get(path)
        if blob is not None:
            entry: dict[str, Any] = {"type": "file", "oid": blob.git_oid, "size": blob.size, "path": path}
            if blob.lfs:
                pointer = LFS_POINTER.format(oid=blob.sha256, size=blob.size)
                entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": len(pointer)}
            last = commit.last_change.get(path, commit.sha)
        else:
            children = sorted(p for p in commit.files if p.startswith(path + "/"))
            entry = {"type": "directory", "oid": hashlib.sha1("\n".join(
                f"{p}:{commit.files[p].git_oid}" for p in children).encode()).hexdigest(), "size": 0, "path": path}
            last = max((commit.last_change.get(p, commit.sha) for p in children),
                       key=lambda sha: repo.commits[sha].date if sha in repo.commits else "", default=commit.sha)
        if expand:
            last_commit = repo.commits.get(last, commit)
            entry["lastCommit"] = {"id": last_commit.sha, "title": last_commit.title, "date": last_commit.date}
            if entry["type"] == "file":
                entry["securityFileStatus"] = {"status": "safe", "avScan": {"virusFound": False},
                                               "pickleImportScan": None}
        return entry

    @staticmethod
    def _dirs(files: dict[str, Blob]) -> set[str]:
        out = set()
        for p in files:
            parts = p.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                out.add("/".join(parts[:i]))
        return out

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        hub = self.server_hub
        path = path.strip("/")
        recursive, expand = _truthy(self.query.get("recursive", [None])[0]), _truthy(self.query.get("expand", [None])[0])
        with hub._lock:
            repo = self._repo(repo_type, repo_id)
            commit = hub._resolve(repo, revision)
            dirs = self._dirs(commit.files)
            if path and path not in dirs:
                extra = {"X-Repo-Commit": commit.sha}
                if path in commit.files:
                    raise HubError(400, f"{path} is a file, not a directory", headers=extra)
                raise HubError(404, f"Entry not found: {path}", "EntryNotFound", extra)
            prefix = path + "/" if path else ""
            names = set()
            for p in [*commit.files, *dirs]:
                if p.startswith(prefix) and p != path:
                    rel = p[len(prefix):]
                    if recursive or "/" not in rel:
                        names.add(p)
            entries = [self._entry(repo, commit, p, expand) for p in sorted(names)]
        self._json(entries)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.server_hub
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            body = self._json_object("paths")
            paths, expand = body["paths"], bool(body.get("expand"))
        else:
            form = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
            paths, expand = form.get("paths", []), _truthy(form.get("expand", ["false"])[0])
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise HubError(400, "'paths' must be a list of strings")
        with hub._lock:
            repo = self._repo(repo_type, repo_id)
            commit = hub._resolve(repo, revision)
            dirs = self._dirs(commit.files)
            entries = [self._entry(repo, commit, p.strip("/"), expand) for p in paths
                       if p.strip("/") in commit.files or p.strip("/") in dirs]
        self._json(entries)

    # ------------------------------------------------------------------ upload: preupload, LFS, commit
    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.server_hub
        body = self._json_object("files")
        files = body["files"]
        if not isinstance(files, list) or not all(isinstance(f, dict) and "path" in f for f in files):
            raise HubError(400, "'files' must be a list of objects with a 'path'")
        ignore = [ln.strip() for ln in str(body.get("gitIgnore") or "").splitlines()
                  if ln.strip() and not ln.startswith("#")]
        with hub._lock:
            repo = self._repo(repo_type, repo_id, write=True)
            commit = hub._resolve(repo, revision)
            out = []
            for f in files:
                path, size = str(f["path"]), int(f.get("size") or 0)
                lfs = hub.is_lfs_path(path, size)
                existing = commit.files.get(path)
                oid = None
                if existing is not None and existing.lfs == lfs:
                    oid = existing.sha256 if lfs else existing.git_oid
                ignored = any(fnmatch.fnmatch(path, g) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], g) for g in ignore)
                out.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": ignored,
                            "oid": oid})
        self._json({"files": out, "commitOid": commit.sha})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        hub = self.server_hub
        body = self._json_object("objects")
        if body.get("operation", "upload") != "upload":
            raise HubError(400, "The mock hub only implements LFS uploads (downloads go through resolve/)")
        self._repo(repo_type, repo_id, write=True)
        objects = []
        for obj in body["objects"]:
            if not isinstance(obj, dict) or not re.fullmatch(r"[0-9a-f]{64}", str(obj.get("oid"))):
                raise HubError(400, f"Invalid LFS object {obj!r}")
            item: dict[str, Any] = {"oid": obj["oid"], "size": obj.get("size"), "authenticated": True}
            if not hub.has_blob(obj["oid"]):  # already stored => no "actions": the client skips the upload
                item["actions"] = {"upload": {"href": f"{hub.url}/_mock_lfs/{obj['oid']}", "expires_in": 3600}}
            objects.append(item)
        self._json({"transfer": "basic", "objects": objects}, headers={"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_object(self, method: str, oid: str) -> None:
        """The "S3 bucket" of the LFS batch API: PUT stores the object, checked against its sha256."""
        hub = self.server_hub
        if method != "PUT":
            self._not_found()
        if hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, f"LFS upload content does not match its oid {oid}")
        hub.store_blob(self.body, lfs=True)
        self._send(200, b"", {"ETag": f'"{oid}"'})

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.server_hub
        lines = []
        for i, raw in enumerate(self.body.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as e:
                raise HubError(400, f"Invalid NDJSON at line {i} of commit payload: {e}") from None
            if not isinstance(item, dict) or "key" not in item or not isinstance(item.get("value"), dict):
                raise HubError(400, f"Commit payload line {i} must be an object with 'key' and 'value'")
            lines.append(item)
        if not lines or lines[0]["key"] != "header":
            raise HubError(400, "Commit payload must start with a 'header' line")
        header = lines[0]["value"]
        create_pr = _truthy(self.query.get("create_pr", [None])[0])
        with hub._lock:
            repo = self._repo(repo_type, repo_id, write=True)
            parent = hub._resolve(repo, revision)
            if revision not in repo.branches:
                raise HubError(400, f"Cannot commit to {revision!r}: not a branch")
            if header.get("parentCommit") and header["parentCommit"] != parent.sha:
                raise HubError(412, f"Parent commit {header['parentCommit']} is not the head of {revision}")
            files = dict(parent.files)
            changed: set[str] = set()
            for i, item in enumerate(lines[1:], start=2):
                key, value = item["key"], item["value"]
                path = str(value.get("path", "")).strip("/")
                if not path:
                    raise HubError(400, f"Commit payload line {i}: missing 'path'")
                if key == "file":
                    try:
                        data = (base64.b64decode(value["content"], validate=True)
                                if value.get("encoding") == "base64" else str(value["content"]).encode())
                    except (KeyError, ValueError) as e:
                        raise HubError(400, f"Commit payload line {i}: bad file content ({e})") from None
                    files[path] = hub.store_blob(data, lfs=False)
                    changed.add(path)
                elif key == "lfsFile":
                    oid = str(value.get("oid"))
                    if not hub.has_blob(oid):
                        raise HubError(422, f"Commit payload line {i}: LFS object {oid} of {path} was never uploaded")
                    files[path] = hub.store_blob(hub.read_blob(oid), lfs=True)
                    changed.add(path)
                elif key == "deletedFile":
                    if path not in files:
                        raise HubError(404, f"Cannot delete {path}: file not found", "EntryNotFound")
                    del files[path]
                elif key == "deletedFolder":
                    gone = [p for p in files if p.startswith(path + "/")]
                    if not gone:
                        raise HubError(404, f"Cannot delete folder {path}: not found", "EntryNotFound")
                    for p in gone:
                        del files[p]
                else:
                    raise HubError(400, f"Commit payload line {i}: unknown key {key!r}")
            commit = hub._add_commit(repo, parent, str(header.get("summary") or "commit"),
                                     str(header.get("description") or ""), self.user or "anonymous", files, changed)
            pr_url = None
            if create_pr:
                repo.num_prs += 1
                repo.branches[f"refs/pr/{repo.num_prs}"] = commit.sha
                pr_url = f"{hub.url}/{repo.url_path}/discussions/{repo.num_prs}"
            else:
                repo.branches[revision] = commit.sha
        self._json({"success": True, "commitOid": commit.sha, "commitUrl": f"{hub.url}/{repo.url_path}/commit/{commit.sha}",
                    "hookOutput": "", "pullRequestUrl": pr_url})

    # ------------------------------------------------------------------ history and refs
    def _list_commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.server_hub
        with hub._lock:
            repo = self._repo(repo_type, repo_id)
            commit: Commit | None = hub._resolve(repo, revision)
            out = []
            while commit is not None:
                out.append({"id": commit.sha, "title": commit.title, "message": commit.description,
                            "date": commit.date, "authors": [{"user": commit.author}]})
                commit = repo.commits.get(commit.parent) if commit.parent else None
        self._json(out)

    def _refs(self, repo_type: str, repo_id: str) -> None:
        with self.server_hub._lock:
            repo = self._repo(repo_type, repo_id)
            branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s}
                        for n, s in repo.branches.items() if not n.startswith("refs/")]
            tags = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in repo.tags.items()]
            prs = [{"name": n, "ref": n, "targetCommit": s} for n, s in repo.branches.items() if n.startswith("refs/pr/")]
        self._json({"branches": branches, "tags": tags, "converts": [],
                    **({"pullRequests": prs} if _truthy(self.query.get("include_prs", [None])[0]) else {})})

    def _ref_write(self, kind: str, method: str, repo_type: str, repo_id: str, name: str) -> None:
        hub = self.server_hub
        body = self._json_object() if method == "POST" and self.body else {}
        with hub._lock:
            repo = self._repo(repo_type, repo_id, write=True)
            refs = repo.branches if kind == "branch" else repo.tags
            if method == "DELETE":
                if name not in refs or name == "main":
                    raise HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
                del refs[name]
                return self._json({})
            if kind == "branch":
                target = hub._resolve(repo, str(body.get("startingPoint") or "main"))
                if name in refs:
                    raise HubError(409, f"Reference already exists: refs/heads/{name}")
            else:  # POST /tag/{revision} with {"tag": name}
                target = hub._resolve(repo, name)
                name = str(body.get("tag") or "")
                if not name:
                    raise HubError(400, "Missing 'tag'")
                if name in refs:
                    raise HubError(409, f"Tag already exists: {name}")
            refs[name] = target.sha
        self._json({})

    # ------------------------------------------------------------------ download
    def _resolve_file(self, repo_type: str, repo_id_raw: str, action: str, revision: str,
                      path_segments: list[str]) -> None:
        hub = self.server_hub
        repo_id = "/".join(unquote(s) for s in repo_id_raw.split("/"))
        path = "/".join(unquote(s) for s in path_segments)
        with hub._lock:
            repo = self._repo(repo_type, repo_id)
            commit = hub._resolve(repo, revision)
            blob = commit.files.get(path)
        headers = {"X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes"}
        if blob is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", headers)
        if blob.lfs and action == "raw":  # raw/ shows what git stores: the LFS pointer
            pointer = LFS_POINTER.format(oid=blob.sha256, size=blob.size).encode()
            return self._serve_bytes(pointer, {**headers, "ETag": f'"{blob.git_oid}"'})
        if blob.lfs:
            # The Hub answers LFS files with a redirect to a CDN, naming the content in X-Linked-* headers;
            # the CDN URL is "signed", so it needs no Authorization (see ``cdn_url``).
            headers.update({"ETag": f'"{blob.sha256}"', "X-Linked-Etag": f'"{blob.sha256}"',
                            "X-Linked-Size": str(blob.size),
                            "Location": f"{hub.cdn_url}/_mock_cdn/{blob.sha256}?filename={quote(path, safe='')}"})
            return self._send(302, b"", headers)
        self._serve_bytes(hub.read_blob(blob), {**headers, "ETag": f'"{blob.git_oid}"'})

    def _cdn(self, method: str, sha256: str) -> None:
        hub = self.server_hub
        if method not in ("GET", "HEAD") or not hub.has_blob(sha256):
            raise HubError(404, "No such object")
        self._serve_bytes(hub.read_blob(sha256), {"ETag": f'"{sha256}"', "Accept-Ranges": "bytes"})

    def _serve_bytes(self, data: bytes, headers: dict[str, str]) -> None:
        """200 with the bytes, or 206 for a ``Range: bytes=a-b`` / ``a-`` / ``-n`` request (HfFileSystem reads)."""
        headers = {**headers, "Content-Type": "application/octet-stream"}
        rng = self.headers.get("Range")
        if not rng:
            return self._send(200, data, headers)
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
        if not m or (not m.group(1) and not m.group(2)):
            raise HubError(400, f"Unsupported Range header {rng!r}")
        size = len(data)
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        else:
            start, end = max(size - int(m.group(2)), 0), size - 1
        if start >= size or start > end:
            return self._send(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send(206, data[start:end + 1], headers)
