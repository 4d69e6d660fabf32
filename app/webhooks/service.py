"""Webhooks as an account manages them: subscriptions (webhook endpoints), the history of
deliveries with resend, and the signing secret.

What is sent, and when, is decided elsewhere: :mod:`app.webhooks.events` records deliveries
when a transcription ends, and the webhook worker sends them. This module answers the API
and the CLI; it knows nothing of HTTP beyond the errors it raises (no Flask: the CLI uses
the secret functions).

Every URL a webhook may go to (a transcription's ``webhook_url``, an endpoint's ``url``) is
checked here when it is given, by :func:`check_delivery_url`: resolved, and every address
must be one the service may connect to (:mod:`app.media.netguard`, the rules media URLs follow).
A refused one is a 422 naming the field, so the mistake shows when it is made rather than a
day of retries later. The webhook worker checks again at every attempt: DNS answers change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from app.errors import DeliveryNotResendable, NotFound, ValidationFailed, WebhookEndpointLimit
from app.media.netguard import AddressRefused, Resolver
from app.store.db import Database
from app.store.models import (
    Account,
    DeliveryStatus,
    Transcription,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    as_utc,
    new_id,
    utcnow,
)
from app.webhooks.secrets import ensure_secret
from app.webhooks.signing import new_secret

log = logging.getLogger(__name__)

#: The most live webhook endpoints an account may have: every event goes to each of them.
MAX_ENDPOINTS = 25
#: ``last_error`` of the deliveries a deleted endpoint will never get.
ENDPOINT_DELETED = "endpoint deleted: nothing more is sent to it"

#: Wakes the webhook worker after a commit (``app.webhooks.doorbell.ring_doorbell``).
Doorbell = Callable[[], None]


def _no_doorbell() -> None:
    """Without a doorbell the worker finds due deliveries at its next poll."""


# --------------------------------------------------------------------------- URL check


def check_delivery_url(url: str, resolver: Resolver, field: str) -> None:
    """A 422 naming ``field`` unless ``url`` may receive webhooks from this server.

    The schema has checked the shape (absolute http(s) with a host). Here: no spaces or
    control characters (they would be sent in the request line), a valid port, and a host
    that resolves with every address allowed. Resolving is not connecting: nothing is sent
    to the host now.
    """
    def refuse(message: str) -> ValidationFailed:
        return ValidationFailed(f"{field}: {message}", fields={field: [message]})

    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise refuse("Contains spaces or control characters: percent-encode them (a space "
                     "is %20).")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    if not 0 < port < 65536:
        raise refuse("The port is not a number from 1 to 65535.")
    try:
        resolver.resolve(parts.hostname or "", port)
    except AddressRefused as exc:
        reason = str(exc).split(";")[0]  # netguard says what was wrong before any ';'
        raise refuse(
            f"Refused: {reason}. Webhooks are only sent to hosts that resolve, and only to "
            "public addresses (not loopback, private, link-local or reserved): check the "
            "host name, and give a URL this server can reach on the internet (an operator "
            "can allow internal hosts with VOXHOOK_FETCH_ALLOWLIST).") from exc


# --------------------------------------------------------------------------- secrets


@dataclass(frozen=True)
class SigningSecret:
    """What the account's receivers verify with: the current secret, and until when the
    previous one still signs too (None when no rotation overlap is running)."""

    #: ``whsec_…``; left out of ``repr`` so it never reaches a log by accident.
    secret: str = field(repr=False)
    previous_valid_until: datetime | None = None


def signing_secret(session: Session, account_id: str, now: datetime) -> SigningSecret:
    """The account's secret, made on first use; :class:`NotFound` for an unknown account."""
    try:
        secret = ensure_secret(session, account_id)
    except KeyError:
        raise NotFound(f"No account '{account_id}'.") from None
    previous, until = session.execute(
        select(Account.webhook_secret_previous, Account.webhook_secret_previous_until)
        .where(Account.id == account_id)).one()
    if previous and until is not None and as_utc(until) > now:
        return SigningSecret(secret, as_utc(until))
    return SigningSecret(secret)


def rotate_secret(session: Session, account_id: str, now: datetime,
                  overlap_s: float) -> SigningSecret:
    """Replace the account's secret; the one it replaces keeps signing (as a second
    signature) for ``overlap_s`` seconds, so receivers can switch without a gap.

    Only the secret just replaced overlaps: rotating again within the overlap drops the one
    before it at once. The row is locked while it changes, so two rotations at once end
    with one new secret and the other as the previous (PostgreSQL; SQLite writes one at a
    time anyway).
    """
    account = session.get(Account, account_id, with_for_update=True)
    if account is None:
        raise NotFound(f"No account '{account_id}'.")
    if account.webhook_secret and overlap_s > 0:
        account.webhook_secret_previous = account.webhook_secret
        account.webhook_secret_previous_until = now + timedelta(seconds=overlap_s)
    else:
        account.webhook_secret_previous = account.webhook_secret_previous_until = None
    account.webhook_secret = new_secret()
    session.flush()
    log.info("webhook signing secret of account %s rotated", account_id)
    return SigningSecret(account.webhook_secret, account.webhook_secret_previous_until)



# --------------------------------------------------------------------------- deliveries


@dataclass(frozen=True)
class DeliveryHistory:
    """A delivery with its attempts, oldest first; reads like the delivery otherwise."""

    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]

    def __getattr__(self, name: str) -> Any:
        if name == "delivery":  # not set yet (copying): no delegation loop
            raise AttributeError(name)
        return getattr(self.delivery, name)


class WebhookService:
    """Endpoints, delivery history and resend, and the signing secret, per account."""

    def __init__(self, db: Database, resolver: Resolver, secret_overlap_s: float,
                 doorbell: Doorbell = _no_doorbell) -> None:
        self.db = db
        #: The SSRF rules URLs are checked with (the operator's allowlist and connect-to).
        self.resolver = resolver
        self.secret_overlap_s = secret_overlap_s
        self.doorbell = doorbell

    # ----------------------------------------------------------------- endpoints

    def create_endpoint(self, account_id: str, url: str, events: list[str],
                        description: str | None) -> WebhookEndpoint:
        """Subscribe ``url`` to ``events`` of the account (the schema checked their shape)."""
        check_delivery_url(url, self.resolver, "url")
        with self.db.session() as session:
            live = session.scalar(select(func.count()).select_from(WebhookEndpoint).where(
                WebhookEndpoint.account_id == account_id, WebhookEndpoint.deleted_at.is_(None)))
            if live >= MAX_ENDPOINTS:
                raise WebhookEndpointLimit(
                    f"The account already has {live} webhook endpoints, the most it may "
                    "have: DELETE /api/v1/webhook_endpoints/{id} one it no longer needs "
                    "(GET /api/v1/webhook_endpoints lists them), then try again.",
                    max_endpoints=MAX_ENDPOINTS)
            endpoint = WebhookEndpoint(id=new_id("we"), account_id=account_id, url=url,
                                       events=list(events), description=description,
                                       created_at=utcnow())
            session.add(endpoint)
        log.info("webhook endpoint %s created for account %s (%s)", endpoint.id, account_id,
                 ", ".join(events))
        return endpoint

    def endpoints(self, account_id: str) -> list[WebhookEndpoint]:
        """The account's live endpoints, oldest first."""
        with self.db.session() as session:
            return list(session.scalars(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.account_id == account_id,
                       WebhookEndpoint.deleted_at.is_(None))
                .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))

    def endpoint(self, account_id: str, endpoint_id: str) -> WebhookEndpoint:
        """One live endpoint of the account; another account's, or a deleted one, is 404."""
        with self.db.session() as session:
            endpoint = self._find_endpoint(session, account_id, endpoint_id)
            if endpoint.deleted_at is not None:
                raise _endpoint_not_found(endpoint_id)
            return endpoint

    def delete_endpoint(self, account_id: str, endpoint_id: str) -> WebhookEndpoint:
        """Stop sending to an endpoint: no new deliveries, and its pending ones end
        ``failed`` (last_error says why). Its history stays readable under each
        transcription. Deleting it again answers the same."""
        now = utcnow()
        with self.db.session() as session:
            endpoint = self._find_endpoint(session, account_id, endpoint_id)
            if endpoint.deleted_at is None:
                endpoint.deleted_at = now
                stopped = session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.endpoint_id == endpoint.id,
                           WebhookDelivery.status == DeliveryStatus.PENDING)
                    .values(status=DeliveryStatus.FAILED, next_attempt_at=None,
                            last_error=ENDPOINT_DELETED)
                    .execution_options(synchronize_session=False)).rowcount
                log.info("webhook endpoint %s deleted; %d pending deliveries stopped",
                         endpoint.id, stopped)
            return endpoint

    @staticmethod
    def _find_endpoint(session: Session, account_id: str, endpoint_id: str
                       ) -> WebhookEndpoint:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None or endpoint.account_id != account_id:
            raise _endpoint_not_found(endpoint_id)
        return endpoint

    # ----------------------------------------------------------------- deliveries

    def deliveries(self, account_id: str, transcription_id: str) -> list[DeliveryHistory]:
        """Every delivery of the account's transcription, oldest first, with its attempts."""
        with self.db.session() as session:
            self._find_transcription(session, account_id, transcription_id)
            # Per event: the transcription's own webhook_url, then the subscriptions in
            # the order they were made.
            deliveries = list(session.scalars(
                select(WebhookDelivery)
                .outerjoin(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.transcription_id == transcription_id,
                       WebhookDelivery.account_id == account_id)
                .order_by(WebhookDelivery.created_at,
                          case((WebhookDelivery.endpoint_id.is_(None), 0), else_=1),
                          WebhookEndpoint.created_at, WebhookEndpoint.id,
                          WebhookDelivery.id)))
            attempts = _attempts_of(session, [delivery.id for delivery in deliveries])
        return [DeliveryHistory(delivery, attempts.get(delivery.id, []))
                for delivery in deliveries]

    def resend(self, account_id: str, transcription_id: str,
               delivery_id: str) -> DeliveryHistory:
        """Send a delivery again now: the same webhook-id and body, with a fresh timestamp
        and signature when it is sent.

        It becomes pending, due now (a pending one waiting for its next retry is brought
        forward). Should that attempt fail, the retry schedule goes on from where the
        delivery was: one that had used it up gets this one attempt. One whose endpoint was
        deleted is a 409: nothing more goes there.
        """
        with self.db.session() as session:
            self._find_transcription(session, account_id, transcription_id)
            delivery = session.get(WebhookDelivery, delivery_id)
            if (delivery is None or delivery.transcription_id != transcription_id
                    or delivery.account_id != account_id):
                raise NotFound(
                    f"No webhook delivery '{delivery_id}' of transcription "
                    f"'{transcription_id}': GET /api/v1/transcriptions/{transcription_id}/"
                    "webhook_deliveries lists them.")
            if delivery.endpoint_id is not None:
                endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
                if endpoint is None or endpoint.deleted_at is not None:
                    raise DeliveryNotResendable(
                        f"Delivery '{delivery_id}' went to webhook endpoint "
                        f"'{delivery.endpoint_id}', which was deleted; nothing more is sent "
                        "there. Create a new endpoint (POST /api/v1/webhook_endpoints) for "
                        "future events.")
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = utcnow()
            session.flush()
            attempts = _attempts_of(session, [delivery.id]).get(delivery.id, [])
        log.info("webhook delivery %s of transcription %s resent on request", delivery_id,
                 transcription_id)
        self.doorbell()
        return DeliveryHistory(delivery, attempts)

    @staticmethod
    def _find_transcription(session: Session, account_id: str, transcription_id: str) -> None:
        """404 unless the transcription is the account's and not deleted (as its GET)."""
        found = session.scalar(select(Transcription.id).where(
            Transcription.id == transcription_id, Transcription.account_id == account_id,
            Transcription.deleted_at.is_(None)))
        if found is None:
            raise NotFound(f"No transcription '{transcription_id}' for this API key's "
                           "account.")

    # ----------------------------------------------------------------- secret

    def secret(self, account_id: str) -> SigningSecret:
        with self.db.session() as session:
            return signing_secret(session, account_id, utcnow())

    def rotate_secret(self, account_id: str) -> SigningSecret:
        with self.db.session() as session:
            return rotate_secret(session, account_id, utcnow(), self.secret_overlap_s)


def _attempts_of(session: Session, delivery_ids: list[str]) -> dict[str, list[WebhookAttempt]]:
    """The attempts of those deliveries, oldest first, by delivery id (one query)."""
    found: dict[str, list[WebhookAttempt]] = {}
    if not delivery_ids:
        return found
    for attempt in session.scalars(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)):
        found.setdefault(attempt.delivery_id, []).append(attempt)
    return found


def _endpoint_not_found(endpoint_id: str) -> NotFound:
    return NotFound(f"No webhook endpoint '{endpoint_id}' for this API key's account: GET "
                    "/api/v1/webhook_endpoints lists them.")
