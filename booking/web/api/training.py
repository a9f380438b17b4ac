"""API of training and qualification: the lab's training register.

- ``GET /trainings``: a lab's register (its admins; ``provider_id`` where
  they run several labs), or with ``scope=mine`` the caller's own; filters
  ``user_id``, ``resource_id``, ``category_id``, ``q``, ``state``.
- ``POST /trainings``: grant on a resource or a category → 201; renews a
  current grant of the same scope; ``Idempotency-Key``.
- ``GET /trainings/{id}``: one record (the trainee, the lab's admins).
- ``POST /trainings/{id}/revoke``: ``{"reason"?}`` → the revoked record;
  409 when already revoked.
"""

from __future__ import annotations

from booking.extensions import db
from booking.schemas import training as schemas
from booking.services import training as service
from booking.web.api.blueprint import Blueprint
from booking.web.api.idempotency import idempotent
from booking.web.auth import require_signed_in

blp = Blueprint(
    "training_api", __name__, description="Training: who is qualified on which resource"
)


@blp.route("/trainings", methods=["GET"])
@blp.arguments(schemas.TrainingRegisterArgs, location="query")
@blp.response(200, schemas.TrainingPageSchema)
def list_trainings(args):
    """A lab's training register, newest grant first; or the caller's own."""
    actor = require_signed_in()
    if args["scope"] == "mine":
        items = service.my_trainings(db.session, actor)
        return {"items": items, "page": 1, "per_page": len(items), "total": len(items)}
    filters = service.RegisterFilters(
        provider_id=args.get("provider_id"),
        user_id=args.get("user_id"),
        resource_id=args.get("resource_id"),
        category_id=args.get("category_id"),
        q=args.get("q"),
        state=args.get("state"),
        page=args["page"],
        per_page=args["per_page"],
    )
    items, total = service.list_register(db.session, actor, filters)
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


@blp.route("/trainings", methods=["POST"])
@idempotent
@blp.arguments(schemas.TrainingGrantSchema)
@blp.response(201, schemas.TrainingSchema)
def grant(data):
    """Record that a user is trained on a resource or a category of the lab."""
    record = service.grant_training(db.session, require_signed_in(), data)
    return service.entry_for(db.session, record)


@blp.route("/trainings/<int:record_id>", methods=["GET"])
@blp.response(200, schemas.TrainingSchema)
def get_training(record_id):
    record = service.get_record(db.session, require_signed_in(), record_id)
    return service.entry_for(db.session, record)


@blp.route("/trainings/<int:record_id>/revoke", methods=["POST"])
@blp.arguments(schemas.TrainingRevokeSchema)
@blp.response(200, schemas.TrainingSchema)
def revoke(data, record_id):
    """End a training now (the lab's admins); it stays in the register."""
    record = service.revoke_training(db.session, require_signed_in(), record_id, data.get("reason"))
    return service.entry_for(db.session, record)
