"""What the API frame costs on top of pydantic: 10,000-row bodies and small requests.

Run: python bench/api_frame.py. Prints `name: value` lines. flask-openapi3 (the chosen frame)
is always measured; apiflask and spectree, the other candidates of issue 8, only when they
are installed (they are not dependencies: `n/a` otherwise). The bodies go through Flask's
test client, so the figures are per request without a network.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import time
from collections.abc import Callable
from typing import Literal

from flask import Flask, jsonify, request
from pydantic import BaseModel, Field

ROWS = 10_000
SMALL_REQUESTS = 1_000


class Item(BaseModel):
    gtin: str = Field(min_length=14, max_length=14)
    serial: str = Field(min_length=1, max_length=20)
    lot: str | None = None
    expiry: dt.date | None = None
    tag: Literal["qr", "ntag21x", "ntag424"]


class Batch(BaseModel):
    items: list[Item] = Field(max_length=ROWS)


class Count(BaseModel):
    count: int


def body(rows: int) -> str:
    item = {"gtin": "09506000134352", "lot": "L1", "expiry": "2027-01-31", "tag": "qr"}
    return json.dumps({"items": [item | {"serial": f"S{i}"} for i in range(rows)]})


def plain_flask() -> Flask:
    app = Flask("plain")

    @app.post("/items")
    def items():  # type: ignore[no-untyped-def]
        batch = Batch.model_validate_json(request.get_data())
        return jsonify(Count(count=len(batch.items)).model_dump())

    return app


def flask_openapi3() -> Flask:
    from flask_openapi3 import OpenAPI

    app = OpenAPI("openapi3", doc_ui=False)

    @app.post("/items", responses={200: Count})
    def items(body: Batch):  # type: ignore[no-untyped-def]
        return jsonify(Count(count=len(body.items)).model_dump())

    return app


def apiflask() -> Flask:
    from apiflask import APIFlask

    app = APIFlask("apiflask")

    @app.post("/items")
    @app.input(Batch)
    @app.output(Count)
    def items(json_data):  # type: ignore[no-untyped-def]
        return Count(count=len(json_data.items))

    return app


def spectree() -> Flask:
    from spectree import Response, SpecTree

    app = Flask("spectree")
    api = SpecTree("flask", annotations=True)

    @app.post("/items")
    @api.validate(resp=Response(HTTP_200=Count))
    def items(json: Batch):  # type: ignore[no-untyped-def]
        return Count(count=len(json.items))

    api.register(app)
    return app


def per_call_ms(call: Callable[[], object], times: int) -> float:
    call()
    start = time.perf_counter()
    for _ in range(times):
        call()
    return (time.perf_counter() - start) / times * 1000


def measure(name: str, make: Callable[[], Flask]) -> None:
    client = make().test_client()
    big, small = body(ROWS), body(1)

    def post(data: str) -> Callable[[], object]:
        def call() -> object:
            response = client.post("/items", data=data, content_type="application/json")
            assert response.status_code == 200, response.data[:200]
            return response

        return call

    print(f"{name}_batch_{ROWS}_ms: {per_call_ms(post(big), 5):.1f}")
    print(f"{name}_small_request_us: {per_call_ms(post(small), SMALL_REQUESTS) * 1000:.0f}")


def main() -> None:
    big = body(ROWS)
    pydantic_ms = per_call_ms(lambda: Batch.model_validate_json(big), 5)
    print(f"pydantic_only_batch_{ROWS}_ms: {pydantic_ms:.1f}")
    candidates = {
        "plain_flask": (None, plain_flask),
        "flask_openapi3": ("flask_openapi3", flask_openapi3),
        "apiflask": ("apiflask", apiflask),
        "spectree": ("spectree", spectree),
    }
    for name, (module, make) in candidates.items():
        if module and importlib.util.find_spec(module) is None:
            print(f"{name}_batch_{ROWS}_ms: n/a")
            continue
        measure(name, make)


if __name__ == "__main__":
    main()
