"""Sharing links of cloud drives, turned into URLs that download the file itself.

People paste whatever their drive's "Share" button gave them. Those links open a viewer page,
not the file, so fetching them as they are yields HTML that no decoder can read, and the user
learns only that "the file is not audio". Each provider also serves the same file under a
direct form (documented, or stable for years), which these pure functions compute: no network,
so the fetcher stays the one place that talks to the outside world, and every hop it makes is
still checked by the SSRF guard.

Two things remain for the fetcher: Google Drive answers files too large to be virus-scanned
with a warning page whose form downloads the file anyway (:func:`confirmation_url`), and a link
that still ends on a web page (a private or deleted file, a sign-in wall) deserves advice that
names the provider and the way out (:func:`web_page_advice`).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import SplitResult, unquote_plus, urlencode, urljoin, urlsplit, urlunsplit

GOOGLE_DRIVE = "google_drive"
DROPBOX = "dropbox"
ONEDRIVE = "onedrive"
SHAREPOINT = "sharepoint"

#: Where Drive serves file contents since 2024; ``drive.google.com/uc`` redirects there.
DRIVE_DOWNLOAD = "https://drive.usercontent.google.com/download"
#: OneDrive's shares API, which takes any sharing URL of a personal OneDrive (1drv.ms short
#: links included) and answers the file: learn.microsoft.com, "Accessing shared items".
ONEDRIVE_SHARES = "https://api.onedrive.com/v1.0/shares/u!{}/root/content"

_DRIVE_FILE_PATH = re.compile(r"(?:/a/[^/]+)?(?:/u/\d+)?/file(?:/u/\d+)?/d/([-\w]+)(?:/.*)?")
_DRIVE_ID_PATH = re.compile(r"(?:/a/[^/]+)?(?:/u/\d+)?/(?:open|uc)/?")
_DRIVE_ID = re.compile(r"[-\w]+")
_DROPBOX_SHARE_PATH = re.compile(r"/(?:s|sh|scl/fi|scl/fo)/")
_ONEDRIVE_VIEWERS = {"/redir", "/redir.aspx", "/embed", "/embed.aspx"}
_ONEDRIVE_DIRECT = {"/download", "/download.aspx"}
_SHAREPOINT_SHARE_PATH = re.compile(r"/:[a-z]:/", re.IGNORECASE)


@dataclass(frozen=True)
class DirectLink:
    """The URL to download, and which provider's sharing link it came from (None: any other
    URL, returned unchanged)."""

    url: str
    provider: str | None


def direct_download_url(url: str) -> DirectLink:
    """The direct-download form of a Google Drive, Dropbox, OneDrive or SharePoint sharing
    link (upgraded to https); any other URL comes back unchanged with provider None.

    Links of those providers that are direct already, or that are no media (a Google Doc, a
    Drive folder), keep their URL but carry the provider, so that a web page at the end can be
    explained in the provider's terms.
    """
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
        _ = parts.port  # raises ValueError on a port that is not a number
    except ValueError:
        return DirectLink(url, None)
    if parts.scheme.lower() not in ("http", "https") or not host:
        return DirectLink(url, None)
    if _within(host, "drive.google.com", "docs.google.com", "drive.usercontent.google.com"):
        return DirectLink(_google_drive(parts, host), GOOGLE_DRIVE)
    if _within(host, "dropbox.com", "dropboxusercontent.com"):
        return DirectLink(_dropbox(parts, host), DROPBOX)
    if _within(host, "1drv.ms", "onedrive.live.com", "api.onedrive.com", "1drv.com"):
        return DirectLink(_onedrive(parts, host), ONEDRIVE)
    if _within(host, "sharepoint.com"):
        return DirectLink(_sharepoint(parts, host), SHAREPOINT)
    return DirectLink(url, None)


def _within(host: str, *domains: str) -> bool:
    """``host`` is one of ``domains`` or a subdomain of one: never a mere substring, so that
    ``dropbox.com.evil.example`` is not taken for Dropbox."""
    return any(host == domain or host.endswith("." + domain) for domain in domains)


def _https(parts: SplitResult, host: str, *, path: str | None = None,
           query: str | None = None) -> str:
    """``parts`` as an https URL without fragment (and without the credentials no sharing link
    has); a port is kept unless it is a scheme's default."""
    netloc = host
    if parts.port is not None and parts.port not in (80, 443):
        netloc += f":{parts.port}"
    return urlunsplit(("https", netloc, parts.path if path is None else path,
                       parts.query if query is None else query, ""))


def _params(query: str) -> list[tuple[str, str]]:
    """The query's raw ``name=value`` pieces, as (decoded name, raw piece)."""
    return [(unquote_plus(piece.split("=", 1)[0]), piece)
            for piece in query.split("&") if piece]


def _param(query: str, name: str) -> str | None:
    """The first decoded value of ``name`` in ``query``."""
    for key, piece in _params(query):
        if key == name:
            return unquote_plus(piece.partition("=")[2])
    return None


def _with_param(query: str, name: str, value: str) -> str:
    """``query`` with ``name=value`` in place of the first ``name`` (later ones dropped) or
    appended; every other piece is kept byte for byte, in order."""
    pieces: list[str] = []
    placed = False
    for key, piece in _params(query):
        if key != name:
            pieces.append(piece)
        elif not placed:
            pieces.append(f"{name}={value}")
            placed = True
    if not placed:
        pieces.append(f"{name}={value}")
    return "&".join(pieces)


def _google_drive(parts: SplitResult, host: str) -> str:
    file_id: str | None = None
    if host != "drive.usercontent.google.com":
        match = _DRIVE_FILE_PATH.fullmatch(parts.path)
        if match:
            file_id = match.group(1)
        elif _DRIVE_ID_PATH.fullmatch(parts.path):
            file_id = _param(parts.query, "id")
    if not file_id or not _DRIVE_ID.fullmatch(file_id):
        return _https(parts, host)  # direct already, or a Doc, a folder: no file to point at
    query = urlencode({"id": file_id, "export": "download"})
    resource_key = _param(parts.query, "resourcekey")
    if resource_key:  # files shared before 2021 answer 404 without it
        query += "&" + urlencode({"resourcekey": resource_key})
    return f"{DRIVE_DOWNLOAD}?{query}"


def _dropbox(parts: SplitResult, host: str) -> str:
    if _within(host, "dropboxusercontent.com") or not _DROPBOX_SHARE_PATH.match(parts.path):
        return _https(parts, host)
    if _param(parts.query, "raw") == "1":  # streams the file already
        return _https(parts, host)
    return _https(parts, host, query=_with_param(parts.query, "dl", "1"))


def _onedrive(parts: SplitResult, host: str) -> str:
    if host == "onedrive.live.com":
        path = parts.path.lower()
        if path in _ONEDRIVE_VIEWERS:
            return _https(parts, host, path="/download")
        if path in _ONEDRIVE_DIRECT:
            return _https(parts, host)
    elif host != "1drv.ms":  # the API and its file hosts: direct already
        return _https(parts, host)
    return ONEDRIVE_SHARES.format(encode_sharing_url(_https(parts, host)))


def encode_sharing_url(url: str) -> str:
    """Microsoft's "encoding sharing URLs": unpadded base64url of the URL (to which the shares
    API expects ``u!`` prefixed)."""
    return base64.urlsafe_b64encode(url.encode()).decode("ascii").rstrip("=")


def _sharepoint(parts: SplitResult, host: str) -> str:
    if _SHAREPOINT_SHARE_PATH.match(parts.path):  # not .../_layouts/15/download.aspx, direct
        return _https(parts, host, query=_with_param(parts.query, "download", "1"))
    return _https(parts, host)


class _DriveWarningPage(HTMLParser):
    """Collects what Drive's "can't scan this file for viruses" page offers to go on: the
    ``download-form`` with its hidden inputs (current), or the ``uc-download-link`` (older)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.form_action: str | None = None
        self.form_method = "get"
        self.fields: list[tuple[str, str]] = []
        self.link: str | None = None
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and attributes.get("id") == "download-form" and not self._seen_form:
            self._in_form = True
            self.form_action = attributes.get("action", "")
            self.form_method = attributes.get("method", "get").lower() or "get"
        elif tag == "input" and self._in_form:
            if attributes.get("type", "").lower() == "hidden" and attributes.get("name"):
                self.fields.append((attributes["name"], attributes.get("value", "")))
        elif tag == "a" and attributes.get("id") == "uc-download-link" and self.link is None:
            self.link = attributes.get("href") or None

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False

    @property
    def _seen_form(self) -> bool:
        return self.form_action is not None


def confirmation_url(html: str, page_url: str) -> str | None:
    """The absolute URL that downloads the file from Drive's virus-scan warning page
    (``html``, served at ``page_url``), or None when the page is no such page."""
    page = _DriveWarningPage()
    page.feed(html)
    page.close()
    candidate: str | None = None
    names = {name for name, _ in page.fields}
    if page.form_action is not None and page.form_method == "get" and "id" in names:
        # Submitting a GET form replaces the action's query with the form's fields.
        action = urlsplit(urljoin(page_url, page.form_action))
        candidate = urlunsplit((action.scheme, action.netloc, action.path,
                                urlencode(page.fields), ""))
    if candidate is None and page.link:
        candidate = urljoin(page_url, page.link)
    if candidate is None or urlsplit(candidate).scheme not in ("http", "https"):
        return None
    return candidate


_UPLOAD = "upload the file (POST /api/v1/uploads)"
_ADVICE = {
    GOOGLE_DRIVE: ("The Google Drive link leads to a web page, not to the file: the file is "
                   "private, deleted, or needs a sign-in. Share it as 'Anyone with the link', "
                   f"or {_UPLOAD}."),
    DROPBOX: ("The Dropbox link leads to a web page, not to the file: the link is disabled, "
              "expired or restricted to some people, or the file was deleted. Create a link "
              f"that anyone with the link can view, or {_UPLOAD}."),
    ONEDRIVE: ("The OneDrive link leads to a web page, not to the file: the file is private, "
               "deleted, or needs a sign-in. Share it as 'Anyone with the link can view', "
               f"or {_UPLOAD}."),
    SHAREPOINT: ("The SharePoint link leads to a web page, not to the file: the link needs a "
                 "sign-in to your organization, or the file was deleted. Share it as 'Anyone "
                 f"with the link' (where your organization allows it), or {_UPLOAD}."),
}
_GENERIC_ADVICE = ("The URL leads to a web page, not to an audio or video file: link to the file "
                   f"itself, make it public, or {_UPLOAD}.")


def web_page_advice(provider: str | None) -> str:
    """What to tell the user whose link, of ``provider`` (or of none known), ended on a web
    page instead of media."""
    return _ADVICE.get(provider or "", _GENERIC_ADVICE)
