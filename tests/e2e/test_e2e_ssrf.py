"""Server-side request forgery, end to end: hostile URLs through the real API and worker.

Every attack aims only at loopback (127.0.0.0/8 and ::1), where listeners count each TCP
connection they accept; the ranges beyond loopback (private, link-local, metadata, CGNAT…)
are checked at the level of the address checker in tests/media/test_netguard.py, so no packet ever
leaves this machine even if the guard were broken. The stack allowlists only 127.0.0.3,
where a redirector plays an allowed host; everything else on loopback is off limits.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from app.ops.embedded_redis import EmbeddedRedis
from tests.support.listeners import Listener, redirector
from tests.support.paths import FIXTURES
from tests.support.stack import Client, Stack, running_stack

pytestmark = pytest.mark.e2e

FIXTURES = FIXTURES
ALLOWED_HOST = "127.0.0.3"


def _ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def traps() -> Iterator[dict[str, Listener]]:
    """Listeners on refused loopback addresses (and the allowed redirector)."""
    listeners = {"v4": Listener("127.0.0.1"), "v4b": Listener("127.0.0.2"),
                 "allowed": Listener(ALLOWED_HOST, redirector(
                     {"/jfk.flac": (FIXTURES / "jfk.flac").read_bytes()}))}
    if _ipv6_loopback_available():
        listeners["v6"] = Listener("::1")
    for listener in listeners.values():
        listener.__enter__()
    yield listeners
    for listener in listeners.values():
        listener.__exit__()


@pytest.fixture(scope="module")
def guarded_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
                  pipelines_file: Path, traps: dict[str, Listener]) -> Iterator[Stack]:
    """API and worker allowing only 127.0.0.3; rebind.example resolves onto a trap."""
    trap = traps["v4b"]
    connect_to = ",".join([f"rebind.example:80:127.0.0.2:{trap.port}",
                           f"drive.google.com:443:127.0.0.2:{trap.port}",
                           f"drive.usercontent.google.com:443:127.0.0.2:{trap.port}"])
    with running_stack(tmp_path_factory.mktemp("ssrf"), redis_server.url, pipelines_file,
                       allowlist=f"{ALLOWED_HOST}/32",
                       extra_env={"VOXHOOK_FETCH_CONNECT_TO": connect_to}) as instance:
        yield instance


def hostile_urls(traps: dict[str, Listener]) -> list[str]:
    """At least 25 ways to reach a refused loopback listener."""
    p1, p2 = traps["v4"].port, traps["v4b"].port
    allowed = traps["allowed"].url

    def via_redirect(target: str) -> str:
        return allowed(f"/goto?to={quote(target, safe='')}")

    urls = [
        f"http://127.0.0.1:{p1}/a.mp3",                      # loopback
        f"http://localhost:{p1}/a.mp3",                      # its name
        f"http://LOCALHOST.:{p1}/a.mp3",                     # upper case, trailing dot
        f"http://2130706433:{p1}/a.mp3",                     # decimal
        f"http://0177.0.0.1:{p1}/a.mp3",                     # octal
        f"http://017700000001:{p1}/a.mp3",                   # octal, one number
        f"http://0x7f.0.0.1:{p1}/a.mp3",                     # hexadecimal
        f"http://0x7f000001:{p1}/a.mp3",                     # hexadecimal, one number
        f"http://127.1:{p1}/a.mp3",                          # short form
        f"http://0:{p1}/a.mp3",                              # 0 = 0.0.0.0 = this host
        f"http://0.0.0.0:{p1}/a.mp3",                        # unspecified
        f"http://[::ffff:127.0.0.1]:{p1}/a.mp3",             # IPv4-mapped IPv6
        f"http://[0:0:0:0:0:ffff:7f00:1]:{p1}/a.mp3",        # the same, spelled out
        f"http://127.0.0.2:{p2}/a.mp3",                      # elsewhere in 127/8
        f"http://2130706434:{p2}/a.mp3",                     # 127.0.0.2 in decimal
        "http://rebind.example/a.mp3",                      # a name resolving to a trap
        f"http://user:secret@127.0.0.1:{p1}/a.mp3",          # userinfo
        f"http://{ALLOWED_HOST}:80@127.0.0.1:{p1}/a.mp3",    # an allowed host as userinfo
        "https://drive.google.com/file/d/abc/view",         # sharing link onto a trap
        via_redirect(f"http://127.0.0.1:{p1}/a.mp3"),        # allowed host -> loopback
        via_redirect(f"http://localhost:{p1}/a.mp3"),
        via_redirect(f"http://2130706434:{p2}/a.mp3"),
        via_redirect(f"http://0x7f.1:{p1}/a.mp3"),
        via_redirect("http://rebind.example/a.mp3"),
        via_redirect(via_redirect(f"http://127.0.0.2:{p2}/a.mp3")),  # two hops, then inward
        via_redirect("file:///etc/passwd"),                  # redirect to another scheme
        f"ftp://127.0.0.1:{p1}/a.mp3",                       # scheme
        "file:///etc/passwd",
        f"gopher://127.0.0.1:{p1}/_GET",
    ]
    if "v6" in traps:
        p6 = traps["v6"].port
        urls += [f"http://[::1]:{p6}/a.mp3", f"http://[::]:{p6}/a.mp3",
                 f"http://[0:0:0:0:0:0:0:1]:{p6}/a.mp3",
                 via_redirect(f"http://[::1]:{p6}/a.mp3")]
    return urls


def test_hostile_urls_are_refused_and_never_connected(guarded_stack: Stack,
                                                      traps: dict[str, Listener]) -> None:
    """Each hostile URL is refused with a clear error, at creation (422 naming url) or by
    the worker (failed, url_refused, the address and its range named), and no listener on a
    refused address ever accepts a connection. A good file through the allowed host still
    completes afterwards, so the refusals are the guard's, not a dead worker's."""
    client = Client(guarded_stack.base_url, guarded_stack.create_key())
    urls = hostile_urls(traps)
    assert len(urls) >= 25
    queued: dict[str, str] = {}
    for url in urls:
        response = client.post("/api/v1/transcriptions",
                               json={"source": "external_url", "url": url})
        if response.status_code == 422:
            error = response.json()["error"]
            assert "url" in error["fields"], (url, error)
            continue
        assert response.status_code == 201, (url, response.text)
        queued[url] = response.json()["id"]
    assert len(queued) >= 25
    for url, transcription_id in queued.items():
        body = client.wait_final(f"/api/v1/transcriptions/{transcription_id}", timeout_s=60)
        assert body["status"] == "failed", (url, body)
        assert body["error"]["code"] == "url_refused", (url, body["error"])
        message = body["error"]["message"]
        assert "refused" in message or "Only http and https" in message, (url, message)
    for name, listener in traps.items():
        if name != "allowed":
            assert listener.connections == 0, f"the {name} trap was reached"
    good = client.post("/api/v1/transcriptions", json={
        "source": "external_url", "url": traps["allowed"].url("/jfk.flac")})
    body = client.wait_final(f"/api/v1/transcriptions/{good.json()['id']}", timeout_s=120)
    assert body["status"] == "completed", body
    assert traps["allowed"].connections > 0
