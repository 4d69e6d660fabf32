"""The OpenAPI document as the contract: every answer an operation can give is described.

flask-smorest writes the document from the views' schemas; this module makes it complete,
for every route (those added later included):

- :class:`VoxhookApi` documents our error body (``{"error": {"code", "message", …}}``) as
  the default response of every operation, in place of flask-smorest's own error schema;
- :class:`ContractPlugin` (an apispec plugin, run on each operation as it is registered)
  adds the 401 to every operation that needs a key (and the default error response to any
  operation documented by hand), and gives each error status its own
  error schema (``Error404``, ``Error409``, …) whose ``code`` lists the codes that status
  can carry (:func:`app.api.errors.error_codes_by_status`);
- an operation that answers its errors in another body (the OpenAI-compatible surface
  answers OpenAI's) is built on an :class:`ErrorBodyBlueprint`: the plugin then documents
  that body, not ours, as its default, its 401 and each error status;
- :func:`link` / :func:`links` describe where a created resource can be followed
  (OpenAPI links: a stateful client, or fuzzer, goes from a create to its get, cancel,
  export…), and :func:`webhook_callback` what a ``webhook_url`` receives.

Operations that need no credential say so with ``security: []`` (:data:`PUBLIC`).
"""

from __future__ import annotations

import copy
from http import HTTPStatus
from typing import Any

from apispec import BasePlugin
from flask_smorest import Api, Blueprint
from marshmallow import Schema

from app.api.errors import error_codes_by_status
from app.api.schemas.common import ApiErrorSchema, ErrorDetailSchema

#: ``blp.doc(**PUBLIC)``: the operation needs no key (health checks, the document itself).
PUBLIC: dict[str, Any] = {"security": []}
_ERROR_REF = "#/components/schemas/ApiError"
#: The marker :class:`ErrorBodyBlueprint` puts on its operations (the plugin removes it).
_ERROR_BODY = "x-voxhook-error-body"
_UNAUTHORIZED = ("Missing, malformed, unknown or revoked key (unauthorized); the message says "
                 "which.")


class VoxhookApi(Api):
    """flask-smorest's Api, documenting our error body wherever it documents an error."""

    ERROR_SCHEMA = ApiErrorSchema


class ErrorBodyBlueprint(Blueprint):
    """A blueprint whose views answer every error in ``error_schema``, not in our error
    body: each of its operations carries a marker from which :class:`ContractPlugin`
    documents that schema for the operation's error responses (views added later too)."""

    def __init__(self, *args: Any, error_schema: type[Schema], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_schema = error_schema

    def add_url_rule(self, rule: str, endpoint: str | None = None, view_func: Any = None,
                     *args: Any, **kwargs: Any) -> None:
        if view_func is not None:
            view_func = self.doc(**{_ERROR_BODY: self.error_schema})(view_func)
        super().add_url_rule(rule, endpoint, view_func, *args, **kwargs)


class ContractPlugin(BasePlugin):
    """Completes each operation's responses (see the module's docstring)."""

    def init_spec(self, spec: Any) -> None:
        super().init_spec(spec)
        self.spec = spec
        self.registered: set[int] = set()
        self.codes = error_codes_by_status()

    def operation_helper(self, path: str | None = None,
                         operations: dict[str, Any] | None = None, **_: Any) -> None:
        for operation in (operations or {}).values():
            error_schema = operation.pop(_ERROR_BODY, None)
            if error_schema is not None:
                self._own_error_body(operation, error_schema)
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("default", VoxhookApi.DEFAULT_ERROR_RESPONSE_NAME)
            if operation.get("security") != []:
                responses.setdefault("401", {"description": _UNAUTHORIZED,
                                             "content": _json(_ERROR_REF)})
            for status, response in list(responses.items()):
                if str(status).isdigit() and int(status) >= 400:
                    responses[status] = self._per_status(int(status), response)

    def _own_error_body(self, operation: dict[str, Any], schema: type[Schema]) -> None:
        """An :class:`ErrorBodyBlueprint`'s operation: ``schema`` (a component named like
        the class, less ``Schema``) for its default, 401 and every error status."""
        name = schema.__name__.removesuffix("Schema")
        if name not in self.spec.components.schemas:
            self.spec.components.schema(name, schema=schema)
        body = _json(f"#/components/schemas/{name}")
        responses = operation.setdefault("responses", {})
        responses["default"] = {"description": "An error.", "content": body}
        if operation.get("security") != []:
            responses.setdefault("401", {"description": _UNAUTHORIZED})
        for status, response in list(responses.items()):
            if str(status).isdigit() and int(status) >= 400:
                if isinstance(response, str):  # a flask-smorest component (ours): replaced
                    response = {"description": HTTPStatus(int(status)).phrase}
                responses[status] = {**response, "content": body}

    def _per_status(self, status: int, response: Any) -> Any:
        """The response with its error schema narrowed to this status's codes."""
        if isinstance(response, str):  # a flask-smorest component: UNPROCESSABLE_CONTENT…
            response = {"description": HTTPStatus(status).phrase, "content": _json(_ERROR_REF)}
        content = response.get("content", {}).get("application/json")
        if not content or content.get("schema") != {"$ref": _ERROR_REF}:
            return response
        name = self._error_schema(status)
        return {**response, "content": {**response["content"],
                                        "application/json": {**content, "schema": {
                                            "$ref": f"#/components/schemas/{name}"}}}}

    def _error_schema(self, status: int) -> str:
        """``Error<status>``: ApiError whose detail's ``code`` lists this status's codes."""
        name = f"Error{status}"
        if status not in self.registered:
            self.registered.add(status)
            schemas = self.spec.components.schemas
            if "ErrorDetail" not in schemas:  # the marshmallow plugin adds it on first use
                self.spec.components.schema("ErrorDetail", schema=ErrorDetailSchema)
            detail = copy.deepcopy(schemas["ErrorDetail"])
            detail["properties"]["code"]["enum"] = self.codes.get(status, ["error"])
            detail["description"] = f"A {status} {HTTPStatus(status).phrase}."
            self.spec.components.schema(f"{name}Detail", detail)
            body = copy.deepcopy(schemas["ApiError"])
            body["properties"]["error"] = {"$ref": f"#/components/schemas/{name}Detail"}
            self.spec.components.schema(name, body)
        return name


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": ref}}}


# --------------------------------------------------------------------------- links, callbacks


def link(path: str, method: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link to the operation ``method path``; ``parameters`` map its parameters
    to runtime expressions such as ``$response.body#/id``."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {"operationRef": f"#/paths/{pointer}/{method}", "description": description,
            "parameters": parameters}


def links(status: int, **named: dict[str, Any]) -> dict[str, Any]:
    """``blp.doc(**links(201, GetIt=link(…)))``: the links of the ``status`` response."""
    return {"responses": {str(status): {"links": named}}}


def webhook_callback(url_expression: str, schema: Any, description: str) -> dict[str, Any]:
    """``blp.doc(**webhook_callback(…))``: the POST a webhook URL of the request receives."""
    return {"callbacks": {"webhook": {url_expression: {"post": {
        "summary": "The webhook Voxhook sends",
        "description": description,
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": {"2XX": {"description": "Delivered: any 2xx within the timeout ends the "
                              "delivery. Network errors, timeouts, 5xx, 408 and 429 are tried "
                              "again with back-off; any other answer ends it as failed."}},
    }}}}}
