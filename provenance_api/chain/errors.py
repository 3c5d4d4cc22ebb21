"""Errors of the chain adapter."""

from __future__ import annotations


class ChainError(Exception):
    """Base of the chain adapter's errors; each message says what is wrong in words.

    ChainError
    ├── ChainConfigError          a bad chain URL or state directory, or a closed chain
    │   ├── ChainStateLocked      another process (or connection) has the embedded chain open
    │   └── ChainStateIncompatible  the state directory holds another chain or format
    ├── ChainUnavailable          the JSON-RPC node does not answer
    ├── DeploymentFailed          a contract deployment reverted or produced no code
    ├── NotADevelopmentChain      coin was asked for on a chain without a faucet
    ├── NotAdmin                  a key that is not the contracts' admin tried to change roles
    └── RoleChangeFailed          the node refused or reverted a role grant or revocation
    """


class ChainConfigError(ChainError):
    """The chain URL or the embedded chain's state directory cannot be used."""


class ChainStateLocked(ChainConfigError):
    """The embedded chain's state directory is in use."""


class ChainStateIncompatible(ChainConfigError):
    """The state directory holds a chain this version cannot open."""


class ChainUnavailable(ChainError):
    """The JSON-RPC node did not answer."""


class DeploymentFailed(ChainError):
    """A deployment transaction failed."""


class NotADevelopmentChain(ChainError):
    """Only the embedded chain and anvil hand out development coin."""


class NotAdmin(ChainError):
    """The key given as the admin's does not hold DEFAULT_ADMIN_ROLE on a contract."""


class RoleChangeFailed(ChainError):
    """A grant or revocation was refused by the node or reverted."""
