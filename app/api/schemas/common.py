"""What every resource's schemas share: strict booleans, URL checks, the error body."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from marshmallow import (
    Schema,
    ValidationError,
    fields,
)


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


def validate_http_url(value: str) -> None:
    """An absolute http(s) URL with a host; anything else is refused before it is queued."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Must be an absolute http:// or https:// URL.")
    if len(value) > 4096:
        raise ValidationError("Must be at most 4096 characters.")


#: How every webhook is signed, for the descriptions of the fields that set one.
WEBHOOK_SIGNING = ("Signed per Standard Webhooks: headers webhook-id (the same on every "
                   "attempt: deduplicate on it), webhook-timestamp and webhook-signature "
                   "('v1,' + base64 HMAC-SHA256 of 'id.timestamp.body' under the account's "
                   "secret, GET /api/v1/webhook_secret).")


class ErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class ApiErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)
