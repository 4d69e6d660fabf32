"""The request id of what is running now (a request, or the job it caused).

A context variable, so each request (thread or greenlet) and each job has its own; the
logging filter of :mod:`.logs` puts it on every record.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("voxhook_request_id", default=None)

#: What a caller's ``X-Request-Id`` may look like; anything else is replaced by a new id
#: (it goes into logs, so it must not carry newlines or be unbounded).
_ACCEPTED = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def accept_or_make(given: str | None) -> str:
    """The caller's id when it is sane, else a new one."""
    if given and _ACCEPTED.fullmatch(given.strip()):
        return given.strip()
    return uuid.uuid4().hex
