"""A loopback HTTPS server that plays Google Drive, Dropbox, OneDrive and SharePoint.

Tests of sharing links must never reach the real hosts, yet the fetcher has to meet what those
hosts really do: redirect chains across host names, Drive's virus-scan warning for large
files, sign-in walls answered as 200 HTML pages, 404 pages for deleted files. One
``ThreadingHTTPServer`` on 127.0.0.1 plays every host name: it routes on the ``Host`` header,
and its certificate (from a throwaway ``trustme`` CA, see :attr:`SharingHosts.ca_bundle`) is
valid for all of them, so a client that connects to 127.0.0.1 while sending the real name as
SNI and ``Host`` validates TLS as it would in production (:attr:`SharingHosts.connect_to`).

Files are named (``"talk.mp3"``); each name gets stable share identifiers on every provider,
and the ``*_url`` methods give the links a user would paste. A name can be ``large`` (Drive
asks for confirmation), ``private`` (sign-in wall), ``deleted`` (404), ``resource_keyed``
(Drive wants its ``resourcekey``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.client
import re
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit

import trustme

DRIVE = "drive.google.com"
DOCS = "docs.google.com"
DRIVE_CONTENT = "drive.usercontent.google.com"
GOOGLE_ACCOUNTS = "accounts.google.com"
DROPBOX = "www.dropbox.com"
DROPBOX_BARE = "dropbox.com"
DROPBOX_CONTENT = "dl.dropboxusercontent.com"
ONEDRIVE_SHORT = "1drv.ms"
ONEDRIVE = "onedrive.live.com"
ONEDRIVE_API = "api.onedrive.com"
ONEDRIVE_CONTENT = "public.dm.files.1drv.com"
SHAREPOINT_SITES = "contoso.sharepoint.com"
SHAREPOINT_PERSONAL = "contoso-my.sharepoint.com"
MICROSOFT_LOGIN = "login.microsoftonline.com"
LIVE_LOGIN = "login.live.com"

#: Every host name played, all on one certificate.
HOSTS = (DRIVE, DOCS, DRIVE_CONTENT, GOOGLE_ACCOUNTS, DROPBOX, DROPBOX_BARE, DROPBOX_CONTENT,
         ONEDRIVE_SHORT, ONEDRIVE, ONEDRIVE_API, ONEDRIVE_CONTENT, SHAREPOINT_SITES,
         SHAREPOINT_PERSONAL, MICROSOFT_LOGIN, LIVE_LOGIN)

SHAREPOINT_USER = "adele_contoso_com"
SHAREPOINT_SITE = "Marketing"

_SHAREPOINT_LINK = re.compile(r"/:[a-z]:/(?P<kind>[gs])/(?P<owner>.+)/(?P<token>[-\w]+)")
_SHAREPOINT_PAGE = re.compile(
    r"/(?:personal|sites)/[^/]+/_layouts/15/(?P<page>download|stream)\.aspx", re.IGNORECASE)


def _ident(kind: str, name: str, length: int, *, hexa: bool = False) -> str:
    """A stable identifier of ``length`` characters for ``name`` on one provider."""
    digest = hashlib.sha512(f"{kind}:{name}".encode()).digest()
    text = digest.hex() if hexa else base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return text[:length]


@dataclass(frozen=True)
class _Share:
    """The identifiers under which the hosts know one file."""

    name: str
    drive_id: str
    resource_key: str | None
    dropbox_key: str
    scl_id: str
    rlkey: str
    onedrive_resid: str
    onedrive_authkey: str
    onedrive_short_path: str
    onedrive_content: str
    sharepoint_token: str

    @classmethod
    def of(cls, name: str, resource_keyed: bool) -> _Share:
        cid = _ident("onedrive-cid", name, 16, hexa=True).upper()
        return cls(
            name=name,
            drive_id="1" + _ident("drive", name, 32),
            resource_key="0-" + _ident("resourcekey", name, 22) if resource_keyed else None,
            dropbox_key=_ident("dropbox", name, 15, hexa=True),
            scl_id=_ident("scl", name, 21, hexa=True),
            rlkey=_ident("rlkey", name, 25, hexa=True),
            onedrive_resid=f"{cid}!{int(_ident('resid', name, 4, hexa=True), 16) % 900 + 100}",
            onedrive_authkey="!A" + _ident("authkey", name, 13),
            onedrive_short_path="/u/s!A" + _ident("1drv", name, 27),
            onedrive_content="y4m" + _ident("dm", name, 60),
            sharepoint_token="E" + _ident("sharepoint", name, 45),
        )


@dataclass(frozen=True)
class Reply:
    """One HTTP answer as the client saw it."""

    url: str
    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def location(self) -> str | None:
        return self.headers.get("location")


@dataclass
class _Answer:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class SharingHosts:
    """Play the sharing hosts on 127.0.0.1 (a random port) over TLS; a context manager.

    ``files`` maps names to contents. ``large`` names (which must be in ``files``) get Drive's
    virus-scan warning first; ``private`` names hit sign-in walls; ``deleted`` names answer 404
    pages; ``resource_keyed`` names need Drive's ``resourcekey``. ``directory`` is where the CA
    bundle is written (a temporary folder, removed on exit, when None).
    """

    def __init__(self, files: Mapping[str, bytes], *, large: Iterable[str] = (),
                 private: Iterable[str] = (), deleted: Iterable[str] = (),
                 resource_keyed: Iterable[str] = (), directory: Path | None = None) -> None:
        self.files = dict(files)
        self.large, self.private, self.deleted = set(large), set(private), set(deleted)
        unknown = self.large - self.files.keys()
        if unknown:
            raise ValueError(f"large files need contents: {sorted(unknown)}")
        names = self.files.keys() | self.private | self.deleted
        keyed = set(resource_keyed)
        self._shares = {name: _Share.of(name, name in keyed) for name in names}
        self._lock = threading.Lock()
        self._requests: list[tuple[str, str]] = []
        self._issued: dict[str, str] = {}  # Drive's confirmation uuid -> file id

        self._own_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="sharing-hosts-")) if directory is None \
            else directory
        self._ca = trustme.CA()
        self.ca_bundle = self.directory / "sharing-hosts-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_bundle))
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(*HOSTS).configure_cert(server_context)
        self._client_context = ssl.create_default_context(cafile=str(self.ca_bundle))

        self.httpd = _TLSServer(("127.0.0.1", 0), _Handler, server_context, self)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)

    # -- what tests use ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def connect_to(self) -> list[str]:
        """curl ``--connect-to`` entries sending every played host to this server."""
        return [f"{host}:443:127.0.0.1:{self.port}" for host in HOSTS]

    @property
    def requests(self) -> list[tuple[str, str]]:
        """A snapshot of the (host, path with query) requested so far, in order."""
        with self._lock:
            return list(self._requests)

    def share(self, name: str) -> _Share:
        return self._shares[name]

    def drive_view_url(self, name: str, suffix: str = "/view?usp=sharing") -> str:
        share = self._shares[name]
        url = f"https://{DRIVE}/file/d/{share.drive_id}{suffix}"
        if share.resource_key:
            url += ("&" if "?" in url else "?") + f"resourcekey={share.resource_key}"
        return url

    def drive_open_url(self, name: str) -> str:
        return f"https://{DRIVE}/open?id={self._shares[name].drive_id}" + self._key(name)

    def drive_uc_url(self, name: str) -> str:
        share = self._shares[name]
        return f"https://{DRIVE}/uc?id={share.drive_id}&export=download" + self._key(name)

    def _key(self, name: str) -> str:
        resource_key = self._shares[name].resource_key
        return f"&resourcekey={resource_key}" if resource_key else ""

    def drive_download_url(self, name: str) -> str:
        share = self._shares[name]
        return f"https://{DRIVE_CONTENT}/download?id={share.drive_id}&export=download" \
            + self._key(name)

    def dropbox_url(self, name: str, dl: str = "0") -> str:
        return f"https://{DROPBOX}/s/{self._shares[name].dropbox_key}/{quote(name)}?dl={dl}"

    def scl_url(self, name: str, dl: str = "0") -> str:
        share = self._shares[name]
        return (f"https://{DROPBOX}/scl/fi/{share.scl_id}/{quote(name)}"
                f"?rlkey={share.rlkey}&dl={dl}")

    def onedrive_short_url(self, name: str) -> str:
        return f"https://{ONEDRIVE_SHORT}{self._shares[name].onedrive_short_path}"

    def onedrive_redir_url(self, name: str, page: str = "redir") -> str:
        share = self._shares[name]
        return (f"https://{ONEDRIVE}/{page}?resid={share.onedrive_resid}"
                f"&authkey={share.onedrive_authkey}")

    def sharepoint_url(self, name: str) -> str:
        """A OneDrive for Business link (``-my`` host, the user's personal site)."""
        token = self._shares[name].sharepoint_token
        return f"https://{SHAREPOINT_PERSONAL}/:u:/g/personal/{SHAREPOINT_USER}/{token}?e=a1B2c3"

    def sharepoint_site_url(self, name: str) -> str:
        """A link to a file in a team site's library."""
        token = self._shares[name].sharepoint_token
        return f"https://{SHAREPOINT_SITES}/:v:/s/{SHAREPOINT_SITE}/{token}?e=Zz9Yy8"

    def get(self, url: str) -> Reply:
        """GET ``url`` (https, a played host) from this server as the fetcher will: TCP to
        127.0.0.1, TLS with the host name as SNI, verified against :attr:`ca_bundle`."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme != "https" or host not in HOSTS or parts.port not in (None, 443):
            raise ValueError(f"not a URL these hosts play: {url}")
        connection = _LoopbackHTTPS(host, self.port, self._client_context)
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request("GET", target, headers={"User-Agent": "sharing-hosts-test"})
            response = connection.getresponse()
            headers = {name.lower(): value for name, value in response.getheaders()}
            return Reply(url, response.status, headers, response.read())
        finally:
            connection.close()

    def follow(self, url: str, max_redirects: int = 10) -> list[Reply]:
        """Every answer on the way from ``url`` through its redirects; the last is final."""
        replies = [self.get(url)]
        while replies[-1].status in (301, 302, 303, 307, 308) and replies[-1].location:
            if len(replies) > max_redirects:
                raise AssertionError(f"more than {max_redirects} redirects from {url}")
            replies.append(self.get(urljoin(replies[-1].url, replies[-1].location)))
        return replies

    def __enter__(self) -> SharingHosts:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- what the hosts answer --------------------------------------------------------------

    def _answer(self, host: str, target: str) -> _Answer:
        with self._lock:
            self._requests.append((host, target))
        parts = urlsplit(target)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        route = {
            DRIVE: self._drive, DOCS: self._drive, DRIVE_CONTENT: self._drive_content,
            DROPBOX: self._dropbox, DROPBOX_BARE: self._dropbox_bare,
            DROPBOX_CONTENT: self._dropbox_content, ONEDRIVE_SHORT: self._onedrive_short,
            ONEDRIVE: self._onedrive, ONEDRIVE_API: self._onedrive_api,
            ONEDRIVE_CONTENT: self._onedrive_content, SHAREPOINT_SITES: self._sharepoint,
            SHAREPOINT_PERSONAL: self._sharepoint,
        }.get(host)
        if host in (GOOGLE_ACCOUNTS, MICROSOFT_LOGIN, LIVE_LOGIN):
            return _sign_in_page(host)
        if route is None:
            return _page(421, "Misdirected Request", f"This server does not play {host}.")
        return route(host, parts.path, parts.query, query)

    def _find(self, attribute: str, value: str | None) -> _Share | None:
        return next((share for share in self._shares.values()
                     if value and getattr(share, attribute) == value), None)

    def _file(self, share: _Share) -> _Answer:
        body = self.files[share.name]
        disposition = f"attachment; filename=\"{share.name}\"; filename*=UTF-8''{quote(share.name)}"
        return _Answer(200, [("Content-Type", "application/octet-stream"),
                             ("Content-Disposition", disposition)], body)

    def _public(self, share: _Share | None) -> bool:
        return share is not None and share.name not in self.private | self.deleted \
            and share.name in self.files

    # Google Drive

    def _drive(self, host: str, path: str, raw_query: str, query: dict[str, str]) -> _Answer:
        if re.fullmatch(r"(?:/u/\d+)?/uc", path):  # Drive hands downloads to usercontent
            return _redirect(303, f"https://{DRIVE_CONTENT}/download?{raw_query}")
        if path == "/open" and query.get("id"):
            return _redirect(302, f"https://{DRIVE}/file/d/{query['id']}/view?usp=drive_open")
        if host == DOCS and re.match(r"/(?:document|spreadsheets|presentation)/d/", path):
            return _page(200, "Google Docs", "A document, edited in the browser.")
        match = re.fullmatch(r"/file(?:/u/\d+)?/d/([-\w]+)(?:/(?:view|edit|preview))?", path)
        share = self._find("drive_id", match.group(1)) if match else None
        if share is None or share.name in self.deleted:
            return _drive_not_found()
        if share.name in self.private:
            return _google_sign_in_redirect(f"https://{host}{path}")
        return _page(200, f"{share.name} - Google Drive", "A preview of the file, with a player.")

    def _drive_content(self, host: str, path: str, raw_query: str,
                       query: dict[str, str]) -> _Answer:
        share = self._find("drive_id", query.get("id")) if path == "/download" else None
        if share is None or share.name in self.deleted:
            return _drive_not_found()
        if share.resource_key and query.get("resourcekey") != share.resource_key:
            return _drive_not_found()
        if share.name in self.private:
            return _google_sign_in_redirect(f"https://{host}{path}?{raw_query}")
        if share.name in self.large:
            with self._lock:
                confirmed = self._issued.get(query.get("uuid", "")) == share.drive_id
            if query.get("confirm") != "t" or not confirmed:
                return self._virus_scan_warning(share)
        return self._file(share)

    def _virus_scan_warning(self, share: _Share) -> _Answer:
        issued = secrets.token_hex(16)
        uuid = f"{issued[:8]}-{issued[8:12]}-{issued[12:16]}-{issued[16:20]}-{issued[20:]}"
        with self._lock:
            self._issued[uuid] = share.drive_id
        fields = [("id", share.drive_id), ("export", "download")]
        if share.resource_key:
            fields.append(("resourcekey", share.resource_key))
        fields += [("confirm", "t"), ("uuid", uuid)]
        inputs = "".join(f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
                         for name, value in fields)
        size = f"{max(1, len(self.files[share.name]) // 1_000_000)}M"
        body = (
            "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>"
            '<meta http-equiv="content-type" content="text/html; charset=utf-8"/>'
            "<style>.uc-main{padding-top:50px;text-align:center}</style></head><body>"
            '<div class="uc-main"><div id="uc-text">'
            '<p class="uc-warning-caption">Google Drive can\'t scan this file for viruses.</p>'
            f'<p class="uc-warning-subcaption"><span class="uc-name-size">'
            f'<a href="/open?id={share.drive_id}">{html.escape(share.name)}</a> ({size})</span>'
            " is too large for Google to scan for viruses. Would you still like to download"
            " this file?</p>"
            f'<form id="download-form" action="https://{DRIVE_CONTENT}/download" method="get">'
            '<input type="submit" id="uc-download-link" class="jfk-button jfk-button-action"'
            f' value="Download anyway"/>{inputs}</form></div></div>'
            '<div class="uc-footer"><hr class="uc-footer-divider"></div></body></html>')
        return _Answer(200, [("Content-Type", "text/html; charset=utf-8")], body.encode())

    # Dropbox

    def _dropbox_bare(self, host: str, path: str, raw_query: str,
                      query: dict[str, str]) -> _Answer:
        return _redirect(301, f"https://{DROPBOX}{path}" + (f"?{raw_query}" if raw_query else ""))

    def _dropbox_share(self, path: str, query: dict[str, str]) -> _Share | None:
        match = re.fullmatch(r"/s/([a-z0-9]+)/[^/]+", path)
        if match:
            return self._find("dropbox_key", match.group(1))
        match = re.fullmatch(r"/scl/fi/([a-z0-9]+)/[^/]+", path)
        share = self._find("scl_id", match.group(1)) if match else None
        return share if share and query.get("rlkey") == share.rlkey else None

    def _dropbox(self, host: str, path: str, raw_query: str, query: dict[str, str]) -> _Answer:
        share = self._dropbox_share(path, query)
        if share is None or share.name in self.deleted:
            return _page(404, "Dropbox - Error", "This item was deleted, or the link is invalid.")
        if share.name in self.private:
            return _page(200, "Dropbox - Link restricted",
                         "This link is only for some people. Sign in to Dropbox to continue."
                         '<form action="/login" method="post"><input name="login_email">'
                         "</form>")
        if query.get("dl") == "1" or query.get("raw") == "1":
            return _redirect(302, f"https://{DROPBOX_CONTENT}{path}?{raw_query}")
        return _page(200, f"Dropbox - {share.name}", "A preview of the file, with a player.")

    def _dropbox_content(self, host: str, path: str, raw_query: str,
                         query: dict[str, str]) -> _Answer:
        share = self._dropbox_share(path, query)
        if not self._public(share):
            return _page(404, "Dropbox - Error", "This file is not available.")
        assert share is not None
        return self._file(share)

    # OneDrive

    def _onedrive_short(self, host: str, path: str, raw_query: str,
                        query: dict[str, str]) -> _Answer:
        share = self._find("onedrive_short_path", path)
        if share is None:
            return _page(404, "Microsoft OneDrive", "This link does not exist.")
        return _redirect(301, f"https://{ONEDRIVE}/redir?resid={share.onedrive_resid}"
                              f"&authkey={share.onedrive_authkey}")

    def _onedrive(self, host: str, path: str, raw_query: str, query: dict[str, str]) -> _Answer:
        page = path.lower().removesuffix(".aspx")
        share = self._find("onedrive_resid", query.get("resid"))
        if page not in ("/redir", "/embed", "/download") or share is None \
                or share.name in self.deleted:
            return _page(404, "Microsoft OneDrive", "This item might not exist or is no longer "
                                                    "available.")
        if share.name in self.private or query.get("authkey") != share.onedrive_authkey:
            return _live_sign_in_redirect(f"https://{host}{path}?{raw_query}")
        if page == "/download":
            return _redirect(302, self._onedrive_content_url(share))
        return _page(200, f"{share.name} - Microsoft OneDrive", "The file, in a viewer.")

    def _onedrive_api(self, host: str, path: str, raw_query: str,
                      query: dict[str, str]) -> _Answer:
        match = re.fullmatch(r"/v1\.0/shares/u!([-\w]+)/root/content", path)
        if match is None:
            return _json_error(400, "invalidRequest", "Invalid API or resource.")
        encoded = match.group(1)
        try:
            sharing_url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return _json_error(400, "invalidRequest", "The sharing URL is not encoded right.")
        share = self._share_of_onedrive_url(sharing_url)
        if share is not None and share.name in self.deleted:
            return _json_error(404, "itemNotFound", "Item does not exist")
        if not self._public(share):
            return _live_sign_in_redirect(f"https://{host}{path}")
        assert share is not None
        return _redirect(302, self._onedrive_content_url(share))

    def _share_of_onedrive_url(self, sharing_url: str) -> _Share | None:
        parts = urlsplit(sharing_url)
        if parts.hostname == ONEDRIVE_SHORT:
            return self._find("onedrive_short_path", parts.path)
        if parts.hostname == ONEDRIVE:
            query = {key.lower(): values[0] for key, values in parse_qs(parts.query).items()}
            share = self._find("onedrive_resid", query.get("resid") or query.get("id"))
            return share if share and query.get("authkey") == share.onedrive_authkey else None
        return None

    def _onedrive_content_url(self, share: _Share) -> str:
        return f"https://{ONEDRIVE_CONTENT}/{share.onedrive_content}/{quote(share.name)}" \
               "?download&psid=1"

    def _onedrive_content(self, host: str, path: str, raw_query: str,
                          query: dict[str, str]) -> _Answer:
        share = self._find("onedrive_content", path.split("/")[1])
        if not self._public(share):
            return _page(404, "Not Found", "The resource is gone.")
        assert share is not None
        return self._file(share)

    # SharePoint

    def _sharepoint(self, host: str, path: str, raw_query: str,
                    query: dict[str, str]) -> _Answer:
        link = _SHAREPOINT_LINK.fullmatch(path)
        page = _SHAREPOINT_PAGE.fullmatch(path)
        share, site = None, ""
        if link:
            share = self._find("sharepoint_token", link.group("token"))
            site = ("/" if link.group("kind") == "g" else "/sites/") + link.group("owner")
        elif page:
            share = self._find("sharepoint_token", query.get("share"))
        if share is None or share.name in self.deleted:
            return _page(404, "SharePoint", "Sorry, something went wrong: the item was not "
                                            "found.")
        if share.name in self.private:
            return _redirect(302, f"https://{MICROSOFT_LOGIN}/common/oauth2/authorize?"
                             + urlencode({"client_id": "00000003-0000-0ff1-ce00-000000000000",
                                          "response_type": "code id_token",
                                          "redirect_uri": f"https://{host}{path}"}))
        if link:
            aspx = "download" if query.get("download") == "1" else "stream"
            return _redirect(302, f"{site}/_layouts/15/{aspx}.aspx?share={link.group('token')}")
        if page and page.group("page").lower() == "download":
            return self._file(share)
        return _page(200, f"{share.name} - SharePoint", "The file, in a viewer.")


def _page(status: int, title: str, text: str) -> _Answer:
    body = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title></head><body><h1>{html.escape(title)}</h1><p>{text}</p></body></html>")
    return _Answer(status, [("Content-Type", "text/html; charset=utf-8")], body.encode())


def _redirect(status: int, location: str) -> _Answer:
    return _Answer(status, [("Location", location)])


def _json_error(status: int, code: str, message: str) -> _Answer:
    body = f'{{"error":{{"code":"{code}","message":"{message}"}}}}'
    return _Answer(status, [("Content-Type", "application/json")], body.encode())


def _drive_not_found() -> _Answer:
    return _page(404, "Google Drive - Page Not Found",
                 "Sorry, the file you have requested does not exist.")


def _google_sign_in_redirect(continue_url: str) -> _Answer:
    query = urlencode({"service": "wise", "passive": "1209600", "continue": continue_url,
                       "followup": continue_url})
    return _redirect(302, f"https://{GOOGLE_ACCOUNTS}/ServiceLogin?{query}")


def _live_sign_in_redirect(return_url: str) -> _Answer:
    query = urlencode({"wa": "wsignin1.0", "wreply": return_url})
    return _redirect(302, f"https://{LIVE_LOGIN}/login.srf?{query}")


def _sign_in_page(host: str) -> _Answer:
    owner = "Google" if host == GOOGLE_ACCOUNTS else "Microsoft"
    return _page(200, f"Sign in - {owner} Accounts",
                 f"Sign in with your {owner} account to continue."
                 '<form method="post" action="/signin"><input type="email" name="identifier">'
                 '<input type="password" name="password"></form>')


class _TLSServer(ThreadingHTTPServer):
    """Hands each accepted connection to its thread before the TLS handshake, so that a
    client that stalls or rejects the certificate cannot hold up the others."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 context: ssl.SSLContext, hosts: SharingHosts) -> None:
        super().__init__(address, handler)
        self.context = context
        self.hosts = hosts

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-answer is not the test's failure


class _Handler(BaseHTTPRequestHandler):
    server: _TLSServer

    def do_GET(self) -> None:
        self._reply(head=False)

    def do_HEAD(self) -> None:
        self._reply(head=True)

    def _reply(self, head: bool) -> None:
        host = (self.headers.get("Host") or "").lower().removesuffix(":443")
        answer = self.server.hosts._answer(host, self.path)
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if not head:
            self.wfile.write(answer.body)

    def log_message(self, *_: object) -> None:
        pass


class _LoopbackHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to ``host`` that goes to 127.0.0.1:``port`` instead: the name still
    goes out as SNI and ``Host``, and the certificate is checked against it."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        super().__init__(host, 443, context=context, timeout=10)
        self._loopback_port = port

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self._loopback_port), self.timeout)
        context: ssl.SSLContext = self._context  # type: ignore[attr-defined]
        self.sock = context.wrap_socket(sock, server_hostname=self.host)
