"""Organization names: shown to buyers and in logs, so printable and never blank."""

import pytest
from pydantic import ValidationError

from provenance_api.models import OrganizationCreate, OrgKind


@pytest.mark.parametrize(
    "name",
    ["", "   ", "\t\n", "Acme\x00Farms", "Acme\nFarms", "Acme\x1b[31mFarms", "Acme\u202eFarms"],
)
def test_blank_names_and_control_characters_are_refused(name):
    with pytest.raises(ValidationError) as caught:
        OrganizationCreate(name=name, kind=OrgKind.SUPPLIER)
    assert caught.value.errors()[0]["loc"] == ("name",)


def test_names_are_trimmed_and_normalized():
    created = OrganizationCreate(name="  Cafe\u0301 Müller  ", kind=OrgKind.SUPPLIER)
    assert created.name == "Caf\u00e9 Müller"


def test_joiners_that_scripts_need_are_kept():
    assert OrganizationCreate(name="می‌خواهم", kind=OrgKind.SUPPLIER).name == "می‌خواهم"
