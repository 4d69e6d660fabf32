"""``/docs`` and ``/redoc`` work without internet: Debian's Chromium (driven by Playwright)
loads them from a live Voxhook with every request to another host blocked, and sees the
operations rendered; nothing tried to leave the machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.stack import Stack

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (apt-get install -y chromium); the offline "
           "docs test needs a real browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=["--no-sandbox"], headless=True)
        yield instance
        instance.close()


def _open_offline(browser, stack: Stack, path: str):
    """A page on ``stack`` where any request to another origin is aborted and recorded."""
    context = browser.new_context()
    page = context.new_page()
    own = urlsplit(stack.base_url).netloc
    blocked: list[str] = []

    def route(request_route):
        url = request_route.request.url
        if urlsplit(url).netloc == own or url.startswith(("data:", "blob:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    context.route("**/*", route)
    page.goto(stack.base_url + path, wait_until="load")
    return context, page, blocked


def test_swagger_ui_renders_every_operation_offline(browser, api_stack):
    context, page, blocked = _open_offline(browser, api_stack, "/docs")
    try:
        page.wait_for_selector(".opblock", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/v1/audio/transcriptions" in p for p in paths), paths
        assert any("/api/v1/transcriptions/{transcription_id}" in p.replace("\u200b", "")
                   for p in paths), paths
        assert blocked == []
    finally:
        context.close()


def test_redoc_renders_offline(browser, api_stack):
    context, page, blocked = _open_offline(browser, api_stack, "/redoc")
    try:
        page.wait_for_function(
            "document.body.innerText.includes('Transcribe a file')", timeout=30_000)
        assert page.locator("h1").first.inner_text().startswith("Voxhook")
        assert blocked == []
    finally:
        context.close()
