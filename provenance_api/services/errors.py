"""The domain error tree; the API's one error handler maps it to JSON and a 4xx status.

::

    DomainError           400 (a malformed request header)
    ├── NotFound          404
    ├── Conflict          409
    ├── Gone              410 (it existed, and was erased for good)
    ├── InvalidInput      422 (fields names each bad field)
    ├── Unauthorized      401
    ├── Forbidden         403 (the caller's role may not call this route)
    ├── TooManyAttempts   429 (retry_after: seconds until a retry may succeed)
    ├── TooLarge          413 (more than a route takes at once)
    └── Unavailable       503 (a dependency is not ready yet: try again later)
"""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """Base of every error a caller can cause; `code` is the machine-readable name."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})


class NotFound(DomainError):
    """The named thing does not exist."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The request contradicts what is already stored."""

    status = 409
    code = "conflict"


class Gone(DomainError):
    """The named thing existed and was erased for good."""

    status = 410
    code = "gone"


class InvalidInput(DomainError):
    """A field is missing or malformed."""

    status = 422
    code = "invalid_input"


class Unauthorized(DomainError):
    """No valid credentials came with the request."""

    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    """The caller is known, but its role may not do this."""

    status = 403
    code = "forbidden"


class TooManyAttempts(DomainError):
    """Too many attempts of this kind lately; `retry_after` says in how many seconds to retry."""

    status = 429
    code = "too_many_attempts"

    def __init__(
        self, message: str, retry_after: int, fields: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message, fields)
        self.retry_after = max(1, retry_after)


class TooLarge(DomainError):
    """The request holds more than the route takes at once (events in a document, ...)."""

    status = 413
    code = "request_entity_too_large"


class Unavailable(DomainError):
    """Something the request needs is not ready yet (e.g. the contracts are not deployed)."""

    status = 503
    code = "unavailable"
