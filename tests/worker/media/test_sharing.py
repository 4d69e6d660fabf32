"""Sharing links become direct downloads; Drive's warning page yields its download anyway link.

The tables spell every expected URL out literally (OneDrive's too: the base64 of each sharing
URL was worked out once, by hand, from Microsoft's "encoding sharing URLs" recipe), so that a
change in any rewrite shows up here. The last tests run the rewritten links against the
loopback sharing hosts, which answer as the real ones do.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sharing_hosts import SharingHosts
from worker.media.sharing import DirectLink, confirmation_url, direct_download_url, web_page_advice

DRIVE_ID = "1aB2cD3eF4gH5iJ6kL7mN8oP9qR0sT_-u"
DRIVE_DIRECT = f"https://drive.usercontent.google.com/download?id={DRIVE_ID}&export=download"

GOOGLE_DRIVE = [
    (f"https://drive.google.com/file/d/{DRIVE_ID}/view?usp=sharing", DRIVE_DIRECT),
    (f"https://drive.google.com/file/d/{DRIVE_ID}/view?usp=drive_link", DRIVE_DIRECT),
    (f"https://drive.google.com/file/d/{DRIVE_ID}/edit", DRIVE_DIRECT),
    (f"https://drive.google.com/file/d/{DRIVE_ID}/preview", DRIVE_DIRECT),
    (f"https://drive.google.com/file/d/{DRIVE_ID}", DRIVE_DIRECT),
    (f"https://drive.google.com/file/d/{DRIVE_ID}/", DRIVE_DIRECT),
    (f"https://drive.google.com/file/u/1/d/{DRIVE_ID}/view", DRIVE_DIRECT),
    (f"https://drive.google.com/a/example.org/file/d/{DRIVE_ID}/view", DRIVE_DIRECT),
    (f"https://drive.google.com/open?id={DRIVE_ID}", DRIVE_DIRECT),
    (f"https://drive.google.com/uc?id={DRIVE_ID}&export=download", DRIVE_DIRECT),
    (f"https://drive.google.com/uc?export=download&id={DRIVE_ID}&confirm=t", DRIVE_DIRECT),
    (f"https://drive.google.com/u/0/uc?id={DRIVE_ID}&export=download", DRIVE_DIRECT),
    (f"https://docs.google.com/uc?export=download&id={DRIVE_ID}", DRIVE_DIRECT),
    (f"https://docs.google.com/file/d/{DRIVE_ID}/edit", DRIVE_DIRECT),
    (f"http://drive.google.com/file/d/{DRIVE_ID}/view", DRIVE_DIRECT),
    (f"https://DRIVE.Google.COM/file/d/{DRIVE_ID}/view", DRIVE_DIRECT),
    (f"https://drive.google.com/file/d/{DRIVE_ID}/view?usp=sharing&resourcekey=0-AbC_d-9xYz",
     f"{DRIVE_DIRECT}&resourcekey=0-AbC_d-9xYz"),
    (f"https://drive.google.com/open?id={DRIVE_ID}&resourcekey=0-AbC_d-9xYz",
     f"{DRIVE_DIRECT}&resourcekey=0-AbC_d-9xYz"),
    # direct already
    (f"https://drive.usercontent.google.com/download?id={DRIVE_ID}&export=download&confirm=t",
     f"https://drive.usercontent.google.com/download?id={DRIVE_ID}&export=download&confirm=t"),
    # no media: kept, for Drive's advice when they turn out to be web pages
    ("https://docs.google.com/document/d/1xYz/edit?usp=sharing",
     "https://docs.google.com/document/d/1xYz/edit?usp=sharing"),
    ("https://drive.google.com/drive/folders/1FoLdEr?usp=sharing",
     "https://drive.google.com/drive/folders/1FoLdEr?usp=sharing"),
    ("http://docs.google.com/spreadsheets/d/1xYz/edit",
     "https://docs.google.com/spreadsheets/d/1xYz/edit"),
]

DROPBOX = [
    ("https://www.dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?dl=0",
     "https://www.dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?dl=1"),
    ("https://www.dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3",
     "https://www.dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?dl=1"),
    ("https://dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?dl=0",
     "https://dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?dl=1"),
    ("http://www.dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?dl=0",
     "https://www.dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?dl=1"),
    ("https://www.dropbox.com/scl/fi/k3j4h5g6f7d8s9a0q1w2e/Board%20call.m4a?rlkey=zx9c8v7b6n5m"
     "&dl=0",
     "https://www.dropbox.com/scl/fi/k3j4h5g6f7d8s9a0q1w2e/Board%20call.m4a?rlkey=zx9c8v7b6n5m"
     "&dl=1"),
    ("https://www.dropbox.com/scl/fi/k3j4h5g6/talk.mp3?rlkey=zx9c8v7b6n5m&st=q1w2e3r4&dl=0",
     "https://www.dropbox.com/scl/fi/k3j4h5g6/talk.mp3?rlkey=zx9c8v7b6n5m&st=q1w2e3r4&dl=1"),
    ("https://www.dropbox.com/scl/fi/k3j4h5g6/talk.mp3?dl=0&rlkey=zx9c8v7b6n5m&e=1",
     "https://www.dropbox.com/scl/fi/k3j4h5g6/talk.mp3?dl=1&rlkey=zx9c8v7b6n5m&e=1"),
    ("https://www.dropbox.com/scl/fi/k3j4h5g6/talk.mp3?rlkey=zx9c8v7b6n5m",
     "https://www.dropbox.com/scl/fi/k3j4h5g6/talk.mp3?rlkey=zx9c8v7b6n5m&dl=1"),
    ("https://www.dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?dl=0&e=2&dl=0",
     "https://www.dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?dl=1&e=2"),
    ("https://www.dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?raw=1",
     "https://www.dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?raw=1"),
    ("https://dl.dropboxusercontent.com/s/a1b2c3d4e5f6g7h/talk.mp3",
     "https://dl.dropboxusercontent.com/s/a1b2c3d4e5f6g7h/talk.mp3"),
]

ONEDRIVE = [
    ("https://1drv.ms/u/s!AkD3bA2sQ9xTgQ",
     "https://api.onedrive.com/v1.0/shares/u!aHR0cHM6Ly8xZHJ2Lm1zL3UvcyFBa0QzYkEyc1E5eFRnUQ"
     "/root/content"),
    ("http://1drv.ms/u/s!AkD3bA2sQ9xTgQ",
     "https://api.onedrive.com/v1.0/shares/u!aHR0cHM6Ly8xZHJ2Lm1zL3UvcyFBa0QzYkEyc1E5eFRnUQ"
     "/root/content"),
    # base64's "+" becomes "-"
    ("https://1drv.ms/u/s!AkD3bA2sQ9xTgQ?e=z~1",
     "https://api.onedrive.com/v1.0/shares/u!aHR0cHM6Ly8xZHJ2Lm1zL3UvcyFBa0QzYkEyc1E5eFRnUT9l"
     "PXp-MQ/root/content"),
    ("https://1drv.ms/u/c/8a1e8d7e6c1c2b3a/EVx4qz1nH2BJkq0uLp3dQ",
     "https://api.onedrive.com/v1.0/shares/u!aHR0cHM6Ly8xZHJ2Lm1zL3UvYy84YTFlOGQ3ZTZjMWMyYjNh"
     "L0VWeDRxejFuSDJCSmtxMHVMcDNkUQ/root/content"),
    # base64's "/" becomes "_"
    ("https://onedrive.live.com/?cid=8A1E8D7E6C1C2B3A&id=8A1E8D7E6C1C2B3A%21107&authkey=!AHq3",
     "https://api.onedrive.com/v1.0/shares/u!aHR0cHM6Ly9vbmVkcml2ZS5saXZlLmNvbS8_Y2lkPThBMUU4"
     "RDdFNkMxQzJCM0EmaWQ9OEExRThEN0U2QzFDMkIzQSUyMTEwNyZhdXRoa2V5PSFBSHEz/root/content"),
    ("https://onedrive.live.com/view.aspx?resid=8A1E8D7E6C1C2B3A!107&authkey=!AHq3",
     "https://api.onedrive.com/v1.0/shares/u!aHR0cHM6Ly9vbmVkcml2ZS5saXZlLmNvbS92aWV3LmFzcHg_"
     "cmVzaWQ9OEExRThEN0U2QzFDMkIzQSExMDcmYXV0aGtleT0hQUhxMw/root/content"),
    ("https://onedrive.live.com/redir?resid=8A1E8D7E6C1C2B3A!107&authkey=!AHq3&ithint=file",
     "https://onedrive.live.com/download?resid=8A1E8D7E6C1C2B3A!107&authkey=!AHq3&ithint=file"),
    ("https://onedrive.live.com/embed?cid=8A1E8D7E6C1C2B3A&resid=8A1E8D7E6C1C2B3A%21107",
     "https://onedrive.live.com/download?cid=8A1E8D7E6C1C2B3A&resid=8A1E8D7E6C1C2B3A%21107"),
    ("https://onedrive.live.com/download?resid=8A1E8D7E6C1C2B3A!107&authkey=!AHq3",
     "https://onedrive.live.com/download?resid=8A1E8D7E6C1C2B3A!107&authkey=!AHq3"),
    ("https://api.onedrive.com/v1.0/shares/u!aHR0cHM6Ly8xZHJ2/root/content",
     "https://api.onedrive.com/v1.0/shares/u!aHR0cHM6Ly8xZHJ2/root/content"),
]

SHAREPOINT = [
    ("https://contoso-my.sharepoint.com/:u:/g/personal/adele_contoso_com/EVx4qz1nH2BJ?e=a1B2c3",
     "https://contoso-my.sharepoint.com/:u:/g/personal/adele_contoso_com/EVx4qz1nH2BJ"
     "?e=a1B2c3&download=1"),
    ("https://contoso.sharepoint.com/:v:/s/Marketing/EVx4qz1nH2BJ",
     "https://contoso.sharepoint.com/:v:/s/Marketing/EVx4qz1nH2BJ?download=1"),
    ("https://contoso.sharepoint.com/:v:/s/Marketing/EVx4qz1nH2BJ?e=Zz9&download=0&nav=x",
     "https://contoso.sharepoint.com/:v:/s/Marketing/EVx4qz1nH2BJ?e=Zz9&download=1&nav=x"),
    ("http://Contoso.SharePoint.com/:U:/r/sites/Marketing/EVx4qz1nH2BJ",
     "https://contoso.sharepoint.com/:U:/r/sites/Marketing/EVx4qz1nH2BJ?download=1"),
    ("https://contoso-my.sharepoint.com/personal/adele_contoso_com/_layouts/15/download.aspx"
     "?share=EVx4qz1nH2BJ",
     "https://contoso-my.sharepoint.com/personal/adele_contoso_com/_layouts/15/download.aspx"
     "?share=EVx4qz1nH2BJ"),
]


@pytest.mark.parametrize(
    ("provider", "url", "direct"),
    [("google_drive", *row) for row in GOOGLE_DRIVE] + [("dropbox", *row) for row in DROPBOX]
    + [("onedrive", *row) for row in ONEDRIVE] + [("sharepoint", *row) for row in SHAREPOINT])
def test_sharing_links_become_direct_downloads(provider: str, url: str, direct: str) -> None:
    assert direct_download_url(url) == DirectLink(direct, provider)


@pytest.mark.parametrize("url", [
    "https://dropbox.com.evil.example/s/a1b2c3d4e5f6g7h/talk.mp3?dl=0",
    "https://evildropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?dl=0",
    "https://www.dropbox.co/s/a1b2c3d4e5f6g7h/talk.mp3?dl=0",
    f"https://drive.google.com.example.net/file/d/{DRIVE_ID}/view",
    f"https://notdrive.google.com/file/d/{DRIVE_ID}/view",
    f"https://example.com/drive.google.com/file/d/{DRIVE_ID}/view",
    "https://1drv.ms.evil.example/u/s!AkD3bA2sQ9xTgQ",
    "https://contoso.sharepoint.com.evil.example/:u:/g/personal/a/EVx4qz1nH2BJ",
    "https://sharepoint-com.example/:u:/g/personal/a/EVx4qz1nH2BJ",
    "https://example.com/a.mp3?host=www.dropbox.com",
    "http://example.com/talk.mp3",
    "ftp://www.dropbox.com/s/a1b2c3d4e5f6g7h/talk.mp3?dl=0",
    "https://www.dropbox.com:notaport/s/a1b2c3d4e5f6g7h/talk.mp3",
    "not a url",
])
def test_other_urls_are_left_alone(url: str) -> None:
    assert direct_download_url(url) == DirectLink(url, None)


# -- Drive's virus-scan warning --------------------------------------------------------------

WARNING_PAGE_FORM = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>
<meta http-equiv="content-type" content="text/html; charset=utf-8"/></head><body>
<div class="uc-main"><div id="uc-text">
<p class="uc-warning-caption">Google Drive can't scan this file for viruses.</p>
<p class="uc-warning-subcaption"><span class="uc-name-size"><a href="/open?id=1Lg">all-hands
.mp4</a> (1.2G)</span> is too large for Google to scan for viruses. Would you still like to
download this file?</p>
<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">
<input type="submit" id="uc-download-link" class="jfk-button jfk-button-action"
 value="Download anyway"/>
<input type="hidden" name="id" value="1Lg_-X">
<input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t">
<input type="hidden" name="uuid" value="5f0c2b1e-8d7a-4c3b-9e2f-1a2b3c4d5e6f">
<input type="hidden" name="at" value="APZUnTX&amp;q:17/+">
<input type="text" name="comment" value="not hidden, not sent">
</form></div></div><div class="uc-footer"><hr class="uc-footer-divider"></div></body></html>
"""

WARNING_PAGE_LINK = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning
</title></head><body><div class="uc-main"><div id="uc-text">
<p class="uc-warning-caption">Google Drive can't scan this file for viruses.</p>
<p class="uc-warning-subcaption"><span class="uc-name-size"><a href="/open?id=1Lg">lecture.mkv
</a> (310M)</span> is too large for Google to scan for viruses.</p>
<a id="uc-download-link" class="goog-inline-block jfk-button jfk-button-action"
 href="/uc?export=download&amp;confirm=Xq7b&amp;id=1Lg_-X">Download anyway</a>
</div></div></body></html>
"""

SIGN_IN_PAGE = """<!DOCTYPE html><html><head><title>Google Drive: Sign-in</title></head><body>
<div id="initialView"><h1>Sign in</h1><p>to continue to Google Drive</p>
<form id="gaia_loginform" action="https://accounts.google.com/signin/v2/challenge" method="post">
<input type="hidden" name="continue" value="https://drive.google.com/file/d/1Lg/view">
<input type="hidden" name="id" value="1Lg">
<input type="email" name="identifier"><input type="password" name="Passwd">
<a id="forgot-link" href="/signin/recovery">Forgot email?</a>
</form></div></body></html>
"""

ORDINARY_PAGE = """<!DOCTYPE html><html><head><title>Podcast episode 12</title></head><body>
<h1>Episode 12</h1><audio controls src="/media/episode-12.mp3"></audio>
<form action="/search" method="get"><input type="hidden" name="id" value="12">
<input name="q"></form><a href="/media/episode-12.mp3">Download</a></body></html>
"""

PAGE_URL = "https://drive.usercontent.google.com/download?id=1Lg_-X&export=download"


def test_confirmation_from_the_current_form_sends_every_hidden_input_in_order() -> None:
    assert confirmation_url(WARNING_PAGE_FORM, PAGE_URL) == (
        "https://drive.usercontent.google.com/download?id=1Lg_-X&export=download&confirm=t"
        "&uuid=5f0c2b1e-8d7a-4c3b-9e2f-1a2b3c4d5e6f&at=APZUnTX%26q%3A17%2F%2B")


def test_confirmation_form_with_a_relative_action_resolves_against_the_page() -> None:
    page = WARNING_PAGE_FORM.replace('action="https://drive.usercontent.google.com/download"',
                                     'action="/download?ignored=1"')
    url = confirmation_url(page, "https://drive.usercontent.google.com/download?id=1Lg_-X")
    assert url is not None
    assert url.startswith("https://drive.usercontent.google.com/download?id=1Lg_-X&export=")


def test_confirmation_from_the_older_link_is_absolute_with_entities_decoded() -> None:
    assert confirmation_url(WARNING_PAGE_LINK, "https://drive.google.com/uc?id=1Lg_-X") == (
        "https://drive.google.com/uc?export=download&confirm=Xq7b&id=1Lg_-X")


@pytest.mark.parametrize("page", [SIGN_IN_PAGE, ORDINARY_PAGE, "", "<html><body>",
                                  "not html at all <<<>>> &&"])
def test_pages_that_are_no_warning_give_no_confirmation(page: str) -> None:
    assert confirmation_url(page, PAGE_URL) is None


def test_a_warning_form_that_posts_or_links_to_javascript_gives_no_confirmation() -> None:
    posting = WARNING_PAGE_FORM.replace('method="get"', 'method="post"')
    scripted = WARNING_PAGE_LINK.replace('href="/uc?', 'href="javascript:alert(1)//?')
    assert confirmation_url(posting, PAGE_URL) is None
    assert confirmation_url(scripted, PAGE_URL) is None


# -- advice ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("provider", "name", "way_out"), [
    ("google_drive", "Google Drive", "Anyone with the link"),
    ("dropbox", "Dropbox", "anyone with the link"),
    ("onedrive", "OneDrive", "Anyone with the link"),
    ("sharepoint", "SharePoint", "Anyone with the link"),
])
def test_web_page_advice_names_the_provider_and_the_way_out(provider: str, name: str,
                                                            way_out: str) -> None:
    advice = web_page_advice(provider)
    assert advice.startswith(f"The {name} link leads to a web page, not to the file")
    assert way_out in advice
    assert "POST /api/v1/uploads" in advice


@pytest.mark.parametrize("provider", [None, "somewhere_else"])
def test_web_page_advice_for_any_other_url_is_generic(provider: str | None) -> None:
    advice = web_page_advice(provider)
    assert advice.startswith("The URL leads to a web page, not to an audio or video file")
    assert "make it public" in advice and "POST /api/v1/uploads" in advice
    for name in ("Google", "Dropbox", "OneDrive", "SharePoint"):
        assert name not in advice


# -- against the loopback sharing hosts ------------------------------------------------------

TALK = b"ID3\x04\x00talk" + bytes(range(256))
LECTURE = b"\x1aE\xdf\xa3lecture" * 1000


@pytest.fixture(scope="module")
def hosts() -> Iterator[SharingHosts]:
    with SharingHosts({"talk.mp3": TALK, "lecture.mkv": LECTURE, "old.mp3": TALK},
                      large={"lecture.mkv"}, private={"secret.mp3"}, deleted={"gone.mp3"},
                      resource_keyed={"old.mp3"}) as sharing_hosts:
        yield sharing_hosts


SHARE_LINKS = ["drive_view_url", "drive_open_url", "drive_uc_url", "dropbox_url", "scl_url",
               "onedrive_short_url", "onedrive_redir_url", "sharepoint_url",
               "sharepoint_site_url"]


@pytest.mark.parametrize("link", SHARE_LINKS)
@pytest.mark.parametrize("name", ["talk.mp3", "old.mp3"])
def test_rewritten_links_download_the_file(hosts: SharingHosts, link: str, name: str) -> None:
    shared = getattr(hosts, link)(name)
    if link != "drive_uc_url":  # the one form that downloads already
        assert hosts.follow(shared)[-1].content_type.startswith("text/html")
    final = hosts.follow(direct_download_url(shared).url)[-1]
    assert (final.status, final.body) == (200, TALK)


def test_large_drive_files_download_after_the_confirmation(hosts: SharingHosts) -> None:
    direct = direct_download_url(hosts.drive_view_url("lecture.mkv")).url
    warning = hosts.follow(direct)[-1]
    assert warning.content_type.startswith("text/html")
    confirmed = confirmation_url(warning.body.decode(), warning.url)
    assert confirmed is not None
    final = hosts.follow(confirmed)[-1]
    assert (final.status, final.body) == (200, LECTURE)


@pytest.mark.parametrize("link", SHARE_LINKS)
@pytest.mark.parametrize("name", ["secret.mp3", "gone.mp3"])
def test_private_and_deleted_files_end_on_web_pages(hosts: SharingHosts, link: str,
                                                     name: str) -> None:
    shared = getattr(hosts, link)(name)
    link_ = direct_download_url(shared)
    final = hosts.follow(link_.url)[-1]
    assert final.status in (200, 404)
    assert final.content_type.startswith(("text/html", "application/json"))
    assert confirmation_url(final.body.decode(), final.url) is None
    assert link_.provider is not None
    assert web_page_advice(link_.provider) != web_page_advice(None)
