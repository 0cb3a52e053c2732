"""``dialogpt-serve``: the OpenAI-compatible server (FastAPI + uvicorn) for a DialoGPT model."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from dialogpt.cli.responder_args import add_responder_args, spec_from_args
from dialogpt.decode import build_responder
from dialogpt.serve.app import ServerConfig, create_app
from dialogpt.serve.runner import bind_socket, run_forever


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dialogpt-serve",
                                description="OpenAI-compatible server for a DialoGPT model: /v1/chat/completions, "
                                            "/v1/completions (token streaming over SSE), /v1/models, /health.")
    add_responder_args(p)
    d = ServerConfig
    s = p.add_argument_group("server")
    s.add_argument("--host", default=d.host, help="bind address (default loopback only: there is no authentication)")
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
    s.add_argument("--request-timeout", type=float, default=d.request_timeout)
    s.add_argument("--header-timeout", type=float, default=d.header_timeout,
                   help="seconds to send request line + headers (bytes arriving do not extend it)")
    s.add_argument("--body-timeout", type=float, default=d.body_timeout)
    s.add_argument("--ui", action="store_true", help="also serve the Gradio web chat at /ui/ (needs the ui extra)")
    s.add_argument("--log-requests", action="store_true")
    return p


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def _config(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        host=args.host, port=args.port,
        model_name=args.served_model_name or Path(args.model.rstrip("/")).name or args.model,
        max_queue=args.max_queue, max_batch=args.max_batch, cpu_matmul=args.cpu_matmul,
        max_connections=args.max_connections,
        max_body_bytes=args.max_body_bytes, max_header_bytes=args.max_header_bytes,
        max_tokens_limit=args.max_tokens_limit, max_n=args.max_n, request_timeout=args.request_timeout,
        header_timeout=args.header_timeout, body_timeout=args.body_timeout, ui=args.ui,
        log_requests=args.log_requests,
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
        config = _config(args)
        if not _is_loopback(args.host):
            print(f"warning: binding {args.host}, which is not a loopback address: the server has no "
                  f"authentication", file=sys.stderr)
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
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    print(f"dialogpt-serve: model '{config.model_name}' on {url} (Ctrl-C stops)"
          + (f"; web chat at {url}/ui/" if config.ui else ""), file=sys.stderr, flush=True)
    try:
        run_forever(app, config, sock)
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
