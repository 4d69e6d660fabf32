"""``GET /api/v1/pipelines``: each pipeline with its engine, capabilities and prices."""

from __future__ import annotations

from marshmallow import Schema, fields


class PipelineEngineSchema(Schema):
    kind = fields.String(metadata={
        "enum": ["faster-whisper", "openai-compatible"],
        "description": "faster-whisper: a model on this server's workers; openai-compatible: "
        "a remote engine speaking OpenAI's audio API (vLLM, speaches, OpenAI, …)."})
    model = fields.String(metadata={"description": "The model it runs."})


class PipelineCapabilitiesSchema(Schema):
    words = fields.Boolean(metadata={"description": "Results carry word timings."})
    speakers = fields.Boolean(metadata={"description": "diarize: true is accepted."})
    languages = fields.List(fields.String(), metadata={"description": "ISO 639-1 codes."})
    analysis = fields.List(fields.String(), metadata={
        "description": "The AI analyses a request may ask for with analysis: [...]."})


class PipelineSchema(Schema):
    code = fields.String(required=True)
    description = fields.String()
    aliases = fields.List(fields.String())
    price_per_minute_usd = fields.Decimal(as_string=True, metadata={
        "type": "string", "format": "decimal", "example": "0.0285",
        "description": "Exact decimal dollars per minute of audio (a string, so it stays "
        "exact), billed per second."})
    languages = fields.List(fields.String(), metadata={"description": "ISO 639-1 codes."})
    can_diarize = fields.Boolean()
    default = fields.Boolean(metadata={"description": "Used when a request names none."})
    price_per_analysis_usd = fields.Decimal(as_string=True, metadata={
        "type": "string", "format": "decimal", "example": "0.01",
        "description": "Exact decimal dollars per AI analysis that completes (a string, so "
        "it stays exact), on top of the audio; \"0\": the price a minute covers analyses."})
    engine = fields.Nested(PipelineEngineSchema)
    capabilities = fields.Nested(PipelineCapabilitiesSchema)


class PipelineListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(PipelineSchema))
