"""Real-browser test helpers: Debian's chromium + chromedriver through selenium, and a live uvicorn server.

Playwright's browser download does not work on our machines, so the browser is the system one
(``apt-get install chromium chromium-driver``, done by ``.ci/run``); without it the tests skip and
say so. Every wait is explicit and bounded.

Screenshots of the pages go to the test's tmp dir; with ``DIALOGPT_UPDATE_SCREENSHOTS=1`` they are
also written to ``docs/`` (that is how the README's pictures are made).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP_REASON = "chromium/chromedriver not installed (apt-get install chromium chromium-driver)"
WAIT_S = 60
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1000", "--force-device-scale-factor=1")


def browser_paths() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver")
                                               else None)
    return (chromium, driver) if chromium and driver else None


@contextmanager
def chromium() -> Iterator:
    """A headless chromium driven by selenium, with a fresh profile; skips when absent."""
    paths = browser_paths()
    if paths is None:
        pytest.skip(SKIP_REASON)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium not installed (pip install selenium; it is in the dev extra)")
    profile = tempfile.mkdtemp(prefix="dialogpt-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=paths[1]), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(WAIT_S)


def wait_for(driver, condition, timeout: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def screenshot(driver, tmp_path: Path, name: str) -> Path:
    """Save a PNG of the page in tmp_path (and in docs/ when DIALOGPT_UPDATE_SCREENSHOTS=1)."""
    path = tmp_path / name
    driver.save_screenshot(str(path))
    if os.environ.get("DIALOGPT_UPDATE_SCREENSHOTS") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(path, REPO / "docs" / name)
    return path
