"""AI analyses: the named questions a transcript can be asked after it is made, and their
default prompts and JSON schemas.

An analysis is a prompt and the JSON schema its answer must follow. The operator points
Voxhook at an OpenAI-compatible chat endpoint (``[analysis]`` in the pipelines file, see
:mod:`app.transcriptions.remote_config`) and may add analyses or replace these defaults
there; a request asks for some by name (``analysis: ["summary", "action_items"]``). The API
reads the names (to validate requests and list them per pipeline), the worker the prompts and
schemas. Data only: no Flask, no HTTP.

Every schema's top level is an object, so that the answer is a JSON object (what chat
endpoints' structured output produces), and its keys are all required, so that a model
leaving one out is caught as out of schema. Times are seconds from the start of the audio
(the transcript the model reads is stamped with them), and speakers are the transcript's
labels (``SPEAKER 1``…).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AnalysisDefinition:
    """One analysis: what it asks, and the shape its answer must have."""

    name: str
    #: What the model is told to do with the transcript (the transcript follows it).
    prompt: str
    #: A JSON schema (draft 2020-12) for the answer; its top level is an object.
    schema: dict[str, Any]
    #: One line for people (the pipelines list, the docs).
    description: str = ""


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    """A closed object whose every property is required (strict structured output wants it)."""
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


_TEXT = {"type": "string", "minLength": 1}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_SECONDS = {"type": "number", "minimum": 0}

#: Shared by every default prompt: the rules of the game.
_RULES = ("Use only what the transcript says; do not invent facts. Write in the language of "
          "the transcript. Answer with one JSON object that follows the given schema exactly.")

DEFAULT_ANALYSES: tuple[AnalysisDefinition, ...] = (
    AnalysisDefinition(
        name="summary",
        description="A short summary of the whole conversation.",
        prompt=("Summarise the transcript in a few sentences (at most about 120 words): what "
                "it is about, what was decided and what happens next. " + _RULES),
        schema=_object({"summary": _TEXT}),
    ),
    AnalysisDefinition(
        name="key_points",
        description="The main points, one sentence each.",
        prompt=("List the key points of the transcript, most important first, one sentence "
                "each (at most 10). " + _RULES),
        schema=_object({"key_points": _list_of(_TEXT)}),
    ),
    AnalysisDefinition(
        name="action_items",
        description="Tasks someone agreed to do, with owner and due date when said.",
        prompt=("List the action items: tasks someone agreed or was asked to do. For each, "
                "the owner (a name or speaker label) and the due date exactly as said, or "
                "null when the transcript does not say. An empty list when there are none. "
                + _RULES),
        schema=_object({"action_items": _list_of(_object({
            "task": _TEXT, "owner": _NULLABLE_TEXT, "due": _NULLABLE_TEXT}))}),
    ),
    AnalysisDefinition(
        name="chapters",
        description="Chapters with a title and the second they start at.",
        prompt=("Divide the transcript into chapters where the subject changes (at most 12). "
                "Each has a short title, a one-sentence summary and its start in seconds, "
                "taken from the [seconds] stamp of the line where it begins. " + _RULES),
        schema=_object({"chapters": _list_of(_object({
            "title": _TEXT, "start": _SECONDS, "summary": _TEXT}))}),
    ),
    AnalysisDefinition(
        name="topics",
        description="The subjects discussed, as short labels.",
        prompt=("List the topics discussed, as short labels of one to four words, most "
                "discussed first (at most 10). " + _RULES),
        schema=_object({"topics": _list_of(_TEXT)}),
    ),
    AnalysisDefinition(
        name="sentiment",
        description="The overall tone, and each speaker's.",
        prompt=("Judge the sentiment of the conversation as a whole and of each speaker "
                "(by the label the transcript gives them; without labels, one entry named "
                "'everyone'): positive, neutral, negative or mixed, with a one-sentence "
                "reason. " + _RULES),
        schema=_object({
            "overall": {"enum": ["positive", "neutral", "negative", "mixed"]},
            "speakers": _list_of(_object({
                "speaker": _TEXT,
                "sentiment": {"enum": ["positive", "neutral", "negative", "mixed"]},
                "reason": _TEXT})),
        }),
    ),
)


def default_analyses() -> dict[str, AnalysisDefinition]:
    """The defaults by name, in the order above."""
    return {analysis.name: analysis for analysis in DEFAULT_ANALYSES}
