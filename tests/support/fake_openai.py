"""A loopback server that answers like an OpenAI-compatible inference server (vLLM, Ollama):
``POST /v1/audio/transcriptions`` and ``POST /v1/chat/completions``, errors and slowness
included, for tests of remote engines and AI analysis. It plays what we cannot run here (a
GPU server with Voxtral or an LLM); nothing of Voxhook is patched.

Speech: each request's WAV is read for real; the "transcript" is one word a second
(``w0``, ``w1``… at [n + 0.1, n + 0.6] in the piece's own times) in 5-second segments, so a
test can check where the service put each piece. Like vLLM set up for Voxtral, a piece longer
than ``max_seconds`` is refused with 400. ``script`` lists what the next requests get instead
(``503``, ``429``, ``401``, ``slow``, ``malformed``), one entry per request.

Chat: the answer for an analysis comes from ``answers`` (by the ``json_schema`` name the
request carries, else the first key the system prompt's schema names); ``chat_script`` lists
per-request replacements (``bad``: JSON out of schema, ``slow``, ``503``).
"""

from __future__ import annotations

import contextlib
import email.parser
import io
import json
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: A valid answer for each default analysis.
DEFAULT_ANSWERS: dict[str, dict[str, Any]] = {
    "summary": {"summary": "A short test conversation."},
    "key_points": {"key_points": ["First point.", "Second point."]},
    "action_items": {"action_items": [{"task": "Send the report", "owner": "SPEAKER 1",
                                       "due": "Friday"}]},
    "chapters": {"chapters": [{"title": "Opening", "start": 0.0, "summary": "It starts."}]},
    "topics": {"topics": ["testing"]},
    "sentiment": {"overall": "neutral", "speakers": [
        {"speaker": "SPEAKER 1", "sentiment": "neutral", "reason": "Matter-of-fact."}]},
}


class FakeOpenAi:
    """The server, on a free loopback port, for use in a ``with`` block."""

    def __init__(self, max_seconds: float | None = None, words: bool = True,
                 slow_s: float = 5.0) -> None:
        self.max_seconds = max_seconds
        self.words = words
        self.slow_s = slow_s
        self.script: list[str] = []
        self.chat_script: list[str] = []
        self.answers = dict(DEFAULT_ANSWERS)
        #: Per transcription request: (piece seconds, form fields, Authorization header).
        self.audio_requests: list[tuple[float, dict[str, list[str]], str | None]] = []
        #: Per chat request: the JSON body.
        self.chat_requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAi:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def next_step(self, script: list[str]) -> str | None:
        with self.lock:
            return script.pop(0) if script else None

    def transcribe(self, seconds: float) -> tuple[int, dict[str, Any]]:
        if self.max_seconds is not None and seconds > self.max_seconds + 0.01:
            return 400, {"error": {"message": f"Maximum clip duration ({self.max_seconds:g}s) "
                                   "exceeded", "type": "BadRequestError", "code": 400}}
        words = [{"word": f"w{n}", "start": n + 0.1, "end": n + 0.6}
                 for n in range(int(seconds))]
        segments = [{"id": i, "start": float(s), "end": float(min(s + 5, seconds)),
                     "text": " ".join(w["word"] for w in words[s:s + 5]),
                     "avg_logprob": -0.2}
                    for i, s in enumerate(range(0, int(seconds), 5))]
        body: dict[str, Any] = {"task": "transcribe", "language": "english",
                                "duration": seconds, "segments": segments,
                                "text": " ".join(w["word"] for w in words)}
        if self.words:
            body["words"] = words
        return 200, body

    def chat(self, request: dict[str, Any]) -> dict[str, Any] | str:
        format_ = request.get("response_format") or {}
        name = (format_.get("json_schema") or {}).get("name")
        if name is None:
            system = request["messages"][0]["content"]
            name = next((key for key in self.answers if f'"{key}"' in system), "summary")
        return self.answers[name]


def _handler(fake: FakeOpenAi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.endswith("/audio/transcriptions"):
                self._audio(body)
            elif self.path.endswith("/chat/completions"):
                self._chat(json.loads(body))
            else:
                self._send(404, {"error": {"message": "not found"}})

        def _audio(self, body: bytes) -> None:
            message = email.parser.BytesParser().parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
            fields: dict[str, list[str]] = {}
            seconds = 0.0
            for part in message.get_payload():
                name = part.get_param("name", header="content-disposition")
                data = part.get_payload(decode=True)
                if name == "file":
                    with wave.open(io.BytesIO(data)) as reader:
                        seconds = reader.getnframes() / reader.getframerate()
                else:
                    fields.setdefault(name, []).append(data.decode())
            with fake.lock:
                fake.audio_requests.append((seconds, fields, self.headers.get("Authorization")))
            if self._scripted(fake.next_step(fake.script)):
                return
            status, answer = fake.transcribe(seconds)
            if status == 200 and fields.get("response_format") == ["json"]:
                answer = {"text": answer["text"]}
            self._send(status, answer)

        def _chat(self, request: dict[str, Any]) -> None:
            with fake.lock:
                fake.chat_requests.append(request)
            step = fake.next_step(fake.chat_script)
            if step == "bad":
                content: Any = json.dumps({"unexpected": True})
            elif self._scripted(step):
                return
            else:
                content = json.dumps(fake.chat(request))
            self._send(200, {"id": "chatcmpl-test", "object": "chat.completion",
                             "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                 "role": "assistant", "content": content}}]})

        def _scripted(self, step: str | None) -> bool:
            """Play a scripted misbehaviour; False when there is none (answer normally)."""
            if step is None:
                return False
            if step == "slow":
                time.sleep(fake.slow_s)
                self._send(200, {"text": "too late"})
            elif step == "malformed":
                self._send(200, {"no_text_here": True})
            else:
                status = int(step)
                headers = {"Retry-After": "0"} if status == 429 else {}
                self._send(status, {"error": {"message": f"scripted {status}"}}, headers)
            return True

        def _send(self, status: int, body: dict[str, Any],
                  headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

    return Handler
