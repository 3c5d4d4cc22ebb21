"""The exceptions of the reader agent.

AgentError
├── ConfigError    the config or context file is refused; the message names the key and line
└── EventError     a read cannot become a custody event (not a serialized GS1 Digital Link)
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(AgentError, ValueError):
    """A config or context file that is refused: `agent.json line 7: ...`."""


class EventError(AgentError, ValueError):
    """A read that cannot become an event; the message says why in words."""
