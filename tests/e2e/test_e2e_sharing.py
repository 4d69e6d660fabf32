"""Sharing links end to end: the production fetcher and the whole service against loopback
HTTPS servers that play Google Drive, Dropbox, OneDrive and SharePoint.

The fetcher reaches them through the production resolver: ``VOXHOOK_FETCH_CONNECT_TO`` maps
each real host name (port 443) onto the local server, TLS is verified against the test CA
(``VOXHOOK_FETCH_CA_BUNDLE``) with the real name as SNI, and the mapped address is checked by
the SSRF guard like any other (127.0.0.1 is allowlisted). Nothing leaves the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.media.netguard import Allowlist, Resolver, parse_connect_to
from app.ops.embedded_redis import EmbeddedRedis
from tests.support.paths import FIXTURES
from tests.support.sharing_hosts import SharingHosts
from tests.support.stack import Client, Stack, running_stack
from worker.errors import FetchError, HttpStatusError, WebPageNotMedia
from worker.media.fetch import FetchPolicy, download

FIXTURES = FIXTURES
FLAC = (FIXTURES / "jfk.flac").read_bytes()
WAV = (FIXTURES / "sample.wav").read_bytes()


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharingHosts]:
    folder = tmp_path_factory.mktemp("sharing-hosts")
    with SharingHosts({"talk": FLAC, "meeting": WAV}, large={"meeting"},
                      private={"secret"}, deleted={"gone"}, resource_keyed={"talk"},
                      directory=folder) as served:
        yield served


@pytest.fixture(scope="module")
def fetch_policy(hosts: SharingHosts) -> FetchPolicy:
    return FetchPolicy(resolver=Resolver(Allowlist.parse(["127.0.0.1"]),
                                         parse_connect_to(hosts.connect_to)),
                       ca_bundle=hosts.ca_bundle)


PROVIDERS = {"drive": "google_drive", "dropbox": "dropbox", "onedrive": "onedrive",
             "sharepoint": "sharepoint"}
LINKS: dict[str, Callable[[SharingHosts, str], str]] = {
    "drive /file/d/ID/view": lambda h, n: h.drive_view_url(n),
    "drive /file/d/ID/edit": lambda h, n: h.drive_view_url(n, "/edit"),
    "drive open?id=": lambda h, n: h.drive_open_url(n),
    "drive uc?id=": lambda h, n: h.drive_uc_url(n),
    "dropbox /s/ dl=0": lambda h, n: h.dropbox_url(n),
    "dropbox /scl/fi/ dl=0": lambda h, n: h.scl_url(n),
    "onedrive 1drv.ms": lambda h, n: h.onedrive_short_url(n),
    "onedrive redir": lambda h, n: h.onedrive_redir_url(n),
    "sharepoint personal": lambda h, n: h.sharepoint_url(n),
    "sharepoint site": lambda h, n: h.sharepoint_site_url(n),
}


@pytest.mark.parametrize("form", sorted(LINKS))
def test_each_sharing_form_downloads_the_file(form: str, hosts: SharingHosts,
                                              fetch_policy: FetchPolicy,
                                              tmp_path: Path) -> None:
    """Every form is rewritten, its redirect chain followed host to host, and the bytes
    arrive whole; the provider is recorded."""
    link = LINKS[form](hosts, "talk")
    fetched = download(link, tmp_path / "source", fetch_policy)
    assert fetched.path.read_bytes() == FLAC
    assert fetched.provider == PROVIDERS[form.split()[0]]


def test_large_drive_file_passes_the_confirmation_page(hosts: SharingHosts,
                                                       fetch_policy: FetchPolicy,
                                                       tmp_path: Path) -> None:
    """Drive answers a large file with its virus-scan page; the fetcher submits its form
    once and gets the file."""
    before = len(hosts.requests)
    fetched = download(hosts.drive_view_url("meeting"), tmp_path / "source", fetch_policy)
    assert fetched.path.read_bytes() == WAV
    seen = [target for _host, target in hosts.requests[before:]]
    assert any("confirm=t" in target for target in seen), seen


@pytest.mark.parametrize("form", ["drive /file/d/ID/view", "dropbox /s/ dl=0",
                                  "onedrive 1drv.ms", "sharepoint personal"])
def test_private_file_fails_with_the_providers_advice(form: str, hosts: SharingHosts,
                                                      fetch_policy: FetchPolicy,
                                                      tmp_path: Path) -> None:
    """A sign-in wall is a web page, not media: the error names the provider and says to
    share the file publicly or upload it; nothing is left on disk."""
    with pytest.raises(FetchError) as caught:
        download(LINKS[form](hosts, "secret"), tmp_path / "source", fetch_policy)
    assert isinstance(caught.value, (WebPageNotMedia, HttpStatusError))
    message = caught.value.message
    provider = {"drive": "Google Drive", "dropbox": "Dropbox", "onedrive": "OneDrive",
                "sharepoint": "SharePoint"}[form.split()[0]]
    assert provider in message and "upload" in message, message
    assert not (tmp_path / "source").exists()


def test_deleted_drive_file_fails_with_advice(hosts: SharingHosts, fetch_policy: FetchPolicy,
                                              tmp_path: Path) -> None:
    """A deleted Drive file answers 404: the error says so and what to do."""
    with pytest.raises(HttpStatusError) as caught:
        download(hosts.drive_view_url("gone"), tmp_path / "source", fetch_policy)
    assert caught.value.status == 404
    assert "Google Drive" in caught.value.message


def test_untrusted_certificate_is_refused(hosts: SharingHosts, tmp_path: Path) -> None:
    """Without the test CA the played hosts' certificates do not verify: a clear TLS error,
    never a silent download."""
    policy = FetchPolicy(resolver=Resolver(Allowlist.parse(["127.0.0.1"]),
                                           parse_connect_to(hosts.connect_to)))
    with pytest.raises(FetchError, match="certificate"):
        download(hosts.drive_view_url("talk"), tmp_path / "source", policy)


# --------------------------------------------------------------------------- the service


@pytest.fixture(scope="module")
def sharing_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
                  pipelines_file: Path, hosts: SharingHosts) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("sharing-stack"), redis_server.url,
                       pipelines_file,
                       extra_env={"VOXHOOK_FETCH_CONNECT_TO": ",".join(hosts.connect_to),
                                  "VOXHOOK_FETCH_CA_BUNDLE": str(hosts.ca_bundle)}) as instance:
        yield instance


@pytest.mark.e2e
def test_service_transcribes_sharing_links_and_explains_private_ones(
        sharing_stack: Stack, hosts: SharingHosts) -> None:
    """Through the API and worker: Drive (large, with its confirmation page), Dropbox and
    OneDrive links complete with the file's real duration; a private Drive file fails with
    link_is_web_page and the advice; a deleted one with url_http_error."""
    client = Client(sharing_stack.base_url, sharing_stack.create_key())
    jobs = {
        "drive_large": hosts.drive_view_url("meeting"),
        "dropbox": hosts.dropbox_url("talk"),
        "onedrive": hosts.onedrive_short_url("talk"),
        "private": hosts.drive_view_url("secret"),
        "deleted": hosts.drive_open_url("gone"),
    }
    ids = {}
    for name, url in jobs.items():
        response = client.post("/transcribe", json={"url": url})
        assert response.status_code == 200, response.text
        ids[name] = response.json()["id"]
    results = {name: client.wait_final(f"/transcribe/{tid}") for name, tid in ids.items()}
    for name in ("drive_large", "dropbox", "onedrive"):
        assert results[name]["status"] == "completed", results[name]
    assert results["drive_large"]["audio_duration_seconds"] > 20  # sample.wav, 30 s
    assert 10 < results["dropbox"]["audio_duration_seconds"] < 12  # jfk.flac, 11 s
    assert results["private"]["error_code"] == "link_is_web_page"
    assert "Anyone with the link" in results["private"]["error"]
    assert results["deleted"]["error_code"] == "url_http_error"
