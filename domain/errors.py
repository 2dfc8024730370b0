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


class DuplicateTarget(DomainError):
    """A destination of that name exists (in the registry or in env)."""

    field = "name"


class ReadOnlyTarget(DomainError):
    """A CRM_TARGET_<NAME>_* destination: changed in the environment, not through the API."""


class TargetInUse(DomainError):
    """Unread notifications are still routed to the destination being deleted."""


class SecretStorageUnavailable(DomainError):
    """No usable CRM_SECRET_KEY: a destination's secret cannot be stored encrypted."""


class Conflict(DomainError):
    """The write clashes with what exists (a custom field key already defined)."""


class SignatureRejected(DomainError):
    """A signed inbound message whose signature, timestamp or headers do not verify."""
