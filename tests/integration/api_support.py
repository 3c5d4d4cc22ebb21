"""An API under test: the app on a migrated SQLite file (or the in-memory fake), its client,
and helpers that make callers of every role."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from provenance_api import db
from provenance_api.app import create_app
from provenance_api.models import OrganizationCreate, OrgKind
from provenance_api.schemas import Role
from provenance_api.services import organizations
from provenance_api.unit_of_work import SqlUnitOfWork
from tests.fakes.unit_of_work import FakeUnitOfWork

GTIN = "09506000134352"  # GS1's own example GTIN, check digit included
GTIN_13 = GTIN[1:]
OTHER_GTIN = "04006381333931"


@dataclass
class Api:
    """The app, its client, and how to make callers."""

    app: Flask
    uow: Any  # a factory of units of work
    client: FlaskClient = field(init=False)
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    def key(self, role: Role, name: str | None = None) -> str:
        """A new caller of `role` (a new organization, or a new operator); its API key."""
        name = name or f"{role.value.title()} {next(self._names)}"
        if role is Role.OPERATOR:
            return organizations.create_operator(self.uow(), name).api_key
        runtime = self.app.extensions["provenance"]
        data = OrganizationCreate(name=name, kind=OrgKind(role.value))
        return organizations.create_organization(self.uow(), runtime.keybox, data).api_key

    def call(self, method: str, url: str, key: str | None = None, **kwargs: Any):
        """One request, with `key` as the bearer token when given."""
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.client.open(url, method=method, headers=headers, **kwargs)


def make_api(kind: str, tmp_path, database_url: str | None = None) -> Api:
    """An Api over SQLite ("sqlite"), `database_url` ("postgres") or the in-memory fake."""
    settings = {"TESTING": True, "DATA_DIR": str(tmp_path / "data")}
    if database_url:
        settings["DATABASE_URL"] = database_url
    if kind == "fake":
        fake = FakeUnitOfWork()
        return Api(create_app(settings, unit_of_work=lambda: fake), lambda: fake)
    app = create_app(settings)
    db.upgrade(app.config["DATABASE_URL"])
    engine = app.extensions["provenance"].engine
    return Api(app, lambda: SqlUnitOfWork(engine))
