"""Domain errors: what a refused request tells its caller.

Each error carries a stable English ``code``, an HTTP ``status``, a message
id (English text, translated at the edge through the gettext catalogues) with
its parameters, and ``details`` for machines. Mark message ids with ``N_`` so
``pybabel extract`` finds them; the web layer translates them into the
caller's language. Nothing here imports Flask.
"""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Mark a message id for extraction; translated later, at the edge."""
    return message


class DomainError(Exception):
    status = 422
    code = "rule_violated"
    default_message = N_("The request breaks a rule of the platform.")

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        self.message = message or self.default_message
        self.params = params
        self.details = details or {}
        super().__init__(self.message % params if params else self.message)


class BadRequest(DomainError):
    status = 400
    code = "bad_request"
    default_message = N_("The request could not be read.")


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    default_message = N_("Please sign in.")


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    default_message = N_("You are not allowed to do this.")


class NotFound(DomainError):
    status = 404
    code = "not_found"
    default_message = N_("Not found.")


class Conflict(DomainError):
    status = 409
    code = "conflict"
    default_message = N_("This conflicts with the current state.")


class InvalidTransition(Conflict):
    code = "invalid_state"
    default_message = N_("This is not possible in the current state.")


class ValidationFailed(DomainError):
    """Field errors: ``details = {"fields": {"name": ["message id", ...]}}``."""

    status = 422
    code = "validation_failed"
    default_message = N_("Some fields are not valid.")

    def __init__(self, fields: dict[str, list[str] | str], message: str | None = None) -> None:
        normalised = {k: [v] if isinstance(v, str) else list(v) for k, v in fields.items()}
        super().__init__(message, details={"fields": normalised})

    @property
    def fields(self) -> dict[str, list[str]]:
        return self.details["fields"]


class RuleViolation(DomainError):
    """A rule of the domain refuses the request; ``details`` names the rule
    and, where there is one, the field."""

    status = 422
    code = "rule_violated"

    def __init__(
        self,
        rule: str,
        message: str,
        *,
        field: str | None = None,
        details: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        merged = {"rule": rule, **({"field": field} if field else {}), **(details or {})}
        super().__init__(message, details=merged, **params)
        self.rule = rule
        self.field = field


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"
    default_message = N_("Too many attempts. Please wait and try again.")
