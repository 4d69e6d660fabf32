"""What every resource's schemas share: strict booleans, URL checks, the error body."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import urllib3
from marshmallow import (
    Schema,
    ValidationError,
    fields,
)

from app.api.errors import error_codes_by_status


class StrictBoolean(fields.Boolean):
    """A JSON ``true``/``false`` only: ``"yes"`` or ``1`` are type errors, not booleans."""

    default_error_messages = {"invalid": "Not a boolean: send true or false."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictQueryBoolean(fields.Boolean):
    """A boolean query parameter: ``true`` or ``false`` (any case) only, so that a typo is
    refused instead of read as one or the other."""

    truthy = {"true", "True", "TRUE"}
    falsy = {"false", "False", "FALSE"}
    default_error_messages = {"invalid": "Not a boolean: send true or false."}


#: The longest URL accepted (media and webhook URLs alike).
MAX_URL_LENGTH = 4096
#: Control characters (C0, DEL, C1) and unpaired surrogates: never in an identifier, a name
#: or a URL (PostgreSQL refuses NUL, UTF-8 cannot encode a surrogate).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: The same, less tab, newline and carriage return: free text (a note) may hold lines.
_CONTROL_IN_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


class Text(fields.String):
    """A string of text, the type of every string field of a request: JSON strings only
    (no numbers taken as strings), no control character (NUL included) and no unpaired
    surrogate, so that whatever passes can be stored in either database and written as
    UTF-8. ``multiline`` allows tab, newline and carriage return (free text such as notes).
    """

    default_error_messages = {"invalid": "Not a string: send text in double quotes."}

    def __init__(self, *, multiline: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.forbidden = _CONTROL_IN_LINES if multiline else _CONTROL

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        found = self.forbidden.search(text)
        if found:
            raise ValidationError(f"Contains the control character U+{ord(found.group()):04X} "
                                  f"at position {found.start()}: remove it.")
        return text


#: The characters RFC 3986 allows in an authority (userinfo, host, port): unreserved,
#: percent-encoded, sub-delims, ':', '@' and IPv6 brackets.
_AUTHORITY = re.compile(r"^[A-Za-z0-9\-._~%!$&'()*+,;=:@\[\]]*$")
#: A DNS name (labels of letters, digits, '-' and '_'), optionally ending in a dot.
_HOSTNAME = re.compile(r"^(?=.{1,253}\.?$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
                       r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?$")
#: ``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` (the port being digits only).
_HOST_PORT = re.compile(r"^(?P<host>\[[^\]]*\]|[^:\[\]]*)(?::(?P<port>[0-9]*))?$")


def validate_http_url(value: str) -> None:
    """An absolute http(s) URL that every parser reads the same way; anything else is refused
    before it is stored or queued, with what to change.

    The authority (``//host:port``) is where parsers disagree (and where a request could be
    steered at another host than the one checked), so it is held to RFC 3986 in ASCII:
    no user:password@ part, no backslash, no character that some parsers normalise into a
    delimiter (a fullwidth number sign, U+FF03, becomes ``#`` under NFKC), a host that is a
    DNS name, an IPv4 address or a bracketed IPv6 address, a port between 1 and 65535. An
    internationalised domain name is given in its ASCII (IDNA, ``xn--…``) form. The path and
    query may hold any text but spaces and control characters (non-ASCII is sent
    percent-encoded as UTF-8).
    """
    if len(value) > MAX_URL_LENGTH:
        raise ValidationError(f"Must be at most {MAX_URL_LENGTH} characters.")
    found = _CONTROL.search(value) or re.search(r"\s", value)
    if found:
        raise ValidationError(
            f"Contains {'a space' if found.group() == ' ' else 'the character'} "
            f"U+{ord(found.group()):04X} at position {found.start()}: percent-encode it "
            "(a space is %20), or remove it.")
    scheme, separator, rest = value.partition("://")
    if not separator or scheme.lower() not in ("http", "https"):
        raise ValidationError("Must be an absolute http:// or https:// URL.")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    _check_authority(authority)
    try:
        urllib3.util.parse_url(value)
    except urllib3.exceptions.LocationParseError as exc:
        raise ValidationError(f"Not a URL that can be fetched: {exc}.") from None


def _check_authority(authority: str) -> None:
    if not authority:
        raise ValidationError("Has no host: write it as http(s)://host/path.")
    if not authority.isascii():
        raise ValidationError(
            "The host part must be ASCII: write an internationalised domain name in its IDNA "
            "form (xn--…), and nothing but the host and port between // and the path.")
    if "@" in authority:
        raise ValidationError(
            "Credentials (user:password@) in the URL are not supported: they are ambiguous to "
            "parsers and would not be sent. Make the file downloadable without them, or "
            "upload it.")
    if not _AUTHORITY.match(authority) or "%" in authority:
        raise ValidationError(
            "The host part holds a character a host name cannot have: only letters, digits, "
            "'.', '-' and '_' (or an IP address, IPv6 in brackets) and ':port'.")
    parts = _HOST_PORT.match(authority)
    if parts is None:
        raise ValidationError("The host part is malformed: write host, host:port or "
                              "[IPv6 address]:port.")
    host, port = parts.group("host"), parts.group("port")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValidationError(f"{host} is not an IPv6 address in brackets.") from None
    elif not _HOSTNAME.match(host):
        raise ValidationError(f"'{host}' is not a host name or an IPv4 address.")
    if port is not None and (not port or not 1 <= int(port) <= 65535):
        raise ValidationError(f"The port '{port}' is not a number from 1 to 65535 (or leave "
                              "it out: 80 for http, 443 for https).")


#: How every webhook is signed, for the descriptions of the fields that set one.
WEBHOOK_SIGNING = ("Signed per Standard Webhooks: headers webhook-id (the same on every "
                   "attempt: deduplicate on it), webhook-timestamp and webhook-signature "
                   "('v1,' + base64 HMAC-SHA256 of 'id.timestamp.body' under the account's "
                   "secret, GET /api/v1/webhook_secret).")


class ErrorDetailSchema(Schema):
    """What went wrong. Besides code and message, some errors say more (``app.errors``)."""

    code = fields.String(required=True, metadata={
        "enum": sorted({code for codes in error_codes_by_status().values() for code in codes}),
        "description": "Stable and machine-readable: branch on it."})
    message = fields.String(required=True, metadata={
        "description": "For people: what went wrong and what to do."})
    status = fields.String(metadata={
        "description": "409s about a transcription (not ready, failed, not cancellable): its "
        "status."})
    available_pipeline_codes = fields.List(fields.String(), metadata={
        "description": "An unknown pipeline_code: the codes this server has."})
    max_bytes = fields.Integer(metadata={
        "description": "413: the largest file or body accepted, in bytes."})
    available_usd = fields.String(metadata={
        "description": "402 insufficient_balance, 409 balance_too_low: what is available, in "
        "exact decimal dollars."})
    required_usd = fields.String(metadata={
        "description": "402 insufficient_balance: what the work needs, exact decimal dollars."})
    max_endpoints = fields.Integer(metadata={
        "description": "409 webhook_endpoint_limit: how many endpoints an account may have."})
    # Last: from here on, ``fields`` in this class body is this field, not marshmallow's module.
    fields = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), metadata={
        "description": "Each offending field (dotted for nested ones, 'body' for the body as "
        "a whole, a header's or parameter's name) and what is wrong with it."})


class ApiErrorSchema(Schema):
    """Every error answer: ``{"error": {"code", "message", …}}``."""

    error = fields.Nested(ErrorDetailSchema, required=True)
