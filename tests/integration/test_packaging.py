"""The agent extra stays light: a Raspberry Pi installs it without the server's stack."""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement

SERVER_ONLY = {"flask", "web3", "py-evm", "eth-tester", "sqlalchemy", "sqlmodel", "alembic"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(distribution: str, extras: set[str]) -> set[str]:
    """Every distribution that installing `distribution[extras]` pulls, from installed metadata."""
    seen: set[str] = set()
    pending = [(distribution, frozenset(extras))]
    while pending:
        name, wanted = pending.pop()
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is not None and not any(
                marker.evaluate({"extra": extra}) for extra in (wanted or {""})
            ):
                continue
            child = canonical(requirement.name)
            if child not in seen:
                seen.add(child)
                pending.append((child, frozenset(requirement.extras)))
    return seen


def test_agent_extra_pulls_no_server_package() -> None:
    pulled = closure("provenance", {"agent"})
    assert {"eth-account", "httpx", "pynfc", "pyserial"} <= pulled
    assert pulled.isdisjoint(SERVER_ONLY), sorted(pulled & SERVER_ONLY)


def test_server_extra_does_pull_the_server_stack() -> None:
    # The same walk finds the stack when it is asked for, so the test above can fail.
    assert {"flask", "web3", "sqlmodel", "py-evm"} <= closure("provenance", {"server"})
