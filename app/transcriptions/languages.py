"""Language codes the API accepts.

Requests name languages by ISO 639-1 code (two letters). Whisper knows 99 languages; a few of
its codes are not ISO 639-1 (``haw``, ``yue``) or are non-standard spellings (``jw`` for
Javanese, whose ISO 639-1 code is ``jv``). The API speaks ISO 639-1 only and maps it to the
engine's code here, so the worker never sees a code its model does not know.
"""

from __future__ import annotations

#: Every ISO 639-1 code (ISO 639-1:2002 and its later additions).
ISO_639_1: frozenset[str] = frozenset(
    """
     aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv
     cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho
     hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku
     kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn
     no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm
     sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi
     vo wa wo xh yi yo za zh zu
    """.split()
)

#: The languages of multilingual Whisper models, by their ISO 639-1 code, in Whisper's order.
#: Whisper's ``haw`` (Hawaiian) and ``yue`` (Cantonese) have no ISO 639-1 code and are
#: reachable only through detection.
WHISPER_LANGUAGES: tuple[str, ...] = tuple(
    """
     en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta
     no th ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk
     sq sw gl mr pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb
     my bo tl mg as tt ln ha ba jv su
    """.split()
)

#: ISO 639-1 code -> the code faster-whisper expects, where the two differ.
_ENGINE_CODES: dict[str, str] = {"jv": "jw"}
#: The reverse, so a detected engine code is reported in ISO 639-1.
_ISO_CODES: dict[str, str] = {engine: iso for iso, engine in _ENGINE_CODES.items()}


def is_iso_639_1(code: str) -> bool:
    """Whether ``code`` is a two-letter ISO 639-1 code (lower case)."""
    return code in ISO_639_1


def to_engine_code(iso_code: str) -> str:
    """The faster-whisper language code for an ISO 639-1 code."""
    return _ENGINE_CODES.get(iso_code, iso_code)


def from_engine_code(engine_code: str) -> str:
    """The ISO 639-1 code for a language code faster-whisper reported (unchanged if none)."""
    return _ISO_CODES.get(engine_code, engine_code)
