"""How the speech engine runs for one request, beyond its pipeline's settings.

The OpenAI-compatible surface lets a request choose Whisper's task (``translate`` writes
English whatever the spoken language), an initial prompt, a sampling temperature, and name
known speakers by reference clips. They are stored on the transcription
(``transcriptions.engine_options``, JSON) and read back by the worker; a transcription
without them runs exactly as its pipeline says.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

TASKS = ("transcribe", "translate")


@dataclass(frozen=True)
class KnownSpeaker:
    """A speaker to recognise by voice: a name and a short clip (a ``data:`` URL)."""

    name: str
    #: ``data:<media type>;base64,<bytes>`` of a 2 to 10 second clip of that voice.
    reference: str


@dataclass(frozen=True)
class EngineOptions:
    task: str = "transcribe"
    #: Text the model reads as if it came before the audio (Whisper's initial prompt).
    prompt: str | None = None
    #: One sampling temperature instead of the pipeline's; None: the pipeline's.
    temperature: float | None = None
    known_speakers: tuple[KnownSpeaker, ...] = field(default=())
    #: AI analyses to run on the transcript (names of the pipeline's analyses), in order.
    analyses: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["known_speakers"] = [asdict(s) for s in self.known_speakers]
        data["analyses"] = list(self.analyses)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> EngineOptions:
        if not data:
            return cls()
        return cls(task=data.get("task", "transcribe"), prompt=data.get("prompt"),
                   temperature=data.get("temperature"),
                   known_speakers=tuple(KnownSpeaker(**s)
                                        for s in data.get("known_speakers") or ()),
                   analyses=tuple(data.get("analyses") or ()))


def with_analyses(options: dict[str, Any] | None, analyses: list[str] | None
                  ) -> dict[str, Any] | None:
    """A request's stored engine options with the analyses it asks for (v1 and Quickstart
    ask with ``analysis: [...]``); unchanged when it asks for none."""
    if not analyses:
        return options
    return {**EngineOptions.from_json(options).to_json(),
            "analyses": list(dict.fromkeys(analyses))}
