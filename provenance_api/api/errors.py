"""One error handler: domain errors and HTTP errors become `{"error", "message", "fields"}`."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from provenance_api.services.errors import DomainError, InvalidInput

bp = Blueprint("errors", __name__)


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict:
    """The JSON shape of every error the API returns."""
    return {"error": code, "message": message, "fields": fields or {}}


def _domain(exc: DomainError) -> ResponseReturnValue:
    return jsonify(error_body(exc.code, exc.message, exc.fields)), exc.status


def _validation(exc: ValidationError) -> ResponseReturnValue:
    fields = {".".join(str(p) for p in err["loc"]) or "body": err["msg"] for err in exc.errors()}
    return jsonify(error_body(InvalidInput.code, "the request body is invalid", fields)), 422


def _http(exc: HTTPException) -> ResponseReturnValue:
    code = (exc.name or "error").lower().replace(" ", "_")
    response = jsonify(error_body(code, exc.description or exc.name or "error"))
    response.status_code = exc.code or 500
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def register(app: Flask) -> None:
    """Install the handlers on `app` (404, 405 and every other HTTP error included)."""
    app.register_error_handler(DomainError, _domain)
    app.register_error_handler(ValidationError, _validation)
    app.register_error_handler(HTTPException, _http)
