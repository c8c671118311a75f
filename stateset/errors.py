"""Domain errors: what a service raises when a rule of the domain says no (SPEC §3).

Services, selectors and the platform raise these; they never import the API package. The API maps
them to the error envelope in one place (``stateset.api.errors.exception_handler``); the admin shows
their ``message``; commands print it.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule of the domain said no. Subclasses set ``status`` and ``code``."""

    status = 400
    code = "bad_request"
    default_message = "The request cannot be processed."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None,
                 code: str | None = None):
        self.message = message or self.default_message
        self.details = details or {}
        if code:
            self.code = code
        super().__init__(self.message)


class ValidationFailed(DomainError):
    status, code, default_message = 422, "validation_error", "Invalid input."


class Forbidden(DomainError):
    status, code, default_message = 403, "forbidden", "You may not do this."


class NotFound(DomainError):
    status, code, default_message = 404, "not_found", "Not found."


class Conflict(DomainError):
    status, code, default_message = 409, "conflict", "The request conflicts with the current state."


class InvalidTransition(Conflict):
    code, default_message = "invalid_transition", "This state transition is not allowed."


class InsufficientStock(Conflict):
    code, default_message = "insufficient_stock", "Not enough stock to satisfy the request."


class PreconditionFailed(DomainError):
    status, code, default_message = (412, "precondition_failed",
                                     "If-Match does not match the current version.")


class PreconditionRequired(DomainError):
    status, code, default_message = (428, "if_match_required",
                                     "Send If-Match with the ETag you read.")


class PayloadTooLarge(DomainError):
    status, code, default_message = 413, "payload_too_large", "The request body is too large."


class RateLimited(DomainError):
    status, code, default_message = 429, "rate_limited", "Too many requests."

    def __init__(self, retry_after: int, *, limit: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        # ``limit`` (the window's allowance) makes the answer carry RateLimit-* headers as well.
        self.retry_after, self.limit = retry_after, limit


def check_transition(machine: dict[str, frozenset[str]], current: str, target: str, *, entity: str,
                     details: dict[str, Any] | None = None, code: str | None = None) -> None:
    """The one status-machine check: InvalidTransition (409) unless ``machine[current]`` allows
    ``target``, naming the move and what is allowed. ``entity`` starts the message ("An order")."""
    allowed = machine.get(current, frozenset())
    if target not in allowed:
        raise InvalidTransition(f"{entity} cannot go from {current} to {target}.", code=code,
                                details={**(details or {}), "from": current, "to": target,
                                         "allowed": sorted(allowed)})
