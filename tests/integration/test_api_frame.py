"""The frame itself: the batch parser, and what a server-side bug looks like to a caller."""

from __future__ import annotations

import pytest
from flask import Blueprint, jsonify
from pydantic import BaseModel, Field

from provenance_api.api import access
from provenance_api.api.frame import parse_json
from provenance_api.app import create_app


class Row(BaseModel):
    serial: str = Field(min_length=1, max_length=20)


class Rows(BaseModel):
    rows: list[Row] = Field(max_length=3)


@pytest.fixture
def probed(tmp_path, monkeypatch):
    """An app (not in testing mode for errors: exceptions answer as in production)."""
    app = create_app({"TESTING": True, "DATA_DIR": str(tmp_path), "MAX_CONTENT_LENGTH": 1000})
    app.config["PROPAGATE_EXCEPTIONS"] = False
    probe = Blueprint("probe", __name__)

    @probe.post("/probe/rows")
    def rows():
        return jsonify(count=len(parse_json(Rows).rows))

    @probe.get("/probe/bug")
    def bug():
        Row.model_validate({"serial": ""})  # a server-side mistake, not the caller's

    app.register_blueprint(probe)
    monkeypatch.setattr(access, "PUBLIC", access.PUBLIC | {"probe.rows", "probe.bug"})
    yield app.test_client()
    app.extensions["provenance"].close()


def test_parse_json_validates_the_raw_body_and_names_each_bad_row(probed):
    ok = probed.post("/probe/rows", data='{"rows": [{"serial": "A"}, {"serial": "B"}]}')
    assert (ok.status_code, ok.get_json()) == (200, {"count": 2})
    bad = probed.post("/probe/rows", data='{"rows": [{"serial": "A"}, {"serial": ""}]}')
    assert bad.status_code == 422
    assert list(bad.get_json()["fields"]) == ["rows.1.serial"]
    too_many = probed.post("/probe/rows", data='{"rows": [{"serial": "A"}, {}, {}, {}]}')
    assert "rows" in too_many.get_json()["fields"]
    for broken in ("{", "[" * 500 + "]" * 500, '{"rows": [{"serial": "A"}'):
        response = probed.post("/probe/rows", data=broken)
        assert response.status_code == 422
        assert "body" in response.get_json()["fields"]
    huge = probed.post("/probe/rows", data='{"rows": [' + '{"serial": "A"},' * 100 + "]}")
    assert huge.status_code == 413


def test_a_validation_error_inside_a_route_is_a_500_that_tells_nothing(probed):
    response = probed.get("/probe/bug")
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"] == "internal_server_error"
    assert "serial" not in str(body) and "Row" not in str(body)
