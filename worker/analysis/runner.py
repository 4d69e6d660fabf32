"""Running the analyses a request asked for on its transcript.

Each analysis is a prompt and a JSON schema (:mod:`app.transcriptions.analysis_catalog`).
The transcript goes to the chat endpoint as lines ``[12.3] SPEAKER 1: text`` (times in
seconds, so chapters can say where they start; speakers when diarized), and the answer must
be a JSON object valid against the schema:

- **Structured output.** With ``structured_output = "json_schema"`` the request carries
  OpenAI's ``response_format: {"type": "json_schema", ...}`` (vLLM, Ollama, llama.cpp server
  and OpenAI constrain decoding to it); with ``json_object`` or ``none`` the schema is in the
  prompt. Either way the answer is validated here: a server may ignore the format.
- **One more try.** An answer that is not JSON or not valid against the schema is sent back
  with the validation error and the request to answer again; a second bad answer marks the
  analysis failed with the reason. The endpoint's own failures (down, 429, 5xx, timeout) are
  retried with back-off (:mod:`worker.remote_http`), then mark it failed.
- **Long transcripts.** Lines are packed into parts that fit the model's context (its
  ``context_tokens``, less the prompt, the schema and ``max_output_tokens``; a token counted as
  :data:`CHARS_PER_TOKEN` characters, a cautious figure for most tokenizers). Each part is
  analysed, then the parts' answers are merged by the model into one answer with the same
  schema (in rounds, when even the answers do not fit at once).
- **The transcript always completes.** A failed analysis is recorded as
  ``{"status": "failed", "error": ...}``; the job completes, and the analysis is not charged.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator

from app.config import Settings
from app.transcriptions.analysis_catalog import AnalysisDefinition
from app.transcriptions.remote_config import AnalysisEndpoint
from worker.remote_http import RemoteCaller, RemoteFailure

log = logging.getLogger(__name__)

#: Characters per token assumed when sizing parts (most tokenizers average 3.5 to 4.5 on
#: English; fewer on other scripts, so the estimate errs towards smaller parts).
CHARS_PER_TOKEN = 3
#: Tokens kept free for the chat template and the messages' framing.
FRAMING_TOKENS = 256

_SYSTEM = ("You analyse transcripts of recorded speech. Lines start with the time in seconds "
           "in brackets, then the speaker when known. Answer with a single JSON object and "
           "nothing else.")
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class AnalysisFailed(Exception):
    """An analysis could not be completed; the message says why, for the user."""


def transcript_lines(result: Mapping[str, Any]) -> list[str]:
    """The transcript as the model reads it: one stamped line per utterance."""
    lines = []
    for utterance in result.get("utterances") or ():
        text = (utterance.get("text") or "").strip()
        if not text:
            continue
        speaker = f"{utterance['speaker']}: " if utterance.get("speaker") else ""
        lines.append(f"[{utterance.get('start', 0.0):.1f}] {speaker}{text}")
    return lines


def run_analyses(names: Sequence[str], result: Mapping[str, Any], endpoint: AnalysisEndpoint,
                 settings: Settings, caller: RemoteCaller | None = None
                 ) -> dict[str, dict[str, Any]]:
    """Each asked analysis's outcome, by name: ``{"status": "completed", "result": {...}}``
    or ``{"status": "failed", "error": "..."}``. Never raises for what the endpoint does."""
    analyst = Analyst(endpoint, caller or RemoteCaller(endpoint, settings))
    lines = transcript_lines(result)
    outcomes: dict[str, dict[str, Any]] = {}
    for name in names:
        definition = endpoint.definitions.get(name)
        try:
            if definition is None:
                raise AnalysisFailed(f"the analysis '{name}' is no longer configured on the "
                                     "worker; the API and workers must read the same "
                                     "pipelines file")
            if not lines:
                raise AnalysisFailed("nothing was said in the audio, so there is nothing to "
                                     "analyse")
            outcomes[name] = {"status": "completed", "result": analyst.analyse(definition,
                                                                               lines)}
        except AnalysisFailed as exc:
            log.warning("analysis %s failed: %s", name, exc)
            outcomes[name] = {"status": "failed", "error": str(exc)}
    return outcomes


def completed_count(result: Mapping[str, Any]) -> int:
    """How many analyses of a result completed (what is charged)."""
    return sum(1 for outcome in (result.get("analysis") or {}).values()
               if outcome.get("status") == "completed")


class Analyst:
    """Asks one endpoint for analyses: parts, merges, validation and the second chance."""

    def __init__(self, endpoint: AnalysisEndpoint, caller: RemoteCaller) -> None:
        self.endpoint = endpoint
        self.caller = caller

    def analyse(self, definition: AnalysisDefinition, lines: Sequence[str]) -> dict[str, Any]:
        budget = self._budget_chars(definition)
        parts = pack(lines, budget)
        if len(parts) == 1:
            return self.ask(definition, f"{definition.prompt}\n\nTranscript:\n{parts[0]}")
        log.info("analysis %s: transcript in %d parts", definition.name, len(parts))
        answers = [self.ask(definition, f"{definition.prompt}\n\nThis is part {number} of "
                                        f"{len(parts)} of the transcript:\n{part}")
                   for number, part in enumerate(parts, start=1)]
        while len(answers) > 1:
            groups = pack([json.dumps(answer, ensure_ascii=False) for answer in answers],
                          budget)
            if len(groups) == len(answers):  # not one pair fits: merge two at a time anyway
                groups = ["\n".join(json.dumps(a, ensure_ascii=False) for a in answers[i:i + 2])
                          for i in range(0, len(answers), 2)]
            answers = [self.ask(definition, _merge_request(definition, group))
                       for group in groups]
        return answers[0]

    def ask(self, definition: AnalysisDefinition, request: str) -> dict[str, Any]:
        """One answer valid against the schema, with one more try when it is not."""
        messages = [{"role": "system", "content": self._system(definition)},
                    {"role": "user", "content": request}]
        content = self._chat(definition, messages)
        problem = _problem(content, definition.schema)
        if problem is None:
            return json.loads(_unfenced(content))
        log.info("analysis %s: out of schema (%s); asking once more", definition.name, problem)
        messages += [{"role": "assistant", "content": content},
                     {"role": "user", "content": f"That answer does not follow the JSON schema: "
                      f"{problem}. Answer again with only a JSON object that follows the "
                      f"schema exactly:\n{json.dumps(definition.schema)}"}]
        content = self._chat(definition, messages)
        problem = _problem(content, definition.schema)
        if problem is None:
            return json.loads(_unfenced(content))
        raise AnalysisFailed(f"the model's answer did not follow the analysis's JSON schema, "
                             f"twice ({problem})")

    def _chat(self, definition: AnalysisDefinition, messages: list[dict[str, str]]) -> str:
        endpoint = self.endpoint
        body: dict[str, Any] = {"model": endpoint.model, "messages": messages,
                                "temperature": endpoint.temperature,
                                "max_tokens": endpoint.max_output_tokens}
        if endpoint.structured_output == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": definition.name, "schema": definition.schema, "strict": True}}
        elif endpoint.structured_output == "json_object":
            body["response_format"] = {"type": "json_object"}
        try:
            return self.caller.post("/chat/completions", json.dumps(body).encode(),
                                    "application/json", accept=_message_content)
        except RemoteFailure as failure:
            tries = f" after {endpoint.retries + 1} tries" if failure.retryable else ""
            raise AnalysisFailed(f"the analysis endpoint ({endpoint.model} at "
                                 f"{endpoint.base_url}) failed{tries}: {failure.detail}"
                                 ) from failure

    def _system(self, definition: AnalysisDefinition) -> str:
        if self.endpoint.structured_output == "json_schema":
            return _SYSTEM
        return f"{_SYSTEM} The JSON object must follow this JSON schema:\n" + json.dumps(
            definition.schema)

    def _budget_chars(self, definition: AnalysisDefinition) -> int:
        """Characters of transcript one request may carry."""
        fixed = len(self._system(definition)) + len(definition.prompt) + len(
            json.dumps(definition.schema))
        tokens = (self.endpoint.context_tokens - self.endpoint.max_output_tokens
                  - FRAMING_TOKENS - fixed // CHARS_PER_TOKEN)
        return max(tokens, 64) * CHARS_PER_TOKEN


def pack(lines: Iterable[str], budget_chars: int) -> list[str]:
    """Lines packed in order into parts of at most ``budget_chars`` characters (a single
    longer line is cut at the budget)."""
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        while len(line) > budget_chars:
            if current:
                parts.append("\n".join(current))
                current, size = [], 0
            parts.append(line[:budget_chars])
            line = line[budget_chars:]
        if current and size + 1 + len(line) > budget_chars:
            parts.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + (1 if size else 0)
    if current:
        parts.append("\n".join(current))
    return parts or [""]


def _merge_request(definition: AnalysisDefinition, answers: str) -> str:
    return (f"The task was: {definition.prompt}\n\nIt was done separately for consecutive parts "
            "of one transcript; here are the answers, one JSON object per line, in order:\n"
            f"{answers}\n\nMerge them into one answer for the whole transcript, following the "
            "same schema: combine and deduplicate lists, keep the times as given, and write "
            "summaries anew for the whole.")


def _message_content(answer: Any) -> str:
    """The text of a chat completion's first choice (ValueError: not a chat answer)."""
    content = answer["choices"][0]["message"]["content"]
    if not isinstance(content, str):
        raise ValueError("choices[0].message.content is not text")
    return content


def _unfenced(content: str) -> str:
    """The JSON inside a Markdown code fence, which some models add whatever they are told."""
    fenced = _FENCE.match(content)
    return fenced.group(1) if fenced else content


def _problem(content: str, schema: dict[str, Any]) -> str | None:
    """Why ``content`` is not a JSON object valid against ``schema`` (None when it is)."""
    try:
        answer = json.loads(_unfenced(content))
    except ValueError:
        return f"it is not JSON ({content[:80]!r})"
    errors = sorted(Draft202012Validator(schema).iter_errors(answer), key=lambda e: e.path)
    if not errors:
        return None
    error = errors[0]
    where = "/".join(str(part) for part in error.absolute_path) or "the top level"
    return f"at {where}: {error.message[:200]}"
