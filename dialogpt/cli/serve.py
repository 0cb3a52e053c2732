"""``dialogpt-serve``: the OpenAI-compatible server (FastAPI + uvicorn) for a DialoGPT model."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dialogpt.cli.responder_args import add_responder_args, spec_from_args
from dialogpt.decode import build_responder
from dialogpt.serve.app import ServerConfig, create_app
from dialogpt.serve.auth import API_KEY_ENV, SecurityConfig, collect_api_keys
from dialogpt.serve.hosts import is_loopback
from dialogpt.serve.ratelimit import parse_rate_limit
from dialogpt.serve.runner import base_url, bind_socket, run_forever

KEY_FLAG_WARNING = ("warning: --api-key on the command line is visible to other users of this machine (ps, "
                    f"/proc/<pid>/cmdline) while the server runs; use {API_KEY_ENV} or --api-key-file")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dialogpt-serve",
                                description="OpenAI-compatible server for a DialoGPT model: /v1/chat/completions, "
                                            "/v1/completions (token streaming over SSE), /v1/models, /health.")
    add_responder_args(p)
    d = ServerConfig
    s = p.add_argument_group("server")
    s.add_argument("--host", default=d.host, help="bind address (default loopback only; anything else without "
                   "an API key gets a warning)")
    s.add_argument("--port", type=int, default=d.port, help="0 picks a free port")
    s.add_argument("--served-model-name", help="the model id clients use (default: the model's name)")
    s.add_argument("--max-queue", type=int, default=d.max_queue, help="requests waiting at most; more get 503")
    s.add_argument("--max-batch", type=int, default=d.max_batch, help="rows decoded together")
    s.add_argument("--cpu-matmul", choices=("auto", "onednn", "stock"), default=d.cpu_matmul,
                   help="linear layers of a CPU float32 model: oneDNN (auto, about 2x MKL's sgemm on AMD cores) "
                        "or PyTorch's stock MKL path")
    s.add_argument("--max-connections", type=int, default=d.max_connections)
    s.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes)
    s.add_argument("--max-header-bytes", type=int, default=d.max_header_bytes)
    s.add_argument("--max-tokens-limit", type=int, default=d.max_tokens_limit)
    s.add_argument("--max-n", type=int, default=d.max_n)
    s.add_argument("--max-messages", type=int, default=d.max_messages,
                   help="messages (or prompt turns) one request may carry; more are a 400 (default %(default)s)")
    s.add_argument("--request-timeout", type=float, default=d.request_timeout)
    s.add_argument("--header-timeout", type=float, default=d.header_timeout,
                   help="seconds to send request line + headers (bytes arriving do not extend it)")
    s.add_argument("--body-timeout", type=float, default=d.body_timeout)
    s.add_argument("--ui", action="store_true", help="also serve the Gradio web chat at /ui/ (needs the ui extra)")
    s.add_argument("--log-requests", action="store_true", help="one access-log line per request (never keys)")
    _add_security_args(p)
    return p


def _add_security_args(p: argparse.ArgumentParser) -> None:
    a = p.add_argument_group("access", "With keys, /v1/* needs 'Authorization: Bearer KEY' (401 otherwise) and the "
                                       "web chat a sign-in at /login; /health stays open.")
    a.add_argument("--api-key", action="append", default=[], metavar="KEY",
                   help=f"accept this key (repeatable); visible to other users in the process list: prefer "
                        f"--api-key-file or ${API_KEY_ENV}")
    a.add_argument("--api-key-file", action="append", default=[], metavar="FILE",
                   help="accept the keys in FILE, one a line (# comments and blank lines skipped; repeatable)")
    a.add_argument("--ssl-keyfile", metavar="FILE", help="TLS private key (PEM): serve HTTPS with --ssl-certfile")
    a.add_argument("--ssl-certfile", metavar="FILE", help="TLS certificate chain (PEM)")
    a.add_argument("--allowed-origins", action="append", default=[], metavar="ORIGIN[,ORIGIN...]",
                   help="let pages from these origins call the API from a browser (CORS; '*' = any); "
                        "default: CORS off")
    a.add_argument("--rate-limit", metavar="N/min", help="at most N requests per minute per key (per client "
                   "address without keys) on /v1/*; more get 429 with Retry-After")


def _security(args: argparse.Namespace) -> tuple[SecurityConfig, list[str]]:
    """The access settings from the flags and $DIALOGPT_API_KEY, and the warnings to print about them."""
    keys = collect_api_keys(args.api_key, args.api_key_file, os.environ.get(API_KEY_ENV))
    origins = tuple(o.strip() for v in args.allowed_origins for o in v.split(",") if o.strip())
    security = SecurityConfig(api_keys=keys, allowed_origins=origins, ssl_keyfile=args.ssl_keyfile,
                              ssl_certfile=args.ssl_certfile,
                              rate_limit=parse_rate_limit(args.rate_limit) if args.rate_limit else None)
    security.check_tls()
    warnings = [KEY_FLAG_WARNING] if args.api_key else []
    if not is_loopback(args.host):
        if not keys:
            warnings.append(f"warning: binding {args.host}, which is not a loopback address, without an API key: "
                            f"anyone who can reach this port can use the model (--api-key-file / {API_KEY_ENV})")
        elif not security.tls:
            warnings.append(f"warning: binding {args.host} without --ssl-certfile: API keys and chats cross the "
                            f"network unencrypted (fine behind a TLS proxy)")
    return security, warnings


def _config(args: argparse.Namespace, security: SecurityConfig) -> ServerConfig:
    return ServerConfig(
        host=args.host, port=args.port,
        model_name=args.served_model_name or Path(args.model.rstrip("/")).name or args.model,
        max_queue=args.max_queue, max_batch=args.max_batch, cpu_matmul=args.cpu_matmul,
        max_connections=args.max_connections,
        max_body_bytes=args.max_body_bytes, max_header_bytes=args.max_header_bytes,
        max_tokens_limit=args.max_tokens_limit, max_n=args.max_n, max_messages=args.max_messages,
        request_timeout=args.request_timeout,
        header_timeout=args.header_timeout, body_timeout=args.body_timeout, ui=args.ui,
        log_requests=args.log_requests, security=security,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.log_requests else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import transformers

        transformers.logging.set_verbosity_error()  # a server process: no need to restore
        transformers.utils.logging.disable_progress_bar()
        if args.seed is not None:
            transformers.set_seed(args.seed)
        security, warnings = _security(args)
        config = _config(args, security)
        for w in warnings:
            print(w, file=sys.stderr)
        args.batch_size = max(args.batch_size, args.max_batch)
        responder = build_responder(spec_from_args(args))
        app = create_app(responder, config)
        try:
            sock = bind_socket(config.host, config.port)
        except OSError as e:
            raise OSError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    except (ValueError, OSError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    url = base_url(sock, config)
    print(f"dialogpt-serve: model '{config.model_name}' on {url} (Ctrl-C stops)"
          + (f"; web chat at {url}/ui/" if config.ui else "")
          + ("; API keys required" if security.api_keys else ""), file=sys.stderr, flush=True)
    try:
        run_forever(app, config, sock)
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
