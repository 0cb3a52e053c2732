"""Running the app on uvicorn with limits a slow or hostile client cannot stretch.

uvicorn has no deadline for a request's headers: its keep-alive timer is cancelled by any byte, so
a client trickling one header byte every few seconds holds its connection forever (a slow-loris).
:class:`DeadlineH11Protocol` gives every request ``header_timeout`` seconds, counted from the
connection (or the end of the previous response), to deliver its request line and headers; bytes
arriving do not extend it. Header size is capped by h11 (``max_header_bytes``), the body's own
deadline and size are enforced by the app while it reads the body (``body_timeout``,
``max_body_bytes``). Being asynchronous, idle sockets cost no threads: slow clients cannot starve
normal ones while they wait for their deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a header deadline that incoming bytes do not reset."""

    header_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request on this keep-alive connection gets its own deadline

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.transport.close()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises SIGTERM after shutting down, so `kill` would end the process with -15
        # instead of 0; run_forever installs handlers that only ask the server to exit.
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free one); OSError when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def make_server(app, config) -> _Server:
    """A uvicorn server for ``app`` under ``config`` (a ``ServerConfig``); HTTPS when its
    ``security`` names a certificate (uvicorn loads the files)."""
    proto = type("DialoGPTH11Protocol", (DeadlineH11Protocol,), {"header_timeout": config.header_timeout})
    server = _Server(uvicorn.Config(
        app, http=proto, h11_max_incomplete_event_size=config.max_header_bytes,
        timeout_keep_alive=config.keep_alive_timeout, limit_concurrency=config.max_connections,
        backlog=2048, lifespan="on", log_level="warning", access_log=config.log_requests,
        timeout_graceful_shutdown=5,
        ssl_keyfile=config.security.ssl_keyfile, ssl_certfile=config.security.ssl_certfile,
    ))
    if config.log_requests:  # log_level above set the access logger to WARNING too: its lines are INFO
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    return server


def base_url(sock: socket.socket, config) -> str:
    """``http(s)://host:port`` of a listening socket under ``config``."""
    host, port = sock.getsockname()[:2]
    return f"{'https' if config.security.tls else 'http'}://{host}:{port}"


def run_forever(app, config, sock: socket.socket) -> None:
    """Serve until SIGINT or SIGTERM, then shut down cleanly (exit status 0)."""
    server = make_server(app, config)

    def _exit(signum, frame):
        server.should_exit = True

    if threading.current_thread() is threading.main_thread():
        # Set for SIGINT too: a process started in the background by a non-interactive shell
        # inherits SIGINT ignored, and Ctrl-C / kill -INT would never stop it.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _exit)
    server.run(sockets=[sock])


@contextlib.contextmanager
def serving_in_thread(app, config, timeout: float = 60.0) -> Iterator[str]:
    """Run ``app`` on a background thread (tests, benchmarks); yields its base URL."""
    sock = bind_socket(config.host, config.port)
    server = make_server(app, config)
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    try:
        for _ in range(int(timeout * 100)):
            if server.started or not t.is_alive():
                break
            threading.Event().wait(0.01)
        if not server.started:
            raise RuntimeError("the server did not start")
        yield base_url(sock, config)
    finally:
        server.should_exit = True
        t.join(timeout=30)
        sock.close()
