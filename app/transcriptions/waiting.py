"""Waiting for a transcription to end without polling: a Redis notification, the database as
the truth.

The worker commits a final row (completed, failed, cancelled), then publishes the
transcription's id on the deployment's *final* channel (:func:`announce_final`). Each API
process holds one subscription to that channel (:class:`FinalNotifications`, started on first
use, so after gunicorn forks) and wakes the requests waiting for that id. A woken request
reads the row again: the message only says "look now", the database says what happened.

Nothing is lost when Redis is away or a message is missed: a waiter re-reads the row every
:data:`RECHECK_S` seconds anyway, and every waiter is woken when the subscription is
re-established. Under gunicorn's gevent workers (the default serving model, see
``docs/deployment.md``) a waiting request is a greenlet parked on an event, not a thread, so
hundreds of waiting requests cost a few kilobytes each.

The same module carries the segment stream of a running job (:func:`publish_segment`,
:class:`SegmentStream`): a Redis stream per transcription that ``stream=true`` requests of
the OpenAI surface relay as server-sent events while the worker decodes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

#: The longest ``?wait=`` a GET may ask for, in seconds.
MAX_WAIT_S = 60
#: A waiter re-reads the row this often even without a notification (missed messages,
#: cancellations by the API, Redis away): the database is the truth.
RECHECK_S = 5.0
#: A segment stream is kept this long after its last entry (a client that reconnects late
#: still finds it; the stored result is the lasting copy).
STREAM_TTL_S = 3600
#: At most this many entries are kept per segment stream.
STREAM_MAX_ENTRIES = 10_000


def final_channel(queue_name: str) -> str:
    """The pub/sub channel on which this deployment's workers announce final rows."""
    return f"voxhook:{queue_name}:final"


def stream_key(queue_name: str, transcription_id: str) -> str:
    """The Redis stream of a transcription's segments, in the order the worker made them."""
    return f"voxhook:{queue_name}:segments:{transcription_id}"


def announce_final(redis: Redis, queue_name: str, transcription_id: str) -> None:
    """Tell waiting requests that ``transcription_id`` is final; call after the commit.

    Also closes its segment stream, so a relaying request stops at once. Never raises:
    a waiter re-reads the row within :data:`RECHECK_S` anyway.
    """
    try:
        with redis.pipeline(transaction=False) as pipe:
            pipe.xadd(stream_key(queue_name, transcription_id), {"type": "end"},
                      maxlen=STREAM_MAX_ENTRIES, approximate=True)
            pipe.expire(stream_key(queue_name, transcription_id), STREAM_TTL_S)
            pipe.publish(final_channel(queue_name), transcription_id)
            pipe.execute()
    except RedisError as exc:
        log.warning("transcription %s: could not announce its end (%s); waiting requests "
                    "will see it on their next re-read", transcription_id, exc)


def publish_segment(redis: Redis, queue_name: str, transcription_id: str, index: int,
                    start: float, end: float, text: str) -> None:
    """Append one recognised segment to the transcription's stream (best effort)."""
    key = stream_key(queue_name, transcription_id)
    entry = {"type": "segment", "index": str(index), "start": f"{start:.3f}",
             "end": f"{end:.3f}", "text": text}
    try:
        with redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, entry, maxlen=STREAM_MAX_ENTRIES, approximate=True)
            pipe.expire(key, STREAM_TTL_S)
            pipe.execute()
    except RedisError as exc:
        log.warning("transcription %s: segment %d not streamed (%s)", transcription_id,
                    index, exc)


@dataclass(frozen=True)
class StreamedSegment:
    index: int
    start: float
    end: float
    text: str


class SegmentStream:
    """Reads a transcription's segment stream from the start, blocking for new entries."""

    def __init__(self, redis: Redis, queue_name: str, transcription_id: str) -> None:
        self.redis = redis
        self.key = stream_key(queue_name, transcription_id)
        self._last_id = "0-0"
        self.ended = False

    def read(self, block_s: float) -> list[StreamedSegment]:
        """Segments added since the last read (waiting up to ``block_s`` for one); sets
        :attr:`ended` when the worker closed the stream."""
        try:
            answer = self.redis.xread({self.key: self._last_id}, count=100,
                                      block=max(int(block_s * 1000), 1))
        except RedisError as exc:
            log.warning("segment stream %s unreadable (%s)", self.key, exc)
            time.sleep(block_s)
            return []
        segments = []
        for _key, entries in answer or ():
            for entry_id, raw in entries:
                self._last_id = _text(entry_id)
                fields = {_text(k): _text(v) for k, v in raw.items()}
                if fields.get("type") == "end":
                    self.ended = True
                    continue
                segments.append(StreamedSegment(int(fields["index"]), float(fields["start"]),
                                                float(fields["end"]), fields["text"]))
        return segments


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class FinalNotifications:
    """One process's subscription to the final channel, and the requests waiting on it.

    The listener runs in a daemon thread (a greenlet under gevent) started by the first
    :meth:`watch`, so it lives in the process that serves the requests, never in a gunicorn
    master that forks.
    """

    def __init__(self, redis_url: str, queue_name: str) -> None:
        self.redis_url = redis_url
        self.channel = final_channel(queue_name)
        self._lock = threading.Lock()
        self._waiting: dict[str, set[threading.Event]] = {}
        self._listener: threading.Thread | None = None
        #: Set once the subscription is live (tests and benchmarks wait for it).
        self.subscribed = threading.Event()

    def watch(self, transcription_id: str) -> threading.Event:
        """An event set when ``transcription_id`` is announced final (or the subscription
        was re-established); :meth:`unwatch` it when done."""
        event = threading.Event()
        with self._lock:
            self._waiting.setdefault(transcription_id, set()).add(event)
            if self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(target=self._listen, daemon=True,
                                                  name="voxhook-final-notifications")
                self._listener.start()
        return event

    def unwatch(self, transcription_id: str, event: threading.Event) -> None:
        with self._lock:
            events = self._waiting.get(transcription_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[transcription_id]

    @property
    def waiting(self) -> int:
        """How many requests are waiting now."""
        with self._lock:
            return sum(len(events) for events in self._waiting.values())

    def _wake(self, transcription_id: str | None) -> None:
        """Wake the waiters of one transcription, or every waiter (None)."""
        with self._lock:
            if transcription_id is None:
                events = [e for group in self._waiting.values() for e in group]
            else:
                events = list(self._waiting.get(transcription_id, ()))
        for event in events:
            event.set()

    def _listen(self) -> None:
        while True:
            try:
                redis = Redis.from_url(self.redis_url, socket_connect_timeout=5,
                                       health_check_interval=30)
                pubsub = redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self.subscribed.set()
                self._wake(None)  # anything missed while unsubscribed: re-read now
                while True:
                    message = pubsub.get_message(timeout=30.0)
                    if message is not None and message["type"] == "message":
                        self._wake(_text(message["data"]))
            except Exception as exc:  # Redis away: waiters fall back to re-reading
                self.subscribed.clear()
                log.warning("final-notification subscription lost (%s); retrying in 1 s", exc)
                time.sleep(1.0)


def wait_until_final(notifications: FinalNotifications, transcription_id: str,
                     timeout_s: float, load: Callable[[], Any],
                     is_final: Callable[[Any], bool]) -> Any:
    """``load()`` again and again until ``is_final`` says so or ``timeout_s`` has passed;
    the last thing loaded. Wakes on the notification, else every :data:`RECHECK_S`."""
    event = notifications.watch(transcription_id)  # before the first read: nothing slips by
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            event.clear()
            found = load()
            left = deadline - time.monotonic()
            if is_final(found) or left <= 0:
                return found
            event.wait(min(left, RECHECK_S))
    finally:
        notifications.unwatch(transcription_id, event)
