"""What the role pages (bookings, lab, claims, bureau, vouchers, admin) share:
labels of states and kinds, putting a service's refusal beside the form
field it is about (keeping what was typed), times for ``datetime-local``
inputs, paging. No routes here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma
from flask import request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from booking.domain import clock
from booking.domain.errors import DomainError

RESERVATION_STATUS = {
    "requested": _l("Waiting for approval"),
    "approved": _l("Approved"),
    "in_use": _l("In use"),
    "completed": _l("Completed"),
    "settled": _l("Settled"),
    "rejected": _l("Rejected"),
    "expired": _l("Expired"),
    "cancelled": _l("Cancelled"),
    "no_show": _l("No-show"),
}
SERVICE_WAY = {
    "self_operated": _l("The customer operates (占用共享)"),
    "guided": _l("The customer operates under guidance (技术共享)"),
    "entrusted": _l("The lab runs it for the customer (委托共享)"),
    "remote": _l("Remote (远程共享)"),
    "other": _l("Other"),
}
CLAIM_STATUS = {
    "draft": _l("Draft"),
    "submitted": _l("Submitted, being audited"),
    "audited": _l("Audited, waiting for payment"),
    "paid": _l("Paid"),
    "rejected": _l("Rejected"),
    "withdrawn": _l("Withdrawn"),
}
LINE_STATUS = {
    "pending": _l("Waiting for audit"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
}
LEDGER_KIND = {
    "issue": _l("Issued"),
    "hold": _l("Held for a booking"),
    "release": _l("Hold released"),
    "redeem": _l("Paid for a booking"),
    "expire": _l("Expired"),
    "adjust": _l("Adjusted"),
    "revoke": _l("Revoked"),
}
VOUCHER_STATUS = {
    "active": _l("Active"),
    "expired": _l("Expired"),
    "revoked": _l("Revoked"),
}
#: Evidence a claim line may lack (``claims`` service names).
MISSING_EVIDENCE = {
    "invoice_number": _l("invoice number"),
    "payment_proof": _l("proof of the customer's payment"),
    "usage_record": _l("usage record"),
    "actual_usage": _l("actual usage"),
    "customer_confirmation": _l("the customer's confirmation of the service"),
    "provider_confirmation": _l("the lab's confirmation of the service"),
    "claim_window": _l("claim window passed"),
    "related_party": _l("related parties"),
}


def labels() -> dict[str, Any]:
    return {
        "reservation_status": RESERVATION_STATUS,
        "service_way": SERVICE_WAY,
        "claim_status": CLAIM_STATUS,
        "line_status": LINE_STATUS,
        "ledger_kind": LEDGER_KIND,
        "voucher_status": VOUCHER_STATUS,
        "missing_evidence": MISSING_EVIDENCE,
    }


def message_of(error: DomainError) -> str:
    """The error's message in the page's language."""
    return gettext(error.message, **error.params) if error.params else gettext(error.message)


def translated(message_id: str, params: dict | None = None) -> str:
    """A message id held in data (a service's refusal by row) in the page's language."""
    return gettext(message_id, **params) if params else gettext(message_id)


def attach(form, errors: dict[str, list[str]], aliases: dict[str, str] | None = None) -> list[str]:
    """Put messages (already translated) beside the form's fields; return
    those no field of the form shows."""
    left: list[str] = []
    for name, messages in errors.items():
        target = getattr(form, (aliases or {}).get(name, name), None)
        if target is not None and hasattr(target, "errors") and name != "csrf_token":
            target.errors = [*list(target.errors or []), *messages]
        else:
            left.extend(messages)
    return left


def schema_errors(error: ma.ValidationError) -> dict[str, list[str]]:
    """A marshmallow refusal as translated messages by field (nested fields
    and schema-wide messages under their top-level name)."""
    found: dict[str, list[str]] = {}

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for inner in value.values():
                walk(name, inner)
        elif isinstance(value, list):
            for item in value:
                walk(name, item)
        else:
            found.setdefault(name, []).append(gettext(str(value)))

    for name, value in error.normalized_messages().items():
        walk(name, value)
    return found


def domain_errors(error: DomainError) -> dict[str, list[str]]:
    """A service's refusal as translated messages by field: the fields of a
    ``ValidationFailed``, or the one field a ``RuleViolation`` names (else
    ``__all__``)."""
    fields = error.details.get("fields") if isinstance(error.details, dict) else None
    if isinstance(fields, dict):
        return {name: [gettext(m) for m in messages] for name, messages in fields.items()}
    field = error.details.get("field") if isinstance(error.details, dict) else None
    return {field or "__all__": [message_of(error)]}


def local_input(value: datetime | None) -> str:
    """An instant as a ``datetime-local`` value in platform time."""
    if value is None:
        return ""
    return value.astimezone(clock.platform_tz()).strftime("%Y-%m-%dT%H:%M")


def page_number() -> int:
    number = request.args.get("page", type=int) or 1
    return max(1, min(number, 100_000))


def int_or_text(value: str | None):
    """What a text box gave, for a schema with strict integers: an int when it
    is one, else the text (which the schema refuses with its message), or
    None when empty."""
    text = (value or "").strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text
