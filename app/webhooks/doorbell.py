"""The webhook doorbell: tells the webhook worker at once that a delivery is waiting.

Deliveries live in the database (``webhook_deliveries``, an outbox); the webhook worker polls
it every half second anyway, so a lost ring only costs that half second. Producers (the
outbox when a transcription ends, a resend) ring after their commit, so the worker never
wakes before the row is visible. The bell is a Redis list the worker BLPOPs; it is trimmed
to one entry, so rings while no worker listens do not pile up.
"""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import RedisError

from app.config import Settings

log = logging.getLogger(__name__)

#: ``<prefix><queue name>``: deployments sharing a Redis (different queues) keep apart.
DOORBELL_PREFIX = "voxhook-webhooks:doorbell:"


def doorbell_key(settings: Settings) -> str:
    """The Redis list this deployment's webhook workers listen on."""
    return DOORBELL_PREFIX + settings.queue_name


def ring_doorbell(redis: Redis, settings: Settings) -> None:
    """Wake a webhook worker now. Never raises: with Redis away the poll still finds the
    delivery, so a failed ring is only logged."""
    key = doorbell_key(settings)
    try:
        with redis.pipeline(transaction=False) as pipe:
            pipe.lpush(key, "1")
            pipe.ltrim(key, 0, 0)
            pipe.execute()
    except RedisError as exc:
        log.warning("could not ring the webhook doorbell (%s); the worker's poll will find "
                    "the delivery", exc)
