"""API of the approvals area: the lab's approval queue, decisions on many
requests at once, and a resource's named approvers.

- ``GET /approvals``: the requests the caller may decide, oldest first;
  filters ``resource_id``, ``provider_id``, ``from``, ``to``; paged.
- ``POST /approvals/decide``: ``{"approve": [ids], "reject": [{"id",
  "reason"}], "atomic"?}`` → per id ``approved``, ``rejected`` or
  ``refused`` with the reason.
- ``GET /resources/{id}/approvers``: the resource's named approvers (for
  the lab's people).
- ``POST /resources/{id}/approvers``: ``{"user_id"}`` or ``{"email"}`` →
  201 (the lab's admins); ``Idempotency-Key``.
- ``DELETE /resources/{id}/approvers/{user_id}``: → 204 (the lab's admins).

A batch of decisions answers 200 with what became of every id; by default
what can be decided is decided and the rest reported (see
``booking.services.approvals``). With ``"atomic": true`` a refused id
refuses the whole batch: 409 with ``details.results``, nothing decided.
"""

from __future__ import annotations

from flask_babel import gettext

from booking.extensions import db
from booking.schemas import approvals as schemas
from booking.services import approvals as service
from booking.web.api.blueprint import Blueprint
from booking.web.api.idempotency import idempotent
from booking.web.auth import require_signed_in
from booking.web.errors import translate

blp = Blueprint(
    "approvals_api",
    __name__,
    description="Approvals: the approval queue, decisions in bulk, a resource's approvers",
)


def say(message_id: str, params: dict | None) -> str:
    """A message id with its parameters, in the caller's language."""
    return gettext(message_id, **params) if params else gettext(message_id)


def translated_result(result: dict) -> dict:
    """One id's result with its message in the caller's language."""
    error = result.get("error")
    if error is None:
        return result
    params = error.get("params") or {}
    details = dict(error.get("details") or {})
    if "fields" in details:
        details["fields"] = translate(details["fields"])
    message = say(error["message"], params)
    return {**result, "error": {"code": error["code"], "message": message, "details": details}}


def translate_voucher_problems(items: list[service.QueueItem]) -> None:
    for item in items:
        problem = item.voucher.problem if item.voucher else None
        if problem and "params" in problem:
            problem["message"] = say(problem["message"], problem.pop("params"))


@blp.route("/approvals", methods=["GET"])
@blp.arguments(schemas.QueueArgs, location="query")
@blp.response(200, schemas.QueuePageSchema)
def queue(args):
    """The requests the caller may decide (their labs' resources and those
    naming them approver), oldest request first."""
    actor = require_signed_in()
    filters = service.QueueFilters(
        resource_id=args.get("resource_id"),
        provider_id=args.get("provider_id"),
        start=args.get("start"),
        end=args.get("end"),
        page=args["page"],
        per_page=args["per_page"],
    )
    items, total = service.approval_queue(db.session, actor, filters)
    translate_voucher_problems(items)
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


@blp.route("/approvals/decide", methods=["POST"])
@blp.arguments(schemas.DecideSchema)
@blp.response(200, schemas.DecideResultSchema)
@blp.alt_response(409, description="atomic batch refused: nothing decided")
def decide(data):
    """Approve and reject many requests at once; each id's result in the answer."""
    actor = require_signed_in()
    batch = service.Batch(
        approve=list(data["approve"]),
        reject=[(r["id"], r["reason"]) for r in data["reject"]],
    )
    try:
        outcomes = service.decide(db.session, actor, batch, atomic=data["atomic"])
    except service.BatchRefused as refused:
        refused.details["results"] = [translated_result(r) for r in refused.details["results"]]
        raise
    return {
        "results": [translated_result(o.as_dict()) for o in outcomes],
        "approved": sum(o.outcome == "approved" for o in outcomes),
        "rejected": sum(o.outcome == "rejected" for o in outcomes),
        "refused": sum(o.outcome == "refused" for o in outcomes),
    }


@blp.route("/resources/<int:resource_id>/approvers", methods=["GET"])
@blp.response(200, schemas.ApproverListSchema)
def list_approvers(resource_id):
    """Who besides the lab's admins decides this resource's requests."""
    return {"items": service.list_approvers(db.session, require_signed_in(), resource_id)}


@blp.route("/resources/<int:resource_id>/approvers", methods=["POST"])
@idempotent
@blp.arguments(schemas.ApproverInSchema)
@blp.response(201, schemas.ApproverSchema)
def name_approver(data, resource_id):
    """Name a member of the lab approver of this resource (the lab's admins)."""
    return service.name_approver(
        db.session,
        require_signed_in(),
        resource_id,
        user_id=data.get("user_id"),
        email=data.get("email"),
    )


@blp.route("/resources/<int:resource_id>/approvers/<int:user_id>", methods=["DELETE"])
@blp.response(204)
def remove_approver(resource_id, user_id):
    """Stop a person deciding this resource's requests (the lab's admins)."""
    service.remove_approver(db.session, require_signed_in(), resource_id, user_id)
