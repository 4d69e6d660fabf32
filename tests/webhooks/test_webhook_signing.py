"""Webhook signatures verify with an independent Standard Webhooks implementation (the
``standardwebhooks`` package), and fail to after any byte changes."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.webhooks.signing import (
    headers,
    new_secret,
    secret_bytes,
    sign,
    signature_header,
    verify,
)

BODY = json.dumps({"type": "transcription.completed",
                   "data": {"id": "tr_1", "text": "Ask not — ☃"}}).encode()
MSG_ID = "msg_2b9f0c1d"


def _verify(secret: str, body: bytes, sent: dict[str, str]) -> object:
    return Webhook(secret).verify(body, sent)


def test_a_signed_delivery_verifies_with_standardwebhooks():
    secret, now = new_secret(), int(time.time())
    sent = headers(MSG_ID, now, BODY, [secret])
    assert _verify(secret, BODY, sent) == json.loads(BODY)
    assert sent["webhook-id"] == MSG_ID and sent["webhook-timestamp"] == str(now)
    assert sent["content-type"] == "application/json"
    assert sent["webhook-signature"].startswith("v1,")
    assert verify(secret, MSG_ID, now, BODY, sent["webhook-signature"])


@pytest.mark.parametrize("change", ["body", "id", "timestamp", "signature"])
def test_one_changed_byte_fails_to_verify(change):
    secret, now = new_secret(), int(time.time())
    sent, body = headers(MSG_ID, now, BODY, [secret]), BODY
    if change == "body":
        body = BODY.replace(b"tr_1", b"tr_2")
    elif change == "id":
        sent["webhook-id"] = MSG_ID[:-1] + "e"
    elif change == "timestamp":
        sent["webhook-timestamp"] = str(now + 1)
    else:
        raw = bytearray(base64.b64decode(sent["webhook-signature"][3:]))
        raw[0] ^= 1
        sent["webhook-signature"] = "v1," + base64.b64encode(bytes(raw)).decode()
    with pytest.raises(WebhookVerificationError):
        _verify(secret, body, sent)
    assert not verify(secret, sent["webhook-id"], int(sent["webhook-timestamp"]), body,
                      sent["webhook-signature"])


def test_another_secret_fails_to_verify():
    now = int(time.time())
    sent = headers(MSG_ID, now, BODY, [new_secret()])
    with pytest.raises(WebhookVerificationError):
        _verify(new_secret(), BODY, sent)


def test_during_a_rotation_both_secrets_sign_and_each_alone_verifies():
    current, previous, now = new_secret(), new_secret(), int(time.time())
    sent = headers(MSG_ID, now, BODY, [current, previous])
    signatures = sent["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert signatures[0] == sign(current, MSG_ID, now, BODY)
    assert signatures[1] == sign(previous, MSG_ID, now, BODY)
    for secret in (current, previous):
        assert _verify(secret, BODY, sent) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        _verify(new_secret(), BODY, sent)


def test_a_known_vector():
    """The example of the Standard Webhooks specification (its reference libraries agree)."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    assert Webhook(secret).sign("msg_p5jXN8AQM9LWM0D4loKWxJek",
                                datetime.fromtimestamp(1614265330, UTC), body.decode()) == expected


def test_new_secrets_are_random_and_well_formed():
    made = {new_secret() for _ in range(20)}
    assert len(made) == 20
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(secret_bytes(secret)) == 32
        Webhook(secret)  # the independent implementation accepts it


@pytest.mark.parametrize("secret", [
    "", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!",
    "whsec_" + base64.b64encode(b"short").decode(), "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
])
def test_malformed_secrets_are_refused_without_being_quoted(secret):
    with pytest.raises(ValueError) as refused:
        secret_bytes(secret)
    assert not secret or secret not in str(refused.value)
    with pytest.raises(ValueError):
        signature_header([secret], MSG_ID, 1, BODY)


def test_signing_needs_a_secret():
    with pytest.raises(ValueError):
        signature_header([], MSG_ID, 1, BODY)
