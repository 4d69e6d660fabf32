"""Signing webhook deliveries the Standard Webhooks way (https://www.standardwebhooks.com).

A receiver verifies a delivery with any Standard Webhooks library and its account's secret:
the signature is an HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}."`` followed by the
exact body bytes, so a changed byte anywhere (id, time or body) fails to verify, and the
timestamp lets the receiver refuse old messages replayed at it.

Secrets look like ``whsec_<base64>``. During a rotation the previous secret keeps signing for
an overlap period: ``webhook-signature`` then carries one ``v1,…`` signature per secret,
space-separated, and a receiver holding either secret verifies.

Stdlib only: the API creates and shows secrets, the webhook worker signs with them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as random

#: What every secret starts with (the Standard Webhooks convention).
SECRET_PREFIX = "whsec_"
#: Random bytes in a new secret (the specification asks for 24 to 64).
SECRET_BYTES = 32
#: Shortest key accepted; shorter ones are too easy to guess.
MIN_SECRET_BYTES = 24
#: Longest key accepted (the specification's upper bound).
MAX_SECRET_BYTES = 64
#: The signature scheme: HMAC-SHA256, symmetric.
SCHEME = "v1"


def new_secret() -> str:
    """A fresh random signing secret, ``whsec_`` followed by base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    """The HMAC key inside ``secret``; ValueError (never quoting the secret) if malformed."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with '{SECRET_PREFIX}'")
    encoded = secret[len(SECRET_PREFIX):]
    try:  # padding is optional, as some providers leave it out
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"a webhook secret is '{SECRET_PREFIX}' followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} "
                         f"bytes, not {len(key)}")
    return key


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    """What the HMAC covers: id, timestamp and the body, exactly as sent."""
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature, ``v1,<base64 HMAC-SHA256>``."""
    digest = hmac.new(secret_bytes(secret), signed_content(msg_id, timestamp, body),
                      hashlib.sha256).digest()
    return f"{SCHEME},{base64.b64encode(digest).decode('ascii')}"


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated (the
    current secret first, then the previous one during a rotation's overlap)."""
    if not secrets:
        raise ValueError("at least one webhook secret is needed to sign")
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def headers(msg_id: str, timestamp: int, body: bytes, secrets: list[str]) -> dict[str, str]:
    """Every header a delivery carries besides the transport's own."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
    }


def verify(secret: str, msg_id: str, timestamp: int, body: bytes, signature: str) -> bool:
    """Whether any ``v1`` signature in ``signature`` is ``secret``'s (constant time).

    For our own documentation and checks; it does not judge the timestamp's age, which a
    receiver must (Standard Webhooks libraries refuse more than five minutes either way).
    """
    expected = sign(secret, msg_id, timestamp, body).encode()
    return any(hmac.compare_digest(expected, candidate.encode())
               for candidate in signature.split(" ") if candidate.startswith(f"{SCHEME},"))
