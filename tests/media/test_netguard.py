"""The SSRF guard (``app.media.netguard``) and the fetcher built on it (``worker.media.fetch``).

The address checks are pure; the odd spellings resolve locally (numeric forms and
/etc/hosts), and the fetcher talks only to loopback servers. No outside network is used.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from app.config import FetchLimits
from app.media.netguard import (
    AddressRefused,
    Allowlist,
    Resolver,
    check_address,
    parse_connect_to,
    refusal_reason,
    resolve_checked,
)
from app.ops.embedded_redis import free_port
from tests.support.listeners import Listener, cut_short, respond, trickle_body, trickle_headers
from tests.support.media_server import MediaServer
from tests.support.paths import FIXTURES
from worker.errors import (
    DownloadIncomplete,
    DownloadTimeout,
    DownloadTooLarge,
    FetchError,
    HttpStatusError,
    UrlRefused,
    WebPageNotMedia,
)
from worker.media.fetch import USER_AGENT, FetchPolicy, abort_exchange_of, download

FIXTURES = FIXTURES
LOOPBACK = Allowlist.parse(["127.0.0.1"])
NOTHING = Allowlist()


def policy(allowlist: Allowlist = LOOPBACK, limits: FetchLimits | None = None) -> FetchPolicy:
    """A fetch policy with ``allowlist`` and ``limits`` (default limits otherwise)."""
    return FetchPolicy(limits=limits or FetchLimits(), resolver=Resolver(allowlist))

REFUSED = {
    "127.0.0.1": "loopback", "127.255.255.254": "loopback", "::1": "loopback",
    "10.0.0.1": "private", "10.255.255.255": "private", "172.16.0.1": "private",
    "172.31.255.254": "private", "192.168.1.1": "private", "fc00::1": "private",
    "fd12:3456::1": "private",
    "169.254.169.254": "link-local", "169.254.0.1": "link-local", "fe80::1": "link-local",
    "100.64.0.1": "not globally routable", "100.127.255.254": "not globally routable",
    "224.0.0.1": "multicast", "239.255.255.250": "multicast", "ff02::1": "multicast",
    "240.0.0.1": "", "255.255.255.255": "",
    "0.0.0.0": "unspecified", "::": "unspecified",
    "::ffff:127.0.0.1": "loopback", "::ffff:169.254.169.254": "link-local",
    "::ffff:10.1.2.3": "private", "::ffff:0.0.0.0": "unspecified",
}
ALLOWED = ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111",
           "2001:4860:4860::8888", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(("text", "reason"), sorted(REFUSED.items()))
def test_internal_addresses_are_refused(text: str, reason: str) -> None:
    """Loopback, private, link-local, CGNAT, multicast, reserved, unspecified and mapped
    addresses are refused, with the reason in the message."""
    address = ipaddress.ip_address(text)
    found = refusal_reason(address)
    assert found is not None
    assert found.startswith(reason)
    with pytest.raises(AddressRefused) as caught:
        check_address(address, NOTHING)
    assert str(address) in str(caught.value)
    assert "VOXHOOK_FETCH_ALLOWLIST" in str(caught.value)


@pytest.mark.parametrize("text", ALLOWED)
def test_public_addresses_are_allowed(text: str) -> None:
    """Public IPv4 and IPv6 addresses (and a public address mapped into IPv6) pass."""
    address = ipaddress.ip_address(text)
    assert refusal_reason(address) is None
    check_address(address, NOTHING)  # does not raise


def test_allowlist_parse_networks_and_hosts() -> None:
    """Allowlist.parse takes CIDR ranges, single addresses and host names (any case, a
    trailing dot ignored), skipping blanks."""
    allowlist = Allowlist.parse(["10.0.0.0/8", " 192.168.1.7 ", "fd00::/8", "Media.Local.",
                                 "", "  ", "10.1.2.3/8"])
    assert allowlist.hosts == frozenset({"media.local"})
    assert ipaddress.ip_network("10.0.0.0/8") in allowlist.networks
    assert allowlist.allows_host("MEDIA.local") and allowlist.allows_host("media.local.")
    assert not allowlist.allows_host("other.local")
    for inside in ("10.200.0.1", "192.168.1.7", "fd00::5"):
        address = ipaddress.ip_address(inside)
        assert allowlist.allows_address(address)
        check_address(address, allowlist)  # allowlisted: no error
    for outside in ("192.168.1.8", "11.0.0.1", "fe80::1", "127.0.0.1"):
        assert not allowlist.allows_address(ipaddress.ip_address(outside))
    with pytest.raises(AddressRefused):
        check_address(ipaddress.ip_address("192.168.1.8"), allowlist)


#: Spellings the system resolver turns into a loopback or unspecified address.
ODD_SPELLINGS = ["2130706433", "0177.0.0.1", "127.1", "0x7f.0.0.1", "0x7f000001",
                 "017700000001", "localhost", "0", "::1"]


def _resolves_locally(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
        return True
    except socket.gaierror:
        return False


@pytest.mark.parametrize("host", ODD_SPELLINGS)
def test_odd_spellings_of_loopback_are_refused(host: str) -> None:
    """The check runs on what the resolver returns, so numeric tricks are caught; a spelling
    this machine cannot resolve is refused as well."""
    with pytest.raises(AddressRefused):
        resolve_checked(host, 80, NOTHING)


@pytest.mark.parametrize("host", ODD_SPELLINGS)
def test_odd_spellings_are_allowed_when_allowlisted(host: str) -> None:
    """The same hosts pass when the operator allowlists loopback (and 0.0.0.0)."""
    if not _resolves_locally(host):
        pytest.skip(f"{host!r} does not resolve on this machine")
    allowlist = Allowlist.parse(["127.0.0.0/8", "::1", "0.0.0.0/32"])
    addresses = resolve_checked(host, 80, allowlist)
    assert addresses
    assert all(address.is_loopback or address.is_unspecified for address in addresses)


def test_allowlisted_host_name_skips_the_address_check() -> None:
    """An allowlisted host name is trusted whatever it resolves to."""
    addresses = resolve_checked("LocalHost", 80, Allowlist.parse(["localhost"]))
    assert ipaddress.ip_address("127.0.0.1") in addresses


def test_unresolvable_host_is_refused() -> None:
    """A host that does not resolve is refused with its name (.invalid never resolves)."""
    with pytest.raises(AddressRefused, match="could not be resolved"):
        resolve_checked("no-such-host.invalid", 80, NOTHING)


def test_6to4_address_embedding_loopback_is_refused() -> None:
    """BUG (SSRF hardening): a 6to4 address (2002::/16) carries an IPv4 address in bits
    16-48 and is routed to it by a 6to4 relay; ``2002:7f00:1::`` (127.0.0.1) and
    ``2002:a9fe:a9fe::`` (169.254.169.254) pass refusal_reason because only IPv4-mapped
    addresses are unwrapped (Teredo, 2001::/32, is already refused as private). Unwrap
    ``address.sixtofour`` the way ``ipv4_mapped`` is, or refuse 2002::/16 outright."""
    for text in ("2002:7f00:1::1", "2002:a9fe:a9fe::1", "2002:a00:1::1"):
        assert refusal_reason(ipaddress.ip_address(text)) is not None, text


# --- The fetcher -----------------------------------------------------------------------------


def unique(path: str) -> str:
    """``path`` with a query no other test uses, to find this test's requests."""
    return f"{path}?probe={secrets.token_hex(6)}"


def requests_for(server: MediaServer, path: str) -> list[str]:
    return [seen for seen in server.requests if seen == path]


def test_download_from_allowlisted_loopback(media_server: MediaServer, tmp_path: Path) -> None:
    """With 127.0.0.1 allowlisted, the file arrives byte for byte."""
    path = unique("/jfk.flac")
    destination = download(media_server.url(path), tmp_path / "source", policy()).path
    assert destination == tmp_path / "source"
    assert destination.read_bytes() == (FIXTURES / "jfk.flac").read_bytes()
    assert requests_for(media_server, path) == [path]


def test_download_without_allowlist_never_connects(media_server: MediaServer,
                                                   tmp_path: Path) -> None:
    """Without the allowlist, loopback is refused before any request is sent."""
    path = unique("/jfk.flac")
    with pytest.raises(UrlRefused) as caught:
        download(media_server.url(path), tmp_path / "source", policy(NOTHING))
    assert caught.value.code == "url_refused"
    assert "127.0.0.1" in caught.value.message and "loopback" in caught.value.message
    assert requests_for(media_server, path) == []
    assert not (tmp_path / "source").exists()


def test_not_found_is_http_status_error(media_server: MediaServer, tmp_path: Path) -> None:
    """A 404 raises HttpStatusError with status 404 and a message that says so."""
    with pytest.raises(HttpStatusError) as caught:
        download(media_server.url(unique("/missing")), tmp_path / "source", policy())
    assert caught.value.status == 404
    assert "404" in caught.value.message
    assert not (tmp_path / "source").exists()


def test_redirect_is_followed(media_server: MediaServer, tmp_path: Path) -> None:
    """A 302 to another path on the same host is followed to the file."""
    before = len(requests_for(media_server, "/sample.wav"))
    destination = download(media_server.url("/redirect/sample.wav"), tmp_path / "source",
                           policy()).path
    assert destination.read_bytes() == (FIXTURES / "sample.wav").read_bytes()
    assert len(requests_for(media_server, "/sample.wav")) == before + 1


def test_empty_body_gives_an_empty_file(media_server: MediaServer, tmp_path: Path) -> None:
    """An empty 200 downloads to a 0-byte file (the decoder then says EmptyMedia)."""
    destination = download(media_server.url(unique("/empty")), tmp_path / "source",
                           policy()).path
    assert destination.read_bytes() == b""


def test_declared_too_large_is_refused_before_writing(media_server: MediaServer,
                                                      tmp_path: Path) -> None:
    """A Content-Length over the cap raises DownloadTooLarge and creates no file."""
    limits = FetchLimits(max_bytes=100_000)
    with pytest.raises(DownloadTooLarge) as caught:
        download(media_server.url(unique("/jfk.flac")), tmp_path / "source",
                 policy(limits=limits))
    assert caught.value.code == "file_too_large"
    assert not (tmp_path / "source").exists()


def test_non_http_schemes_are_refused(tmp_path: Path) -> None:
    """ftp://, file:// and scheme-less URLs are refused without a connection."""
    for url in ("ftp://127.0.0.1/jfk.flac", "file:///etc/passwd", "gopher://127.0.0.1:70/",
                "//127.0.0.1/jfk.flac", "http:///jfk.flac"):
        with pytest.raises(UrlRefused, match="Only http and https"):
            download(url, tmp_path / "source", policy())
    assert not (tmp_path / "source").exists()


class _TrickHandler(BaseHTTPRequestHandler):
    """Misbehaviours the media server does not have: a body without Content-Length,
    redirects to any Location, and a redirect loop."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.server.seen.append((parts.path, self.headers.get("User-Agent")))  # type: ignore[attr-defined]
        if parts.path == "/stream":
            size = int(parse_qs(parts.query)["bytes"][0])
            self.send_response(200)
            self.end_headers()  # no Content-Length: the body ends when the connection closes
            self.wfile.write(b"\0" * size)
            return
        if parts.path == "/goto":
            self.send_response(302)
            self.send_header("Location", parse_qs(parts.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts.path == "/loop":
            self.send_response(301)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_error(404)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def trick_server() -> Iterator[ThreadingHTTPServer]:
    """An HTTP/1.0 loopback server with _TrickHandler's behaviours."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TrickHandler)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_streamed_body_over_the_cap_stops_at_the_cap(trick_server: ThreadingHTTPServer,
                                                     tmp_path: Path) -> None:
    """Without Content-Length the size is counted while streaming: DownloadTooLarge, and no
    more than the cap ever reaches the disk. (download() leaves the partial file for its
    caller; run_pipeline downloads into a TemporaryDirectory that removes it.)"""
    limits = FetchLimits(max_bytes=300_000)
    destination = tmp_path / "source"
    with pytest.raises(DownloadTooLarge):
        download(_url(trick_server, "/stream?bytes=2000000"), destination, policy(limits=limits))
    if destination.exists():
        assert destination.stat().st_size <= limits.max_bytes


def test_streamed_body_under_the_cap_arrives(trick_server: ThreadingHTTPServer,
                                            tmp_path: Path) -> None:
    """A body without Content-Length under the cap is saved whole, with our User-Agent."""
    destination = download(_url(trick_server, "/stream?bytes=123457"), tmp_path / "source",
                           policy(limits=FetchLimits(max_bytes=300_000))).path
    assert destination.stat().st_size == 123457
    assert ("/stream", USER_AGENT) in trick_server.seen  # type: ignore[attr-defined]


def test_redirect_to_metadata_address_is_refused(trick_server: ThreadingHTTPServer,
                                                 tmp_path: Path) -> None:
    """Each redirect hop is checked: a redirect to the metadata service, to ::1 or to a
    private address spelled in hex is refused (only 127.0.0.1 is allowlisted)."""
    for target in ("http://169.254.169.254/latest/meta-data/", "http://[::1]:9/x",
                   "http://0x0a000001:9/x", "http://[::ffff:169.254.169.254]/"):
        with pytest.raises(UrlRefused):
            download(_url(trick_server, f"/goto?to={target}"), tmp_path / "source", policy())


def test_connection_refused_is_not_reported_as_a_timeout(tmp_path: Path) -> None:
    """BUG: urllib3 2's NewConnectionError subclasses ConnectTimeoutError, so _open's
    ``except urllib3.exceptions.TimeoutError`` turns an instant "connection refused" into
    DownloadTimeout ("did not answer in time", code download_timeout). It must be a plain
    FetchError ("Could not connect to ...", code fetch_failed)."""
    port = free_port()  # nothing listens there: loopback refuses at once
    with pytest.raises(FetchError) as caught:
        download(f"http://127.0.0.1:{port}/jfk.flac", tmp_path / "source", policy())
    assert not isinstance(caught.value, DownloadTimeout), caught.value.message
    assert caught.value.code == "fetch_failed"
    assert "Could not connect to 127.0.0.1" in caught.value.message


def test_redirect_to_non_http_scheme_is_refused(trick_server: ThreadingHTTPServer,
                                                tmp_path: Path) -> None:
    """A redirect to file:// is refused like a file:// URL."""
    with pytest.raises(UrlRefused):
        download(_url(trick_server, "/goto?to=file:///etc/passwd"), tmp_path / "source",
                 policy())


def test_redirect_loop_ends_with_a_fetch_error(trick_server: ThreadingHTTPServer,
                                               tmp_path: Path) -> None:
    """A redirect loop stops after max_redirects + 1 requests with a FetchError."""
    limits = FetchLimits(max_redirects=3)
    with pytest.raises(FetchError, match="More than 3 redirects"):
        download(_url(trick_server, "/loop"), tmp_path / "source", policy(limits=limits))
    loops = [path for path, _agent in trick_server.seen if path == "/loop"]  # type: ignore[attr-defined]
    assert len(loops) == 4


# --- Time, truncation, web pages, and connecting to what was checked -------------------------


def test_slow_loris_body_is_ended_by_the_total_timeout(tmp_path: Path) -> None:
    """A server that sends a body byte every 0.2 s never trips the 1 s read timeout; the
    total timeout (1.5 s) ends it, with the total named in the message."""
    limits = FetchLimits(read_timeout_s=1.0, total_timeout_s=1.5)
    with Listener(behaviour=trickle_body(0.2)) as server:
        started = time.monotonic()
        with pytest.raises(DownloadTimeout, match=r"longer than 1\.5 s"):
            download(server.url("/talk.mp3"), tmp_path / "source", policy(limits=limits))
    assert time.monotonic() - started < 10  # bounded; a read timeout alone never ends it


def test_slow_loris_headers_are_ended_by_the_total_timeout(tmp_path: Path) -> None:
    """A server that never finishes its headers (a header line every 0.2 s) is cut off at the
    total timeout too: the watchdog shuts the socket, whatever phase the read is in."""
    limits = FetchLimits(read_timeout_s=1.0, total_timeout_s=1.5)
    with Listener(behaviour=trickle_headers(0.2)) as server:
        started = time.monotonic()
        with pytest.raises(DownloadTimeout, match=r"longer than 1\.5 s"):
            download(server.url("/talk.mp3"), tmp_path / "source", policy(limits=limits))
    assert time.monotonic() - started < 10


def _closing_then_silent(connection: socket.socket, request: bytes,
                         stop: threading.Event) -> None:
    """Headers that say the connection will close, a little body, then silence."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\n"
                       b"Content-Length: 1000000\r\nConnection: close\r\n\r\n" + b"\0" * 100)
    stop.wait(60)


def test_total_timeout_ends_a_silent_read_on_a_closing_connection(tmp_path: Path) -> None:
    """With ``Connection: close`` http.client hands the socket to the response and forgets
    it; the watchdog still shuts it at the total timeout, not at the (30 s) read timeout."""
    limits = FetchLimits(read_timeout_s=30.0, total_timeout_s=1.0)
    with Listener(behaviour=_closing_then_silent) as server:
        started = time.monotonic()
        with pytest.raises(DownloadTimeout, match=r"longer than 1 s"):
            download(server.url("/talk.mp3"), tmp_path / "source", policy(limits=limits))
    assert time.monotonic() - started < 10


def test_a_stop_wakes_a_download_blocked_in_another_thread(tmp_path: Path) -> None:
    """``abort_exchange_of`` (a stopping worker's way to reach a job thread blocked in a
    read) ends that thread's download now, not at the read timeout."""
    limits = FetchLimits(read_timeout_s=30.0, total_timeout_s=60.0)
    outcome: dict[str, BaseException] = {}

    def job() -> None:
        try:
            download(server.url("/talk.mp3"), tmp_path / "source", policy(limits=limits))
        except BaseException as exc:  # the outcome under test
            outcome["raised"] = exc

    with Listener(behaviour=_closing_then_silent) as server:
        thread = threading.Thread(target=job)
        thread.start()
        deadline = time.monotonic() + 10
        while not abort_exchange_of(thread.ident or 0):  # once its exchange is open
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.01)
        started = time.monotonic()
        thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert isinstance(outcome.get("raised"), FetchError)


def test_silent_server_is_a_read_timeout(tmp_path: Path) -> None:
    """A server that accepts and says nothing is a read timeout, named as such."""
    def mute(connection: socket.socket, request: bytes, stop: threading.Event) -> None:
        stop.wait(5)
    limits = FetchLimits(read_timeout_s=0.5, total_timeout_s=30)
    with Listener(behaviour=mute) as server, pytest.raises(DownloadTimeout) as caught:
        download(server.url("/talk.mp3"), tmp_path / "source", policy(limits=limits))
    assert "silent for more than 0.5 s" in caught.value.message


def test_download_cut_short_is_incomplete(tmp_path: Path) -> None:
    """Fewer bytes than Content-Length declared: download_incomplete, with both counts."""
    with Listener(behaviour=cut_short(declared=50_000, sent=20_000)) as server, \
            pytest.raises(DownloadIncomplete) as caught:
        download(server.url("/talk.flac"), tmp_path / "source", policy())
    assert caught.value.code == "download_incomplete"
    assert "of 50000 bytes" in caught.value.message


@pytest.mark.parametrize("page", [
    b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Log in</body></html>",
    b"\xef\xbb\xbf\n  <html><body>Access denied</body></html>",
    b"<!-- login --><HTML><BODY>x</BODY></HTML>",
])
def test_web_page_is_not_media_whatever_its_content_type(page: bytes, tmp_path: Path) -> None:
    """A body that is an HTML document is refused as a web page even when the server calls it
    audio/mpeg; nothing is left on disk."""
    with Listener(behaviour=respond(page, content_type="audio/mpeg")) as server, \
            pytest.raises(WebPageNotMedia) as caught:
        download(server.url("/talk.mp3"), tmp_path / "source", policy())
    assert caught.value.code == "link_is_web_page"
    assert "web page" in caught.value.message and "upload" in caught.value.message
    assert not (tmp_path / "source").exists()


def test_media_served_as_text_html_is_still_media(tmp_path: Path) -> None:
    """What a file is, is decided by its bytes: FLAC served as text/html downloads."""
    flac = (FIXTURES / "jfk.flac").read_bytes()
    with Listener(behaviour=respond(flac, content_type="text/html")) as server:
        downloaded = download(server.url("/talk"), tmp_path / "source", policy())
    assert downloaded.path.read_bytes() == flac
    assert downloaded.size_bytes == len(flac)


def test_connection_goes_to_the_checked_address_without_a_second_lookup(
        tmp_path: Path) -> None:
    """DNS rebinding: a resolver whose first answer is an allowed address and every later
    answer a refused one. The fetcher resolves once per hop and connects to the first
    answer; the refused listener never sees a connection."""
    flac = (FIXTURES / "jfk.flac").read_bytes()
    with Listener("127.0.0.1", respond(flac)) as allowed, \
            Listener("127.0.0.2", respond(b"secret")) as refused:
        answers = iter(["127.0.0.1"] + ["127.0.0.2"] * 10)
        calls: list[tuple[str, int]] = []

        def rebinding_lookup(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
            calls.append((host, port))
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

        resolver = Resolver(Allowlist.parse(["127.0.0.1"]), lookup=rebinding_lookup)
        fetched = download(f"http://media.example:{allowed.port}/talk.flac",
                           tmp_path / "source", FetchPolicy(resolver=resolver))
        assert fetched.path.read_bytes() == flac
        assert calls == [("media.example", allowed.port)]
        assert allowed.connections == 1 and refused.connections == 0
        # The rebound answer is refused when it is the one given.
        with pytest.raises(UrlRefused, match=r"127\.0\.0\.2 is loopback"):
            download(f"http://media.example:{refused.port}/x", tmp_path / "again",
                     FetchPolicy(resolver=resolver))
        assert refused.connections == 0


def test_connect_to_maps_a_host_onto_a_listener_and_is_still_checked(tmp_path: Path) -> None:
    """VOXHOOK_FETCH_CONNECT_TO sends media.example:80 to a loopback listener; the mapped
    address is checked like any other (refused unless allowlisted)."""
    flac = (FIXTURES / "jfk.flac").read_bytes()
    with Listener("127.0.0.1", respond(flac)) as server:
        entry = f"media.example:80:127.0.0.1:{server.port}"
        allowed = Resolver.from_settings(["127.0.0.1"], [entry])
        fetched = download("http://media.example/talk.flac", tmp_path / "source",
                           FetchPolicy(resolver=allowed))
        assert fetched.path.read_bytes() == flac
        refused = Resolver.from_settings([], [entry])
        with pytest.raises(UrlRefused, match="loopback"):
            download("http://media.example/talk.flac", tmp_path / "again",
                     FetchPolicy(resolver=refused))
        assert server.connections == 1


@pytest.mark.parametrize("entry", ["media.example:80", "media.example:80:127.0.0.1",
                                   "media.example:x:127.0.0.1:80", "a:80:b:99999", ":80::81"])
def test_malformed_connect_to_entries_are_named(entry: str) -> None:
    """A connect-to entry that is not HOST:PORT:ADDRESS:PORT is a configuration error that
    quotes the entry."""
    with pytest.raises(ValueError, match="HOST:PORT:ADDRESS:PORT") as caught:
        parse_connect_to([entry])
    assert entry in str(caught.value)


def test_connect_to_accepts_ipv6_in_brackets() -> None:
    """IPv6 hosts and targets are written in brackets, as in URLs."""
    mapping = parse_connect_to(["[2001:db8::1]:443:[::1]:8443", "Media.Example.:80:10.0.0.1:81"])
    assert mapping == {("2001:db8::1", 443): ("::1", 8443),
                       ("media.example", 80): ("10.0.0.1", 81)}


def test_allowlisted_ipv6_address_is_fetched(tmp_path: Path) -> None:
    """The fetcher connects to IPv6 addresses too (here ::1, allowlisted), with the bracketed
    Host header, and counts as refused without the allowlist."""
    try:
        listener = Listener("::1", respond(FIXTURES.joinpath("jfk.flac").read_bytes()))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with listener:
        fetched = download(listener.url("/talk.flac"), tmp_path / "source",
                           policy(Allowlist.parse(["::1"])))
        assert fetched.size_bytes == FIXTURES.joinpath("jfk.flac").stat().st_size
        with pytest.raises(UrlRefused, match="loopback"):
            download(listener.url("/talk.flac"), tmp_path / "again", policy(NOTHING))
    assert listener.connections == 1
