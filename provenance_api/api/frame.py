"""The JSON API frame: /v1 blueprints, the bearer-key guard, and the unit of work per request.

Routes stay thin: they take typed pydantic models (validated by flask-openapi3 before the
route runs), call one service function with a unit of work and the caller, and return the
service's typed answer. The guard runs first: no key is 401, a role the access table does not
list is 403, and only then is the body looked at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pydantic_core
from flask import Flask, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask.typing import ResponseReturnValue
from flask_openapi3 import APIBlueprint, RequestBody, Tag
from flask_openapi3.utils import parse_body
from pydantic import BaseModel, ValidationError

from provenance_api.api import access
from provenance_api.api.errors import error_body, validation_fields
from provenance_api.schemas import ErrorBody
from provenance_api.services import organizations
from provenance_api.services.errors import Forbidden, InvalidInput, Unauthorized
from provenance_api.services.organizations import Caller
from provenance_api.services.ports import UnitOfWork

M = TypeVar("M", bound=BaseModel)

UOW_EXTENSION = "provenance.unit_of_work"
SECURITY_SCHEME = "bearer"
SECURITY_SCHEMES = {
    SECURITY_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer pk_...`.",
    }
}
# Every guarded route can answer these; each route adds its own (404, 409, 413).
GUARDED_RESPONSES: dict[int, type[BaseModel]] = {401: ErrorBody, 403: ErrorBody, 422: ErrorBody}


class JsonProvider(DefaultJSONProvider):
    """Flask's JSON, except that request bodies are parsed by pydantic-core (jiter).

    The stdlib parser recurses on the C stack, and py_ecc raises the interpreter's recursion
    limit to 100,000 at import: a 400 KB body of nested brackets then crashes the process.
    jiter stops at 200 levels with a ValueError (a 422), and refuses NaN and Infinity.
    """

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON text; ValueError names what is wrong and where."""
        return pydantic_core.from_json(s, allow_inf_nan=False)


def register_sharing_paths(app: Any, *blueprints: APIBlueprint) -> None:
    """Register blueprints whose routes share paths (a public GET next to a guarded POST).

    flask-openapi3 replaces a path's whole entry with each blueprint's; this keeps every
    blueprint's operations of a path in the document.
    """
    merged: dict[str, Any] = {}
    for bp in blueprints:
        app.register_api(bp)
        for uri, item in bp.paths.items():
            if uri in merged:
                for method, operation in item:
                    if operation is not None and method in _METHODS:
                        setattr(merged[uri], method, operation)
            else:
                merged[uri] = item.model_copy()
    app.paths.update(merged)


_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def blueprint(name: str, description: str) -> APIBlueprint:
    """A /v1 blueprint whose routes need a bearer key; operation ids are the function names."""
    return APIBlueprint(
        name,
        __name__,
        url_prefix="/v1",
        abp_tags=[Tag(name=name.replace("_", "-"), description=description)],
        abp_security=[{SECURITY_SCHEME: []}],
        abp_responses=dict(GUARDED_RESPONSES),
        operation_id_callback=lambda name, path, method: name,
    )


def unit_of_work() -> UnitOfWork:
    """A new unit of work from the adapter the composition root chose."""
    factory: Callable[[], UnitOfWork] = current_app.extensions[UOW_EXTENSION]
    return factory()


def caller() -> Caller:
    """Who is calling (set by the guard before any guarded route runs)."""
    return g.caller


def tenant() -> int:
    """The calling organization's id (routes for parties only; the access table ensures it)."""
    organization_id = caller().organization_id
    if organization_id is None:
        raise Forbidden("this route is for organizations")
    return organization_id


def guard() -> ResponseReturnValue | None:
    """Before every request: public routes pass; others need a key whose role may call them."""
    endpoint = request.endpoint
    if endpoint is None or endpoint in access.PUBLIC:
        return None  # unknown URL or method: Flask answers 404/405 itself
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return _unauthorized("send an API key as `Authorization: Bearer <key>`")
    try:
        g.caller = organizations.authenticate(unit_of_work(), presented.strip())
    except Unauthorized as exc:
        return _unauthorized(exc.message)
    if not access.allowed(endpoint, g.caller.role):
        raise Forbidden(f"the {g.caller.role} role may not call this route")
    return None


def _unauthorized(message: str) -> ResponseReturnValue:
    response = jsonify(error_body(Unauthorized.code, message))
    response.status_code = Unauthorized.status
    response.headers["WWW-Authenticate"] = 'Bearer realm="provenance"'
    return response


def install(app: Flask, factory: Callable[[], UnitOfWork]) -> None:
    """Give `app` its unit-of-work factory and the guard."""
    app.extensions[UOW_EXTENSION] = factory
    app.before_request(guard)


Answer = tuple[dict[str, Any], int]


def answer(model: BaseModel, status: int = 200) -> Answer:
    """A typed answer as a JSON body and its status."""
    return model.model_dump(mode="json"), status


def parse_json(model: type[M]) -> M:
    """The request body validated straight from its bytes, for batch routes.

    pydantic's `model_validate_json` costs about half of what the frame's own validation adds
    on 10,000 rows (bench/api_frame.py). A bad body is InvalidInput naming each bad field.
    """
    try:
        return model.model_validate_json(request.get_data())
    except ValidationError as exc:
        raise InvalidInput("the request is invalid", validation_fields(exc)) from None


def documented_body(bp: APIBlueprint, model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extensions` declaring `model` as the JSON body of a route that calls parse_json.

    The route takes no `body` argument (so the frame does not validate it a second time); the
    document still shows the model, and schemathesis still sends it.
    """
    content, schemas = parse_body(model)
    bp.components_schemas.update(schemas)
    return {"requestBody": RequestBody(content=content, required=True)}
