"""One error handler: domain errors and HTTP errors become `{"error", "message", "fields"}`."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from provenance_api.services.errors import DomainError, InvalidInput, TooManyAttempts

bp = Blueprint("errors", __name__)


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict:
    """The JSON shape of every error the API returns."""
    return {"error": code, "message": message, "fields": fields or {}}


def _domain(exc: DomainError) -> ResponseReturnValue:
    response = jsonify(error_body(exc.code, exc.message, exc.fields))
    response.status_code = exc.status
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after)  # RFC 9110 §10.2.3: seconds
    return response


def validation_fields(exc: ValidationError) -> dict[str, str]:
    """Each bad field by its dotted path ("body" for the body as a whole) and the reason."""
    fields: dict[str, str] = {}
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "body"
        fields.setdefault(name, err["msg"].removeprefix("Value error, "))
    return fields


def validation_response(exc: ValidationError) -> Response:
    """422 with the JSON error body naming every bad field (also flask-openapi3's callback)."""
    fields = validation_fields(exc)
    if "body" in fields and request.method in ("POST", "PUT", "PATCH"):
        if not request.is_json:
            fields["body"] = "send a JSON object with Content-Type: application/json"
        else:
            try:
                current_app.json.loads(request.get_data(cache=True))
            except ValueError as problem:  # say why the body did not parse
                fields["body"] = f"not valid JSON: {problem}"
    response = jsonify(error_body(InvalidInput.code, "the request is invalid", fields))
    response.status_code = 422
    return response


def _http(exc: HTTPException) -> ResponseReturnValue:
    code = (exc.name or "error").lower().replace(" ", "_")
    message, fields = exc.description or exc.name or "error", {}
    if isinstance(exc, RequestEntityTooLarge):
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        message = f"the request body is larger than the limit of {limit} bytes"
        fields = {"body": "too large"}
    response = jsonify(error_body(code, message, fields))
    response.status_code = exc.code or 500
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def register(app: Flask) -> None:
    """Install the handlers on `app` (404, 405 and every other HTTP error included).

    A pydantic ValidationError has no handler: request data is validated before the route
    (flask-openapi3, or frame.parse_json, which raise 422 themselves), so one that escapes a
    route is the server's own bug and answers 500, without its details.
    """
    app.register_error_handler(DomainError, _domain)
    app.register_error_handler(HTTPException, _http)
