"""Who may use a served model: API keys, the web chat's login, CORS and a per-key rate limit.

Why one ASGI middleware: every request passes it before routing, so no route can forget its check
(``/v1/*``, the Gradio page mounted at ``/ui/`` and whatever is mounted later alike) and keys are
compared in one function. With keys set (``dialogpt-serve --api-key``, as vLLM's ``--api-key``):

* ``/health`` and the login page are open; health shows counters only, never keys or request content;
* ``/v1/*`` needs ``Authorization: Bearer KEY`` (what OpenAI's clients send): else a 401 with OpenAI's
  error body, ``code: invalid_api_key``. The cookie below is not accepted there, so a page on
  another site can never spend a signed-in user's key;
* every other path (the web chat) takes the same header or the session cookie that ``/login`` sets:
  an HMAC of the key under a secret drawn when the server starts (the key itself never sits in the
  browser, and a restart ends every session), HttpOnly, SameSite=Strict, Secure over HTTPS. A
  browser asking for a page without it is sent to ``/login``.

A candidate is compared with :func:`hmac.compare_digest` against every key, with no early exit,
so the time taken does not say which key came close. Nothing here logs or echoes a key, and
:class:`SecurityConfig` leaves them out of its repr.
"""

from __future__ import annotations

import hmac
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from dialogpt.serve.ratelimit import RateLimiter, retry_after
from dialogpt.serve.schemas import ApiError

API_KEY_ENV = "DIALOGPT_API_KEY"
COOKIE = "dialogpt_session"
LOGIN_PATH = "/login"
OPEN_PATHS = frozenset({"/health", LOGIN_PATH})
_MAX_LOGIN_BODY = 8192


@dataclass
class SecurityConfig:
    """Access to one server: keys, CORS origins, rate limit and TLS files (all off by default)."""

    api_keys: tuple[str, ...] = field(default=(), repr=False)
    """accepted keys; empty = no authentication (loopback use)."""
    allowed_origins: tuple[str, ...] = ()
    """origins whose pages may call the API from a browser (CORS); empty = CORS off."""
    rate_limit: int | None = None
    """requests per minute per key (per client address without keys) on /v1/*; more get 429."""
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None

    def __post_init__(self):
        self.api_keys = tuple(dict.fromkeys(self.api_keys))
        self.allowed_origins = tuple(self.allowed_origins)
        for i, key in enumerate(self.api_keys, 1):
            # Never the key itself in a message: it may be one character off a real one.
            if not key or not key.isascii() or not key.isprintable() or " " in key:
                raise ValueError(f"API key #{i} is empty or has spaces or non-ASCII characters")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError(f"--rate-limit must be >= 1 request per minute, got {self.rate_limit}")
        if bool(self.ssl_keyfile) != bool(self.ssl_certfile):
            raise ValueError("--ssl-keyfile and --ssl-certfile go together: give both or neither")

    @property
    def tls(self) -> bool:
        return bool(self.ssl_certfile)

    def check_tls(self) -> None:
        """Load the certificate and key once now, so a wrong path or a key that does not match the
        certificate is a one-line error before the model loads, not a traceback from uvicorn."""
        if not self.tls:
            return
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        except OSError as e:  # ssl.SSLError is an OSError
            raise ValueError(f"--ssl-certfile {self.ssl_certfile} / --ssl-keyfile {self.ssl_keyfile}: "
                             f"{e.strerror or e}") from None


# ---------------------------------------------------------------------- keys from flags, files, env
def read_key_file(path: str | Path) -> list[str]:
    """One key a line (blank lines and ``#`` comments skipped); a ValueError names the file."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"--api-key-file {p}: cannot read it ({type(e).__name__})") from None
    keys = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not keys:
        raise ValueError(f"--api-key-file {p}: no key in it (one key a line)")
    return keys


def collect_api_keys(flags: Sequence[str] = (), files: Sequence[str] = (), env: str | None = None) -> tuple[str, ...]:
    """Every key from ``--api-key``, ``--api-key-file`` and ``$DIALOGPT_API_KEY``, in that order."""
    keys = [k.strip() for k in flags] + [k for f in files for k in read_key_file(f)]
    if env and env.strip():
        keys.append(env.strip())
    return tuple(keys)


# ---------------------------------------------------------------------- checking
class KeyRing:
    """The accepted keys and the session values the login page hands out for them."""

    def __init__(self, keys: Sequence[str]):
        self._keys = [k.encode("ascii") for k in keys]
        self._secret = secrets.token_bytes(32)
        self._sessions = [self.session_for(k) for k in self._keys]

    def session_for(self, key: bytes) -> bytes:
        return hmac.new(self._secret, b"session\0" + key, "sha256").hexdigest().encode("ascii")

    def session(self, index: int) -> str:
        """The cookie value for key ``index`` (valid until the server restarts)."""
        return self._sessions[index].decode("ascii")

    @staticmethod
    def _index(candidate: bytes, known: list[bytes]) -> int | None:
        found = None
        for i, k in enumerate(known):  # every key compared, in constant time each: no early exit
            if hmac.compare_digest(candidate, k) and found is None:
                found = i
        return found

    def key_index(self, key: str) -> int | None:
        return self._index(key.encode("latin-1", "replace"), self._keys)

    def session_index(self, value: str) -> int | None:
        return self._index(value.encode("latin-1", "replace"), self._sessions)


def bearer(conn: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, if any."""
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _unauthorized(conn: HTTPConnection, api: bool) -> Response:
    if not api and conn.scope.get("method") == "GET" and "text/html" in conn.headers.get("accept", ""):
        return RedirectResponse(LOGIN_PATH, status_code=303)
    given = bearer(conn) is not None
    msg = ("the API key is not valid" if given else
           "no API key: send the header 'Authorization: Bearer <your key>'")
    err = ApiError(401, msg, code="invalid_api_key")
    return JSONResponse(err.body(), status_code=401, headers={"WWW-Authenticate": "Bearer"})


class SecurityMiddleware:
    """The one check in front of every route (pure ASGI, so streaming passes untouched)."""

    def __init__(self, app, keys: KeyRing | None, limiter: RateLimiter | None):
        self.app, self.keys, self.limiter = app, keys, limiter

    def _client(self, conn: HTTPConnection, api: bool) -> object | None:
        """Who is asking (a key's index, or the client address without keys); None: nobody known."""
        if self.keys is None:
            return conn.client.host if conn.client else None
        token = bearer(conn)
        if token is not None:
            return self.keys.key_index(token)
        if not api and COOKIE in conn.cookies:
            return self.keys.session_index(conn.cookies[COOKIE])
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope)
        api = scope["path"] == "/v1" or scope["path"].startswith("/v1/")
        client = self._client(conn, api)
        if client is None and self.keys is not None:
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await _unauthorized(conn, api)(scope, receive, send)
        if api and self.limiter is not None and (wait := self.limiter.take(client)) > 0:
            err = ApiError(429, f"rate limit reached: {self.limiter.per_minute} requests per minute; retry in "
                                f"{retry_after(wait)} s", code="rate_limit_exceeded", etype="requests")
            return await JSONResponse(err.body(), status_code=429,
                                      headers={"Retry-After": retry_after(wait)})(scope, receive, send)
        return await self.app(scope, receive, send)


# ---------------------------------------------------------------------- the login page
def _login_page(error: str = "", status: int = 200) -> HTMLResponse:
    html = (resources.files("dialogpt") / "data" / "login.html").read_text(encoding="utf-8")
    html = html.replace("{{TITLE}}", "DialoGPT").replace("{{ACTION}}", LOGIN_PATH).replace("{{ERROR}}", error)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


async def _form_key(request: Request) -> str:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_LOGIN_BODY:
            return ""
    return (parse_qs(body.decode("utf-8", "replace")).get("key") or [""])[0].strip()


def _add_login(app: FastAPI, keys: KeyRing, home: str) -> None:
    async def login(request: Request) -> Response:
        if request.method == "GET":
            return _login_page()
        index = keys.key_index(await _form_key(request))
        if index is None:
            return _login_page("That key is not valid.", status=401)
        response = RedirectResponse(home, status_code=303)
        response.set_cookie(COOKIE, keys.session(index), httponly=True,
                            samesite="strict", secure=request.url.scheme == "https", path="/")
        return response

    app.add_route(LOGIN_PATH, login, methods=["GET", "POST"], include_in_schema=False)


def install_security(app: FastAPI, config: SecurityConfig, home: str | None = None) -> None:
    """Put keys, the rate limit and CORS in front of ``app``; ``home`` (e.g. ``"/ui/"``) gets a login page.

    CORS goes outermost, so a preflight (which carries no key) is answered by it and a 401 still
    carries the CORS headers an allowed page needs to read it."""
    keys = KeyRing(config.api_keys) if config.api_keys else None
    limiter = RateLimiter(config.rate_limit) if config.rate_limit else None
    if keys is not None or limiter is not None:
        app.add_middleware(SecurityMiddleware, keys=keys, limiter=limiter)
    if keys is not None and home is not None:
        _add_login(app, keys, home)
    if config.allowed_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(config.allowed_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"],
                           expose_headers=["Retry-After", "X-DialoGPT-Stream"], max_age=600)
