"""Why a transcription failed, in terms its user can act on.

Each error has a stable ``code`` (stored with the transcription, shown by both surfaces) and a
message that says what went wrong and what to do. Anything else that escapes the pipeline is
a bug: the job is failed with ``internal_error`` and the traceback goes to the worker's log.

Hierarchy::

    PipelineError
    ├── FetchError                 the URL could not be downloaded
    │   ├── UrlRefused             scheme or address not allowed (SSRF guard)
    │   ├── HttpStatusError        the server answered 4xx/5xx (404 has its own message)
    │   ├── DownloadTooLarge       over VOXHOOK_MAX_DOWNLOAD_MB
    │   ├── DownloadTimeout        connect, read or total time exceeded
    │   ├── DownloadIncomplete     the connection closed before the declared length arrived
    │   ├── WebPageNotMedia        the link leads to a web page (private file, login wall)
    │   └── UploadMissing          the uploaded file is gone (expired or deleted)
    ├── MediaError                 the bytes are not usable audio
    │   ├── EmptyMedia             nothing was downloaded, or no samples decoded
    │   ├── NotAudio               not a media file, or no audio track
    │   └── AudioTooLong           longer than VOXHOOK_MAX_AUDIO_MINUTES
    ├── InsufficientBalance        billing is on and the account cannot pay for the audio
    ├── ModelUnavailable           the pipeline's model could not be loaded
    ├── EngineFailed               a remote speech engine failed, retries spent; its code
    │                              says how (engine_unavailable, engine_rate_limited,
    │                              engine_timeout, engine_rejected, engine_bad_answer,
    │                              engine_url_refused); never charged
    ├── JobTimedOut                the job ran past its deadline
    ├── WorkerLost                 the worker died mid-job, and its retry too
    └── InternalFailure            a bug: the traceback is in the worker's log

:class:`Cancelled` is not a failure: the user cancelled (or deleted) the transcription while
it ran, or the worker handed it back because it is stopping, and the job stops without
recording anything more.
"""

from __future__ import annotations


def summarize(exc: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters), or its type's name:
    enough to say in a user-facing message what went wrong, without a traceback."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


class PipelineError(Exception):
    """A failure the user can act on; ``code`` is stable, ``message`` is for people."""

    code = "pipeline_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FetchError(PipelineError):
    code = "fetch_failed"


class UrlRefused(FetchError):
    code = "url_refused"


class HttpStatusError(FetchError):
    code = "url_http_error"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class DownloadTooLarge(FetchError):
    code = "file_too_large"


class DownloadTimeout(FetchError):
    code = "download_timeout"


class DownloadIncomplete(FetchError):
    code = "download_incomplete"


class WebPageNotMedia(FetchError):
    code = "link_is_web_page"


class UploadMissing(FetchError):
    code = "upload_missing"


class MediaError(PipelineError):
    code = "unsupported_media"


class EmptyMedia(MediaError):
    code = "empty_file"


class NotAudio(MediaError):
    code = "not_audio"


class AudioTooLong(MediaError):
    code = "audio_too_long"


class InsufficientBalance(PipelineError):
    code = "insufficient_balance"


class ModelUnavailable(PipelineError):
    code = "model_unavailable"


class EngineFailed(PipelineError):
    """A remote engine failed; ``code`` is one of the ``engine_*`` codes (see the tree)."""

    code = "engine_failed"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class JobTimedOut(PipelineError):
    code = "timeout"


class WorkerLost(PipelineError):
    """Recorded by ``app.transcriptions.recovery`` (``WORKER_LOST_CODE``), which notices dead
    workers."""

    code = "worker_lost"


class InternalFailure(PipelineError):
    code = "internal_error"


class Cancelled(BaseException):
    """The transcription was cancelled, deleted or handed back while its job ran: stop,
    record nothing.

    A :class:`BaseException`, like :class:`KeyboardInterrupt` and asyncio's
    ``CancelledError``: it is raised into whatever a stage is doing (a socket read, a
    decoder, a model's callback), and the ``except Exception`` that a stage or a library
    keeps for its own faults must not turn it into a failure of the customer's job (a stop
    during a download once became ``fetch_failed``)."""
