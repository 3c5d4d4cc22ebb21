"""Organizations, operators, keys and products as services over the in-memory unit of work."""

from __future__ import annotations

import base64
import secrets

import pytest

from provenance_api.keys import KeyBox
from provenance_api.models import OrganizationCreate, OrgKind
from provenance_api.schemas import ProductCreate, ProductUpdate, Role
from provenance_api.services import organizations, products
from provenance_api.services.errors import Conflict, InvalidInput, NotFound, Unauthorized
from tests.fakes.unit_of_work import FakeUnitOfWork

KEYBOX = KeyBox(base64.b64encode(secrets.token_bytes(32)).decode())


@pytest.fixture
def uow():
    return FakeUnitOfWork()


def _org(uow, name="Acme", kind=OrgKind.SUPPLIER):
    created = organizations.create_organization(
        uow, KEYBOX, OrganizationCreate(name=name, kind=kind)
    )
    return created, organizations.authenticate(uow, created.api_key)


def test_a_new_organization_holds_a_sealed_key_and_one_working_api_key(uow):
    created, caller = _org(uow)
    assert caller.role is Role.SUPPLIER
    assert caller.organization_id == created.organization.id
    with uow:
        stored = uow.organizations.get(created.organization.id)
        assert created.api_key not in repr(vars(stored))
        assert len(KEYBOX.open(stored.encrypted_key, stored.address)) == 32
        assert uow.api_keys.count_active(caller.owner) == 1
    with pytest.raises(Conflict):
        _org(uow)


def test_an_unknown_malformed_or_revoked_key_is_unauthorized(uow):
    created, caller = _org(uow)
    for presented in ("", "pk_", "pk__", "nonsense", created.api_key + "x", "pk_" + "a" * 500):
        with pytest.raises(Unauthorized):
            organizations.authenticate(uow, presented)
    spare = organizations.create_api_key(uow, caller.owner)
    organizations.revoke_api_key(uow, caller.owner, caller.key_prefix)
    with pytest.raises(Unauthorized):
        organizations.authenticate(uow, created.api_key)
    assert organizations.authenticate(uow, spare.api_key).owner == caller.owner


def test_the_last_key_stays_unless_allowed_and_nothing_changes_when_refused(uow):
    _, caller = _org(uow)
    commits = uow.commits
    with pytest.raises(Conflict):
        organizations.revoke_api_key(uow, caller.owner, caller.key_prefix)
    assert uow.commits == commits
    shown = organizations.revoke_api_key(uow, caller.owner, caller.key_prefix, allow_last=True)
    assert shown.active is False


def test_another_owners_key_is_not_found(uow):
    _, mine = _org(uow, "Mine")
    _, theirs = _org(uow, "Theirs")
    with pytest.raises(NotFound):
        organizations.revoke_api_key(uow, mine.owner, theirs.key_prefix, allow_last=True)
    with uow:
        assert uow.api_keys.by_prefix(theirs.key_prefix).revoked_at is None
    page = organizations.list_api_keys(uow, mine.owner, None, 10)
    assert [k.prefix for k in page.items] == [mine.key_prefix]


def test_operators_are_named_printably_and_once(uow):
    created = organizations.create_operator(uow, "  Ops team ")
    assert created.operator.name == "Ops team"
    assert organizations.authenticate(uow, created.api_key).role is Role.OPERATOR
    with pytest.raises(Conflict):
        organizations.create_operator(uow, "Ops team")
    with pytest.raises(InvalidInput):
        organizations.create_operator(uow, "Ops\u202eteam")


def test_products_belong_to_their_supplier(uow):
    _, owner = _org(uow, "Owner")
    _, rival = _org(uow, "Rival")
    data = ProductCreate(gtin="9506000134352", name="Tea")
    created = products.create_product(uow, owner.organization_id, data)
    assert created.gtin == "09506000134352"
    with pytest.raises(Conflict) as taken:
        products.create_product(uow, rival.organization_id, data)
    assert "Owner" not in taken.value.message
    with pytest.raises(NotFound):
        products.get_product(uow, rival.organization_id, created.gtin)
    with pytest.raises(NotFound):
        products.update_product(uow, rival.organization_id, created.gtin, ProductUpdate(name="X"))
    updated = products.update_product(
        uow, owner.organization_id, created.gtin, ProductUpdate(description="Loose leaf")
    )
    assert (updated.name, updated.description) == ("Tea", "Loose leaf")
    assert products.list_products(uow, rival.organization_id, None, 10).items == []
