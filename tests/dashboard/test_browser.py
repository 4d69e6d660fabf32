"""The dashboard in a real browser: Playwright drives Debian's Chromium against the whole
service running as processes (gunicorn API, transcription worker, webhook worker, Redis,
SQLite, the tiny models), doing what a user and an operator do, and writes a screenshot of
every page at desktop and phone widths (``artifacts/dashboard/`` and the test's tmp dir).

Chromium comes from Debian (``apt-get install chromium``); Playwright's own browser
download cannot work offline. Without ``/usr/bin/chromium`` these tests are skipped.
"""

from __future__ import annotations

import base64
import csv
import io
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from app.ops.embedded_redis import EmbeddedRedis
from tests.conftest import FIXTURES
from tests.support.media_server import MediaServer
from tests.support.receivers import Receiver
from tests.support.stack import Stack, running_stack

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "dashboard"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed at "
                       "/usr/bin/chromium (apt-get install chromium)"),
]

sync_api = pytest.importorskip("playwright.sync_api")


@dataclass
class Live:
    stack: Stack
    key: str
    admin_token: str
    media: MediaServer
    receiver: Receiver

    @property
    def base(self) -> str:
        return self.stack.base_url

    def api(self, path: str, key: str | None = None) -> requests.Response:
        return requests.get(self.base + path, timeout=30,
                            headers={"Authorization": f"Bearer {key or self.key}"})


@dataclass
class Shots:
    """Full-page screenshots at both widths, into the tmp dir and ``artifacts/dashboard``."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def __call__(self, page: Any, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for width_name, size in VIEWPORTS.items():
            page.set_viewport_size(size)
            page.wait_for_timeout(150)  # let the layout settle
            path = self.folder / f"{name}-{width_name}.png"
            page.screenshot(path=str(path), full_page=True)
            shutil.copy(path, ARTIFACTS / path.name)
            self.taken.append(path)
        page.set_viewport_size(VIEWPORTS["desktop"])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
         diarizing_pipelines_file: Path, media_server: MediaServer) -> Iterator[Live]:
    admin_token = secrets.token_urlsafe(32)
    folder = tmp_path_factory.mktemp("dashboard-stack")
    with Receiver() as receiver, running_stack(
            folder, redis_server.url, diarizing_pipelines_file, ready_timeout_s=180,
            extra_env={"VOXHOOK_ADMIN_TOKEN": admin_token,
                       "VOXHOOK_MEDIA_RETENTION_HOURS": "1",
                       "VOXHOOK_WEBHOOK_RETRY_SCHEDULE": "1,2",
                       "VOXHOOK_WEBHOOK_JITTER": "0"}) as stack:
        stack.start_webhook_worker()
        yield Live(stack, stack.create_key("dashboard"), admin_token, media_server, receiver)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class Watcher:
    """Collects what would be invisible in a screenshot: script errors and CSP refusals;
    keeps the pages, to photograph them when a step fails."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.pages: list[Any] = []

    def photograph(self, folder: Path) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for number, page in enumerate(self.pages):
            path = folder / f"failure-{number}.png"
            page.screenshot(path=str(path), full_page=True)
            shutil.copy(path, ARTIFACTS / path.name)

    def _console(self, message: Any) -> None:
        """CSP refusals and script errors; not the log line of a page answered 4xx on
        purpose (a wrong key's sign-in page is a 401)."""
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console error: {message.text}")

    def attach(self, page: Any) -> Any:
        self.pages.append(page)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", self._console)
        page.on("response", lambda response: self.problems.append(
            f"{response.status} from {response.url}") if response.status >= 500 else None)
        return page


def new_page(browser: Any, live: Live, watcher: Watcher) -> Any:
    context = browser.new_context(viewport=VIEWPORTS["desktop"], accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.base)
    return watcher.attach(context.new_page())


def sign_in(page: Any, live: Live, key: str) -> None:
    page.goto(live.base + "/dashboard/sign-in")
    page.fill("#key", key)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard/$"))


def drop_files(page: Any, selector: str, files: list[Path]) -> None:
    """Drop files onto an element the way a browser does: a drop event carrying a
    DataTransfer of File objects (Playwright cannot drag from the desktop)."""
    payload = [{"name": path.name, "type": "audio/wav" if path.suffix == ".wav" else "audio/flac",
                "data": base64.b64encode(path.read_bytes()).decode()} for path in files]
    page.eval_on_selector(selector, """(zone, files) => {
        const transfer = new DataTransfer();
        for (const f of files) {
            const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
            transfer.items.add(new File([bytes], f.name, {type: f.type}));
        }
        for (const type of ['dragenter', 'dragover', 'drop']) {
            zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true,
                                                    dataTransfer: transfer}));
        }
    }""", payload)


def wait_for(predicate: Any, what: str, timeout_s: float = 120) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_whole_walk_through(live: Live, browser: Any, tmp_path: Path) -> None:
    watcher = Watcher()
    try:
        walk_through(live, browser, tmp_path, watcher)
    except BaseException:
        watcher.photograph(tmp_path)  # what each page showed when the step failed
        raise


def walk_through(live: Live, browser: Any, tmp_path: Path, watcher: Watcher) -> None:
    shots = Shots(tmp_path)
    user = new_page(browser, live, watcher)

    # --- sign in: a wrong key is refused with a message, the right one opens a session
    user.goto(live.base + "/dashboard/")
    assert "/dashboard/sign-in" in user.url
    shots(user, "01-sign-in")
    user.fill("#key", "sk_live_" + "x" * 40)
    user.click("form button[type=submit]")
    assert "not an active API key" in user.inner_text(".notice-error")
    sign_in(user, live, live.key)
    cookie = next(c for c in user.context.cookies() if c["name"] == "voxhook_dashboard")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and live.key not in cookie["value"]
    assert "No transcriptions yet" in user.inner_text("main")
    shots(user, "02-overview-empty")

    # --- a webhook endpoint, and the signing secret revealed and rotated
    user.click("nav >> text=Webhooks")
    shots(user, "03-webhooks-empty")
    user.fill("#url", live.receiver.url("/dashboard-hook"))
    user.click("text=Add endpoint")
    assert live.receiver.url("/dashboard-hook") in user.inner_text("table.list")
    user.click("text=Reveal the secret")
    before = user.input_value("#webhook-secret")
    assert before.startswith("whsec_")
    user.click("text=Rotate the secret…")
    user.click("text=Yes, rotate it")
    assert "Signing secret rotated" in user.inner_text(".notice-success")
    user.click("text=Reveal the secret")
    after = user.input_value("#webhook-secret")
    assert after.startswith("whsec_") and after != before
    assert live.api("/api/v1/webhook_endpoints").json()["data"][0]["url"] == \
        live.receiver.url("/dashboard-hook")
    shots(user, "04-webhooks")

    # --- drop a file: uploaded straight to its signed URL, with speakers, then followed
    user.click("nav >> text=Transcribe")
    shots(user, "05-transcribe")
    user.check("#diarize")
    user.fill("#speaker_count", "2")
    drop_files(user, "[data-drop-zone]", [FIXTURES / "sample.wav"])
    link = user.wait_for_selector("[data-upload-list] a[data-created]", timeout=60_000)
    transcription_id = link.get_attribute("data-created")
    assert user.eval_on_selector("[data-upload-list] progress", "bar => bar.value") == 1
    shots(user, "06-transcribe-uploaded")
    user.click("nav >> text=Transcriptions")
    row = f"tr[data-transcription='{transcription_id}']"
    # The list follows the job by itself: no reload here.
    user.wait_for_selector(f"{row} .status-completed", timeout=180_000)
    shots(user, "07-transcriptions")

    # --- the transcript: speakers, the player, click a word to seek, the SRT download
    user.click(f"{row} a")
    user.wait_for_selector("[data-transcript] .word")
    assert user.locator(".speakers li").count() >= 1
    user.wait_for_function("document.querySelector('audio[data-player]').readyState >= 1")
    duration = user.eval_on_selector("audio[data-player]", "a => a.duration")
    assert abs(duration - 30) < 1, duration
    words = user.locator("[data-transcript] .word")
    target = words.nth(min(3, words.count() - 1))
    start = float(target.get_attribute("data-start") or "nan")
    target.click()
    user.wait_for_function("document.querySelector('audio[data-player]').readyState >= 1")
    position = user.eval_on_selector("audio[data-player]", "a => a.currentTime")
    assert position == pytest.approx(start, abs=0.3), (position, start)
    user.eval_on_selector("audio[data-player]", "a => a.pause()")
    user.wait_for_selector("[data-transcript] .word.current")
    with user.expect_download() as download:
        user.click(".downloads >> text=SRT")
    srt = Path(download.value.path()).read_text()
    exported = requests.get(f"{live.base}/api/v1/transcriptions/{transcription_id}/export",
                            params={"format": "srt"}, timeout=30,
                            headers={"Authorization": f"Bearer {live.key}"})
    assert srt == exported.text and srt.startswith("1\n")
    assert download.value.suggested_filename == f"{transcription_id}.srt"
    # The subscription was told; its delivery and attempt show on the page.
    wait_for(lambda: live.receiver.requests, "the webhook")
    wait_for(lambda: (user.reload(), user.locator("#webhooks .delivery td").count())[1],
             "the delivery's attempt on the page")
    assert "200" in user.inner_text("#webhooks")
    user.evaluate("window.scrollTo(0, 0)")
    shots(user, "08-transcription")

    # --- a link, cancelled while it runs, then deleted
    user.click("nav >> text=Transcribe")
    user.fill("#url", live.media.url("long.wav"))
    user.click("text=Transcribe the link")
    user.wait_for_selector(".status-queued, .status-processing")
    cancelled_id = user.url.rstrip("/").rsplit("/", 1)[-1]
    user.click("text=Cancel this transcription…")
    user.click("text=Yes, cancel it")
    user.wait_for_selector(".status-cancelled")
    assert live.api(f"/api/v1/transcriptions/{cancelled_id}").json()["status"] == "cancelled"
    user.click("text=Delete this transcription…")
    user.click("text=Yes, delete it")
    assert "deleted" in user.inner_text(".notice-success")
    assert live.api(f"/api/v1/transcriptions/{cancelled_id}").status_code == 404

    # --- keys: create one (shown once, copied), use it, revoke it: its session ends
    user.click("nav >> text=API keys")
    user.fill("#name", "zapier")
    user.click("text=Create key")
    secret = user.input_value("#new-key")
    user.click("[data-copy='new-key']")
    user.wait_for_selector("text=Copied to the clipboard.")
    assert user.evaluate("navigator.clipboard.readText()") == secret
    assert live.api("/api/v1/me", key=secret).status_code == 200
    shots(user, "09-keys-created")
    other = new_page(browser, live, watcher)
    sign_in(other, live, secret)
    zapier_row = "tr:has-text('zapier')"
    user.click(f"{zapier_row} >> text=Revoke…")
    user.click(f"{zapier_row} >> text=Yes, revoke")
    assert "revoked" in user.inner_text(".notice-success")
    assert live.api("/api/v1/me", key=secret).status_code == 401
    other.goto(live.base + "/dashboard/keys")
    assert "/dashboard/sign-in" in other.url
    assert "has been revoked" in other.inner_text(".notice")
    shots(other, "10-sign-in-after-revocation")
    shots(user, "11-keys")

    # --- a forged form post (no CSRF token) is refused and changes nothing
    names_before = [k["name"] for k in live.api("/api/v1/keys").json()["data"]]
    forged = user.request.post(live.base + "/dashboard/keys", form={"name": "forged"},
                               max_redirects=0)
    assert forged.status == 400 and "Form refused" in forged.text()
    forged = user.request.post(live.base + "/dashboard/webhooks/secret/rotate",
                               form={"csrf_token": "not-the-token"}, max_redirects=0)
    assert forged.status == 400
    assert [k["name"] for k in live.api("/api/v1/keys").json()["data"]] == names_before
    user.goto(live.base + "/dashboard/webhooks")
    user.click("text=Reveal the secret")
    assert user.input_value("#webhook-secret") == after

    # --- the operator tops the account up; the user's overview shows it
    operator = new_page(browser, live, watcher)
    operator.goto(live.base + "/dashboard/operator/")
    assert "/dashboard/operator/sign-in" in operator.url
    operator.fill("#token", "wrong-token")
    operator.click("form button[type=submit]")
    assert "Wrong admin token" in operator.inner_text(".notice-error")
    operator.fill("#token", live.admin_token)
    operator.click("form button[type=submit]")
    operator.wait_for_url(re.compile(r"/dashboard/operator/$"))
    shots(operator, "12-operator-accounts")
    operator.click("text=Default account")
    operator.fill("#topup-usd", "12.50")
    operator.fill("#topup-note", "invoice 17")
    operator.click("text=Add top-up")
    assert "Top-up of $12.50 added" in operator.inner_text(".notice-success")
    assert operator.inner_text("#operator-topup") == "$12.50"
    assert "invoice 17" in operator.inner_text("#ledger")
    operator.fill("#topup-usd", "1.00")
    operator.click("text=Add top-up")
    assert "at least 5.00" in operator.inner_text(".notice-error")
    shots(operator, "13-operator-account")
    operator.click("nav >> text=System")
    assert operator.inner_text("#audit-verdict") == "OK"
    assert operator.inner_text("#readiness") == "ready"
    assert operator.inner_text("#queue-depth") == "0"
    assert operator.locator("#workers tbody tr").count() >= 1
    shots(operator, "14-operator-system")
    user.goto(live.base + "/dashboard/")
    assert user.inner_text("#topup-balance") == "$12.50"
    shots(user, "15-overview")

    # --- usage: the table and the CSV say what the API says
    user.click("nav >> text=Usage")
    api_usage = live.api("/api/v1/usage").json()
    with user.expect_download() as download:
        user.click("text=Download CSV")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    totals = {row["date"]: row["spend_usd"] for row in rows if row["key_name"] == "all keys"}
    assert totals == {day["date"]: day["spend_usd"] for day in api_usage["days"]}
    assert len(totals) == 1
    shots(user, "16-usage")

    # --- sign out: the session is gone server-side, so its cookie opens nothing any more
    user.click("text=Sign out")
    assert "You are signed out" in user.inner_text(".notice")
    replay = browser.new_context()
    replay.add_cookies([cookie])
    page = replay.new_page()
    page.goto(live.base + "/dashboard/")
    assert "/dashboard/sign-in" in page.url

    assert not watcher.problems, watcher.problems
    assert len(shots.taken) == 32
