"""``/healthz`` and ``/readyz``."""

from __future__ import annotations

from marshmallow import (
    Schema,
    fields,
)


class HealthSchema(Schema):
    status = fields.String()


class ReadinessSchema(Schema):
    status = fields.String(metadata={"description": "'ready' or 'not_ready'."})
    checks = fields.Dict(keys=fields.String(), values=fields.Dict())
    missing = fields.List(fields.String(), metadata={"description": "What keeps the service "
                                                      "from being ready, and how to fix it."})
