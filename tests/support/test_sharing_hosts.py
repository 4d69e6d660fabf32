"""The loopback sharing hosts must behave as the real ones do, or tests built on them prove
nothing: TLS valid for every name they play (and no other), the redirect chains, Drive's
confirmation, sign-in walls that answer 200 HTML, 404 pages for deleted files."""

from __future__ import annotations

import base64
import re
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.sharing_hosts import HOSTS, Reply, SharingHosts

TALK = b"ID3\x03talk" * 64
LECTURE = b"\x1aE\xdf\xa3lecture" * 512


@pytest.fixture(scope="module")
def hosts() -> Iterator[SharingHosts]:
    with SharingHosts({"talk.mp3": TALK, "lecture.mkv": LECTURE, "old.mp3": TALK},
                      large={"lecture.mkv"}, private={"secret.mp3"}, deleted={"gone.mp3"},
                      resource_keyed={"old.mp3"}) as sharing_hosts:
        yield sharing_hosts


def _is_file(reply: Reply, body: bytes) -> bool:
    return (reply.status == 200 and reply.body == body
            and reply.content_type == "application/octet-stream"
            and reply.headers.get("content-disposition", "").startswith("attachment;"))


def _is_page(reply: Reply, status: int) -> bool:
    return (reply.status == status and reply.content_type.startswith("text/html")
            and reply.body.lstrip().lower().startswith(b"<!doctype html>"))


def _handshake(hosts: SharingHosts, name: str) -> dict:
    context = ssl.create_default_context(cafile=str(hosts.ca_bundle))
    with socket.create_connection(("127.0.0.1", hosts.port), timeout=5) as sock, \
            context.wrap_socket(sock, server_hostname=name) as tls:
        return tls.getpeercert()


def test_tls_is_valid_for_every_host_played_and_no_other(hosts: SharingHosts) -> None:
    for name in HOSTS:
        names = {value for kind, value in _handshake(hosts, name)["subjectAltName"]}
        assert name in names
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(hosts, "example.com")
    with socket.create_connection(("127.0.0.1", hosts.port), timeout=5) as sock, \
            pytest.raises(ssl.SSLCertVerificationError):  # the system's CAs do not know it
        ssl.create_default_context().wrap_socket(sock, server_hostname="drive.google.com")
    assert hosts.ca_bundle.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert hosts.connect_to == [f"{name}:443:127.0.0.1:{hosts.port}" for name in HOSTS]


def test_requests_are_recorded_by_host(hosts: SharingHosts) -> None:
    hosts.get("https://www.dropbox.com/s/nothing/here.mp3?dl=1")
    assert hosts.requests[-1] == ("www.dropbox.com", "/s/nothing/here.mp3?dl=1")
    with pytest.raises(ValueError, match="not a URL these hosts play"):
        hosts.get("https://example.com/talk.mp3")


def test_large_files_need_contents() -> None:
    with pytest.raises(ValueError, match="lecture"):
        SharingHosts({}, large={"lecture"})


# -- Google Drive -----------------------------------------------------------------------------

def test_drive_serves_small_public_files_and_hands_uc_links_to_usercontent(
        hosts: SharingHosts) -> None:
    assert _is_file(hosts.get(hosts.drive_download_url("talk.mp3")), TALK)
    uc = hosts.get(hosts.drive_uc_url("talk.mp3"))
    assert (uc.status, uc.location) == (303, hosts.drive_download_url("talk.mp3"))
    assert _is_page(hosts.get(hosts.drive_view_url("talk.mp3")), 200)


def test_drive_asks_to_confirm_large_files_with_a_fresh_uuid(hosts: SharingHosts) -> None:
    url = hosts.drive_download_url("lecture.mkv")
    first, second = hosts.get(url), hosts.get(url)
    assert _is_page(first, 200) and b'id="download-form"' in first.body
    uuids = [re.search(rb'name="uuid" value="([^"]+)"', page.body).group(1).decode()
             for page in (first, second)]
    assert uuids[0] != uuids[1]
    assert _is_page(hosts.get(url + "&confirm=t&uuid=not-issued"), 200)
    assert _is_page(hosts.get(url + f"&uuid={uuids[0]}"), 200)  # no confirm=t
    assert _is_file(hosts.get(url + f"&confirm=t&uuid={uuids[0]}"), LECTURE)


def test_drive_sends_private_files_to_a_sign_in_page(hosts: SharingHosts) -> None:
    redirect = hosts.get(hosts.drive_download_url("secret.mp3"))
    assert redirect.status == 302
    assert redirect.location.startswith("https://accounts.google.com/ServiceLogin?")
    assert _is_page(hosts.get(redirect.location), 200)


def test_drive_answers_404_pages_for_deleted_files_and_missing_resource_keys(
        hosts: SharingHosts) -> None:
    assert _is_page(hosts.get(hosts.drive_download_url("gone.mp3")), 404)
    keyed = hosts.drive_download_url("old.mp3")
    assert "&resourcekey=0-" in keyed
    assert _is_page(hosts.get(keyed.split("&resourcekey=")[0]), 404)
    assert _is_file(hosts.get(keyed), TALK)


# -- Dropbox ----------------------------------------------------------------------------------

@pytest.mark.parametrize("link", ["dropbox_url", "scl_url"])
def test_dropbox_redirects_dl_1_to_its_content_host(hosts: SharingHosts, link: str) -> None:
    redirect = hosts.get(getattr(hosts, link)("talk.mp3", dl="1"))
    assert redirect.status == 302
    assert redirect.location.startswith("https://dl.dropboxusercontent.com/")
    assert _is_file(hosts.get(redirect.location), TALK)
    assert _is_page(hosts.get(getattr(hosts, link)("talk.mp3", dl="0")), 200)
    assert _is_page(hosts.get(getattr(hosts, link)("secret.mp3", dl="1")), 200)
    assert _is_page(hosts.get(getattr(hosts, link)("gone.mp3", dl="1")), 404)


def test_dropbox_wants_the_rlkey_and_sends_the_bare_domain_to_www(hosts: SharingHosts) -> None:
    url = hosts.scl_url("talk.mp3", dl="1")
    assert _is_page(hosts.get(url.replace("rlkey=", "rlkey=x")), 404)
    bare = hosts.get(url.replace("www.dropbox.com", "dropbox.com"))
    assert (bare.status, bare.location) == (301, url)


# -- OneDrive ---------------------------------------------------------------------------------

def test_onedrive_short_links_redirect_to_the_viewer(hosts: SharingHosts) -> None:
    short = hosts.get(hosts.onedrive_short_url("talk.mp3"))
    assert (short.status, short.location) == (301, hosts.onedrive_redir_url("talk.mp3"))
    assert _is_page(hosts.get(short.location), 200)
    download = hosts.get(hosts.onedrive_redir_url("talk.mp3", page="download"))
    assert download.status == 302
    assert download.location.startswith("https://public.dm.files.1drv.com/")
    assert _is_file(hosts.get(download.location), TALK)


def _shares_api(url: str) -> str:
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    return f"https://api.onedrive.com/v1.0/shares/u!{encoded}/root/content"


def test_onedrive_shares_api_serves_known_shares_only(hosts: SharingHosts) -> None:
    for shared in (hosts.onedrive_short_url("talk.mp3"), hosts.onedrive_redir_url("talk.mp3")):
        reply = hosts.get(_shares_api(shared))
        assert reply.status == 302
        assert reply.location.startswith("https://public.dm.files.1drv.com/")
        assert _is_file(hosts.get(reply.location), TALK)
    for unknown in (hosts.onedrive_short_url("secret.mp3"), "https://1drv.ms/u/s!Unknown",
                    hosts.onedrive_redir_url("talk.mp3").replace("authkey=", "authkey=x")):
        wall = hosts.get(_shares_api(unknown))
        assert wall.status == 302
        assert wall.location.startswith("https://login.live.com/")
        assert _is_page(hosts.get(wall.location), 200)
    assert hosts.get(_shares_api(hosts.onedrive_short_url("gone.mp3"))).status == 404


# -- SharePoint -------------------------------------------------------------------------------

@pytest.mark.parametrize("link", ["sharepoint_url", "sharepoint_site_url"])
def test_sharepoint_download_1_leads_to_download_aspx(hosts: SharingHosts, link: str) -> None:
    shared = getattr(hosts, link)("talk.mp3")
    redirect = hosts.get(shared + "&download=1")
    assert redirect.status == 302
    path = urlsplit(redirect.location).path
    assert re.fullmatch(r"/(personal|sites)/[^/]+/_layouts/15/download\.aspx", path)
    assert _is_file(hosts.get(f"https://{urlsplit(shared).hostname}{redirect.location}"), TALK)
    viewer = hosts.follow(shared)
    assert viewer[0].status == 302 and _is_page(viewer[-1], 200)


def test_sharepoint_walls_off_private_files_and_404s_deleted_ones(hosts: SharingHosts) -> None:
    wall = hosts.get(hosts.sharepoint_url("secret.mp3") + "&download=1")
    assert wall.status == 302
    assert wall.location.startswith("https://login.microsoftonline.com/")
    assert "redirect_uri" in parse_qs(urlsplit(wall.location).query)
    assert _is_page(hosts.get(wall.location), 200)
    assert _is_page(hosts.get(hosts.sharepoint_url("gone.mp3") + "&download=1"), 404)
