"""What a job tells the API's waiting requests: segments as they are recognised, and the
end once the row is committed (see :mod:`app.transcriptions.waiting`).

One Redis client per worker process and Redis URL; every call is best effort (a request
that misses a message re-reads the row within seconds).
"""

from __future__ import annotations

from functools import lru_cache

from redis import Redis

from app.config import Settings
from app.transcriptions.waiting import announce_final, publish_segment


@lru_cache(maxsize=4)
def _redis(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)


def job_ended(settings: Settings, transcription_id: str) -> None:
    """The transcription's final row is committed: wake whoever waits for it."""
    announce_final(_redis(settings.redis_url), settings.queue_name, transcription_id)


class SegmentPublisher:
    """Streams one job's segments, numbered in the order the engine gives them."""

    def __init__(self, settings: Settings, transcription_id: str) -> None:
        self.settings = settings
        self.transcription_id = transcription_id
        self.count = 0

    def __call__(self, start: float, end: float, text: str) -> None:
        publish_segment(_redis(self.settings.redis_url), self.settings.queue_name,
                        self.transcription_id, self.count, start, end, text)
        self.count += 1
