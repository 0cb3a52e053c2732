"""dialogpt-serve beyond loopback, with real clients on a real server (uvicorn on a free loopback port):
API keys on every /v1 route (no key, wrong key, right key), the openai client with a key (streaming and
not), keys absent from logs and messages, CORS preflights both ways, HTTPS with a self-signed
certificate made here, the per-key rate limit, and the command line's warnings and one-line errors."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
from contextlib import contextmanager

import httpx
import openai
import pytest

from dialogpt.cli.serve import KEY_FLAG_WARNING, _security, build_parser, main
from dialogpt.decode import GenerationOptions, Responder
from dialogpt.serve.app import ServerConfig, create_app
from dialogpt.serve.auth import SecurityConfig, collect_api_keys
from dialogpt.serve.ratelimit import RateLimiter, parse_rate_limit
from dialogpt.serve.runner import serving_in_thread

KEYS = ("sk-first-0123456789abcdef", "sk-second-fedcba9876543210")
WRONG = "sk-first-0123456789abcdeX"  # one character off the first key
ORIGIN = "https://app.example"
MESSAGES = [{"role": "user", "content": "hello there, how are you?"}]
CHAT = {"model": "tiny", "messages": MESSAGES, "max_tokens": 3}
ROUTES = [("GET", "/v1/models", None, 200), ("GET", "/v1/models/tiny", None, 200),
          ("POST", "/v1/chat/completions", CHAT, 200),
          ("POST", "/v1/completions", {"model": "tiny", "prompt": "hello", "max_tokens": 3}, 200),
          ("GET", "/v1/no-such-route", None, 404)]


@pytest.fixture(scope="module")
def responder(tiny_model_dir):
    return Responder.from_pretrained(str(tiny_model_dir), device="cpu", options=GenerationOptions(max_new_tokens=4))


@contextmanager
def serving(responder, **security):
    cfg = ServerConfig(host="127.0.0.1", port=0, model_name="tiny", log_requests=True,
                       security=SecurityConfig(**security))
    with serving_in_thread(create_app(responder, cfg), cfg) as url:
        yield url


@pytest.fixture(scope="module")
def server(responder):
    with serving(responder, api_keys=KEYS, allowed_origins=(ORIGIN,)) as url:
        yield url


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_every_api_route_needs_a_right_key_and_health_stays_open(server):
    seen = _Lines()
    loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error", "dialogpt", "")]
    for lg in loggers:
        lg.addHandler(seen)
    try:
        with httpx.Client(base_url=server, timeout=60) as http:
            for method, path, body, ok in ROUTES:
                for headers in ({}, bearer(WRONG), {"Authorization": f"Basic {KEYS[0]}"}, {"Authorization": "Bearer"}):
                    r = http.request(method, path, json=body, headers=headers)
                    assert r.status_code == 401, (path, headers, r.text)
                    err = r.json()["error"]
                    assert err["code"] == "invalid_api_key" and err["type"] == "invalid_request_error"
                    assert r.headers["www-authenticate"] == "Bearer"
                    assert WRONG not in r.text and KEYS[0] not in r.text
                for key in KEYS:
                    r = http.request(method, path, json=body, headers=bearer(key))
                    assert r.status_code == ok, (path, r.text)
            health = http.get("/health")
    finally:
        for lg in loggers:
            lg.removeHandler(seen)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert "key" not in health.text.lower() and "hello" not in health.text
    assert any("/v1/chat/completions" in line and "401" in line for line in seen.lines)  # the access log ran
    assert not [line for line in seen.lines if any(k in line for k in (*KEYS, WRONG))]


def test_the_openai_client_works_with_the_key_streaming_and_not(server):
    c = openai.OpenAI(base_url=server + "/v1", api_key=KEYS[1], max_retries=0, timeout=60)
    full = c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=4)
    streamed = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
        model="tiny", messages=MESSAGES, temperature=0, max_tokens=4, stream=True) if ch.choices)
    assert streamed == full.choices[0].message.content and streamed
    bad = openai.OpenAI(base_url=server + "/v1", api_key=WRONG, max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model="tiny", messages=MESSAGES, stream=True)
    assert e.value.status_code == 401 and e.value.code == "invalid_api_key" and WRONG not in str(e.value)


def preflight(http: httpx.Client, origin: str) -> httpx.Response:
    return http.options("/v1/chat/completions", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})


def test_cors_answers_listed_origins_only(server):
    with httpx.Client(base_url=server, timeout=60) as http:
        ok = preflight(http, ORIGIN)
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        other = preflight(http, "https://elsewhere.example")
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        # a 401 still carries the header, so the allowed page can read why
        r = http.get("/v1/models", headers={"Origin": ORIGIN})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN


def self_signed(tmp_path) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed: cannot make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return str(key), str(cert)


def test_https_with_a_self_signed_certificate_and_the_rate_limit(responder, tmp_path):
    key, cert = self_signed(tmp_path)
    trusted = ssl.create_default_context(cafile=cert)
    with serving(responder, api_keys=KEYS, rate_limit=2, ssl_keyfile=key, ssl_certfile=cert) as url:
        assert url.startswith("https://127.0.0.1:")
        with httpx.Client(base_url=url, timeout=60, verify=trusted) as http:
            assert http.get("/health").status_code == 200
            assert "access-control-allow-origin" not in preflight(http, ORIGIN).headers  # CORS off
            c = openai.OpenAI(base_url=url + "/v1", api_key=KEYS[0], max_retries=0, http_client=http)
            assert [m.id for m in c.models.list().data] == ["tiny"]  # 1 of 2 this minute
            assert http.get("/v1/models", headers=bearer(KEYS[0])).status_code == 200  # 2 of 2
            limited = http.get("/v1/models", headers=bearer(KEYS[0]))
            assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limit_exceeded"
            assert 1 <= int(limited.headers["retry-after"]) <= 30  # one request back in 60/2 s
            assert http.get("/v1/models", headers=bearer(KEYS[1])).status_code == 200  # per key
            assert http.get("/health").status_code == 200  # not limited
        with pytest.raises(httpx.ConnectError), httpx.Client(timeout=30) as untrusting:
            untrusting.get(url + "/health")  # the default trust store does not know this certificate
        with pytest.raises(httpx.HTTPError), httpx.Client(timeout=30) as plain:
            plain.get(url.replace("https://", "http://") + "/health")


def test_rate_limit_refills_at_its_rate():
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k") == pytest.approx(20.0) and limiter.take("other") == 0.0
    now[0] = 20.0
    assert limiter.take("k") == 0.0 and limiter.take("k") == pytest.approx(20.0)
    assert parse_rate_limit("60/min") == 60 == parse_rate_limit("60")
    with pytest.raises(ValueError, match="--rate-limit"):
        parse_rate_limit("0/min")


def test_keys_from_flags_files_and_env_and_the_command_line_warnings(tmp_path, monkeypatch, capsys):
    keyfile = tmp_path / "keys.txt"
    keyfile.write_text(f"# team keys\n{KEYS[0]}\n\n  {KEYS[1]}  \n", encoding="utf-8")
    assert collect_api_keys(["flag-key"], [str(keyfile)], " env-key\n") == ("flag-key", *KEYS, "env-key")
    (tmp_path / "empty.txt").write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty.txt: no key"):
        collect_api_keys(files=[str(tmp_path / "empty.txt")])
    with pytest.raises(ValueError) as e:
        SecurityConfig(api_keys=("sk-secret with-space",))
    assert "secret" not in str(e.value) and "#1" in str(e.value)
    assert KEYS[0] not in repr(SecurityConfig(api_keys=KEYS)) and KEYS[0] not in repr(ServerConfig(
        security=SecurityConfig(api_keys=KEYS)))

    def security(*argv: str):
        return _security(build_parser().parse_args(["runs/m", *argv]))

    sec, warnings = security("--host", "0.0.0.0")
    assert sec.api_keys == () and len(warnings) == 1 and "without an API key" in warnings[0]
    monkeypatch.setenv("DIALOGPT_API_KEY", KEYS[1])
    sec, warnings = security("--host", "0.0.0.0", "--api-key", KEYS[0], "--allowed-origins", f"{ORIGIN},https://b.example")
    assert sec.api_keys == KEYS and sec.allowed_origins == (ORIGIN, "https://b.example")
    assert warnings[0] == KEY_FLAG_WARNING and "unencrypted" in warnings[1]
    sec, warnings = security("--api-key-file", str(keyfile), "--rate-limit", "30/min")
    assert (sec.api_keys, sec.rate_limit, warnings) == (KEYS, 30, [])  # env key again, de-duplicated
    for argv, needle in [(["--ssl-keyfile", str(keyfile)], "go together"),
                         (["--ssl-keyfile", str(keyfile), "--ssl-certfile", str(keyfile)], "--ssl-certfile"),
                         (["--api-key-file", str(tmp_path / "missing.txt")], "missing.txt: cannot read"),
                         (["--rate-limit", "fast"], "--rate-limit")]:
        assert main(["runs/m", *argv]) == 1
        err = capsys.readouterr().err
        assert needle in err and err.startswith("error: ") and err.count("\n") == 1, err
