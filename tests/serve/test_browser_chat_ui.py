"""The web chat of the real server (``create_app(..., ServerConfig(ui=True))``, as ``dialogpt-serve --ui
--api-key-file ...``) in a real headless chromium: no chat without the key, a sign-in with it; then type, read
the reply from the page, keep the history, reset; the API answers beside it. Also the login's cookie over
plain HTTP: HttpOnly, SameSite, accepted by the page and never by the API."""

from __future__ import annotations

import httpx
import pytest
from browser_helpers import chromium, live_server, screenshot, wait_for

from dialogpt.decode import GenerationOptions, Responder
from dialogpt.serve.app import ServerConfig, create_app
from dialogpt.serve.auth import COOKIE, SecurityConfig

pytest.importorskip("gradio", reason="gradio not installed (pip install 'dialogpt-hf[ui]')")

FIRST, SECOND = "Hello there, how are you?", "What do you do for fun?"
KEY, WRONG = "sk-web-chat-0123456789", "sk-web-chat-0123456780"


@pytest.fixture(scope="module")
def responder(tiny_model_dir):
    return Responder.from_pretrained(str(tiny_model_dir), device="cpu", options=GenerationOptions(max_new_tokens=10))


@pytest.fixture(scope="module")
def served(responder):
    app = create_app(responder, ServerConfig(ui=True, model_name="tiny", security=SecurityConfig(api_keys=(KEY,))))
    with live_server(app) as base:
        yield app, base


def test_the_web_chat_needs_the_login_and_its_cookie_only_opens_the_page(served):
    _, base = served
    with httpx.Client(base_url=base, timeout=60) as http:
        page = http.get("/ui/", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert http.get("/ui/config").status_code == 401  # what the page's script would fetch
        assert http.get("/login").status_code == 200
        assert http.post("/login", data={"key": WRONG}).status_code == 401 and COOKIE not in http.cookies
        signed = http.post("/login", data={"key": KEY})
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and KEY.lower() not in cookie
        assert http.get("/ui/config").status_code == 200
        assert http.get("/v1/models").status_code == 401  # the API takes the key, never the cookie
        assert http.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def bot_texts(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [" ".join(e.text.split()) for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="bot"]')]


def say(driver, text: str, replies_before: int) -> str:
    """Type a message, press Enter, wait for the next reply and return it as the page shows it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = wait_for(driver, lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, "#message textarea")
                                           if e.is_enabled()), None))
    box.send_keys(text)
    box.send_keys(Keys.ENTER)
    wait_for(driver, lambda d: len(bot_texts(d)) == replies_before + 1 and bot_texts(d)[-1])
    return bot_texts(driver)[-1]


def sign_in(driver, base: str) -> None:
    """Without the key the page is the login form (no chat box); a wrong key stays there; the key opens the chat."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of

    driver.get(base + "/ui/")
    assert driver.current_url == base + "/login" and not driver.find_elements(By.CSS_SELECTOR, "#message")
    for key in (WRONG, KEY):
        wait_for(driver, lambda d: d.find_element(By.ID, "api-key")).send_keys(key)
        button = driver.find_element(By.ID, "sign-in")
        button.click()
        wait_for(driver, staleness_of(button))  # the form was posted: a new page, not the old one's elements
        if key == WRONG:
            wait_for(driver, lambda d: d.find_element(By.ID, "error").text == "That key is not valid.")
            assert driver.current_url == base + "/login"
    wait_for(driver, lambda d: d.current_url == base + "/ui/")


def chat_in_browser(driver, base: str, tmp_path, expected: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    sign_in(driver, base)
    first = say(driver, FIRST, 0)
    assert first == expected["first"]
    second = say(driver, SECOND, 1)
    assert second == expected["second_with_history"]  # the page sent the whole conversation
    driver.find_element(By.XPATH, "//*[normalize-space(text())='Decoding settings']").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "candidates").is_displayed())
    driver.set_window_size(1280, 1150)  # the whole page, settings included, in the screenshot
    screenshot(driver, tmp_path, "web_chat.png")
    driver.find_element(By.CSS_SELECTOR, 'button[aria-label="Clear"]').click()
    wait_for(driver, lambda d: bot_texts(d) == [])
    assert say(driver, SECOND, 0) == expected["second_alone"]  # after reset: no history


@pytest.mark.slow
def test_web_chat_in_a_browser(responder, served, tmp_path):
    first = responder.respond([FIRST]).text
    expected = {
        "first": first,
        "second_with_history": responder.respond([FIRST, first, SECOND]).text,
        "second_alone": responder.respond([SECOND]).text,
    }
    assert expected["second_with_history"] != expected["second_alone"]  # else history would not show
    app, base = served
    before = app.state.scheduler.counters["requests"]
    with chromium() as driver:
        chat_in_browser(driver, base, tmp_path, expected)
    # the page's three replies were decoded on the server's model thread (Scheduler.call), not beside it
    assert app.state.scheduler.counters["requests"] - before == 3
