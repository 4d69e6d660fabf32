"""The account's own API: ``/api/v1/me``, ``/api/v1/keys``, ``/api/v1/usage``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
)

from app.api.schemas.common import Text
from app.transcriptions.representation import (
    UtcDateTime,
)


def validate_key_name(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be empty: name the key after where it will be used.")
    if len(value.strip()) > 200:
        raise ValidationError("Must be at most 200 characters.")


class ApiKeyCreateSchema(Schema):
    """Body of ``POST /api/v1/keys``."""

    name = Text(
        required=True, validate=validate_key_name,
        error_messages={"required": "Missing: name the key after where it will be used "
                        "(e.g. 'zapier' or 'n8n-production'), so it can be told apart."},
        metadata={"description": "What the key is for (1 to 200 characters; surrounding "
                  "spaces are dropped)."})


class ApiKeySchema(Schema):
    """An API key as listed: never its secret, only its first characters."""

    id = fields.String(required=True, metadata={"description": "key_…"})
    object = fields.Constant("api_key")
    name = fields.String()
    prefix = fields.String(metadata={"description": "The secret's first characters "
                                     "(sk_live_ab12), to recognise it."})
    created_at = UtcDateTime()
    revoked_at = UtcDateTime(allow_none=True, metadata={"description": "Null while active."})
    active = fields.Boolean(attribute="is_active")


class ApiKeyListedSchema(ApiKeySchema):
    current = fields.Boolean(metadata={"description": "Whether this is the key making the "
                                       "request."})


class ApiKeyCreatedSchema(ApiKeySchema):
    """``POST /api/v1/keys``: the only time the secret is shown."""

    secret = fields.String(required=True, metadata={
        "description": "The key itself (sk_live_…). Shown once: store it now; only its hash "
        "is kept."})


class ApiKeyListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(ApiKeyListedSchema), metadata={
        "description": "Oldest first, revoked ones included."})


class MeAccountSchema(Schema):
    id = fields.String()
    name = fields.String()


class MeKeySchema(Schema):
    id = fields.String()
    name = fields.String()
    prefix = fields.String()


class BalancesSchema(Schema):
    """The wallet, in exact decimal dollars (strings)."""

    monthly_credit_usd = fields.String(metadata={
        "description": "Credit granted at the start of every calendar month (UTC)."})
    credit_remaining_usd = fields.String(metadata={
        "description": "Monthly credit left this month; spent first, expires at month end."})
    topup_usd = fields.String(metadata={"description": "Top-up balance, spent after the "
                                        "monthly credit; it does not expire."})
    held_usd = fields.String(metadata={"description": "Held for transcriptions running now."})
    available_usd = fields.String(metadata={
        "description": "What new transcriptions can spend: credit and top-up, less held."})
    period = fields.String(allow_none=True, metadata={
        "description": "The month (YYYY-MM, UTC) the monthly credit belongs to."})


class MeSchema(Schema):
    """``GET /api/v1/me``."""

    object = fields.Constant("me")
    account = fields.Nested(MeAccountSchema)
    key = fields.Nested(MeKeySchema, metadata={"description": "The key making the request."})
    billing = fields.String(metadata={
        "enum": ["on", "off"], "description": "on: transcriptions are paid from the wallet "
        "and refused when it cannot pay; off: costs are computed and shown, nothing is "
        "charged."})
    balances = fields.Nested(BalancesSchema)


#: The longest range GET /api/v1/usage answers, in days.
MAX_USAGE_DAYS = 366


#: The range it answers when none is given: the last 30 days (UTC), today included.
DEFAULT_USAGE_DAYS = 30


class UsageQuerySchema(Schema):
    """Query of ``GET /api/v1/usage``: a range of UTC days, both ends included."""

    class Meta:
        unknown = RAISE

    start = fields.Date(load_default=None, error_messages={
        "invalid": "Not a date: use YYYY-MM-DD (a UTC day)."}, metadata={
        "description": f"First day (YYYY-MM-DD, UTC), included; default: {DEFAULT_USAGE_DAYS} "
        "days up to end."})
    end = fields.Date(load_default=None, error_messages={
        "invalid": "Not a date: use YYYY-MM-DD (a UTC day)."}, metadata={
        "description": "Last day (YYYY-MM-DD, UTC), included; default: today (UTC)."})

    @post_load
    def _range(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Fill in the defaults, then check the range: in order, and not too long."""
        end = data["end"] or datetime.now(UTC).date()
        start = data["start"] or end - timedelta(days=DEFAULT_USAGE_DAYS - 1)
        if start > end:
            message = f"start ({start}) is after end ({end}): swap them, or give end too."
            raise ValidationError({"start": [message], "end": [message]})
        days = (end - start).days + 1
        if days > MAX_USAGE_DAYS:
            message = (f"The range {start}..{end} is {days} days long; ask for at most "
                       f"{MAX_USAGE_DAYS} days at a time (give both start and end).")
            raise ValidationError({"start": [message], "end": [message]})
        return {"start": start, "end": end}


class UsageFiguresSchema(Schema):
    spend_usd = fields.String(metadata={"description": "Exact decimal dollars: the costs of "
                                        "completed transcriptions."})
    audio_seconds = fields.Float(metadata={"description": "Their audio, in seconds (to the "
                                           "millisecond)."})
    transcriptions = fields.Integer(metadata={"description": "How many completed."})


class UsageDaySchema(UsageFiguresSchema):
    date = fields.String(metadata={"description": "YYYY-MM-DD (UTC)."})


class UsageKeySchema(Schema):
    key = fields.Nested(ApiKeySchema)
    total = fields.Nested(UsageFiguresSchema)
    days = fields.List(fields.Nested(UsageDaySchema), metadata={
        "description": "Days with usage only, oldest first."})


class UsageSchema(Schema):
    """``GET /api/v1/usage``."""

    object = fields.Constant("usage")
    start = fields.String(metadata={"description": "First day (UTC), included."})
    end = fields.String(metadata={"description": "Last day (UTC), included."})
    total = fields.Nested(UsageFiguresSchema, metadata={
        "description": "The account's; the keys' totals add up to it exactly."})
    days = fields.List(fields.Nested(UsageDaySchema), metadata={
        "description": "The account's days with usage, oldest first."})
    keys = fields.List(fields.Nested(UsageKeySchema), metadata={
        "description": "Keys with usage in the range (revoked ones too), oldest key first."})
