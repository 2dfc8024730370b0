"""Domain exceptions; the API maps each to a status code in one table."""


class DomainError(Exception):
    """Base class; `field` names the input at fault when there is one."""

    field: str | None = None

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class DuplicateEmail(DomainError):
    field = "email"


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key came back with a different body."""

    field = "Idempotency-Key"


class NotFound(DomainError):
    pass


class IllegalTransition(DomainError):
    field = "status"


class Conflict(DomainError):
    """The write clashes with what exists (a custom field key already defined)."""
