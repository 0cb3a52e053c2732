"""The web chat of the real server (``create_app(..., ServerConfig(ui=True))``, as ``dialogpt-serve --ui``) in a
real headless chromium: type, read the reply from the page, keep the history, reset; the API answers beside it."""

from __future__ import annotations

import json
import urllib.request

import pytest
from browser_helpers import chromium, live_server, screenshot, wait_for

from dialogpt.decode import GenerationOptions, Responder
from dialogpt.serve.app import ServerConfig, create_app

pytest.importorskip("gradio", reason="gradio not installed (pip install 'dialogpt-hf[ui]')")

FIRST, SECOND = "Hello there, how are you?", "What do you do for fun?"


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


def chat_in_browser(driver, base: str, tmp_path, expected: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/ui/")
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
def test_web_chat_in_a_browser(tiny_model, tokenizer, tmp_path):
    responder = Responder(tiny_model, tokenizer, GenerationOptions(max_new_tokens=10))
    first = responder.respond([FIRST]).text
    expected = {
        "first": first,
        "second_with_history": responder.respond([FIRST, first, SECOND]).text,
        "second_alone": responder.respond([SECOND]).text,
    }
    assert expected["second_with_history"] != expected["second_alone"]  # else history would not show
    app = create_app(responder, ServerConfig(ui=True, model_name="tiny"))
    with live_server(app) as base, chromium() as driver:
        chat_in_browser(driver, base, tmp_path, expected)
        with urllib.request.urlopen(base + "/v1/models", timeout=30) as r:  # the API on the same server
            assert [m["id"] for m in json.load(r)["data"]] == ["tiny"]
    # the page's three replies were decoded on the server's model thread (Scheduler.call), not beside it
    assert app.state.scheduler.counters["requests"] == 3
