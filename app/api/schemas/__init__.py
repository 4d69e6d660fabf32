"""Every request and response body of the API, one module per resource (they also make
/openapi.json).

Requests are strict: unknown fields, wrong JSON types and contradictions are refused with the
field named. Responses are documented even where a view hands over a stored dict, so the
OpenAPI document is the contract clients read. A transcription's own body (both surfaces'
GET, the webhook's ``data``) is ``app.transcriptions.representation``: the webhook outbox sends
it too, and it must not reach into the API to do so.
"""
