"""API of the reservations area: API.md's "Reservations" section, a
resource's availability (from its "Catalog" section), moving a booking, and
the waiting list.

| method and path | what |
| --- | --- |
| ``POST /reservations`` | book (or a series, with ``recurrence``); ``Idempotency-Key`` |
| ``GET /reservations``, ``GET /reservations/{id}`` | the caller's, or their lab's |
| ``POST /reservations/{id}/approve``, ``/reject`` | lab admin decides |
| ``POST /reservations/{id}/cancel`` | customer (within the window) or lab admin |
| ``POST /reservations/{id}/reschedule`` | move, atomically |
| ``POST /reservations/{id}/check-in``, ``/check-out``, ``/complete``, ``/no-show`` | lab admin |
| ``POST /reservations/{id}/rating`` | the customer, after completion, once |
| ``GET /resources/{id}/availability`` | free and busy intervals, no customer details |
| ``POST /waitlist``, ``GET /waitlist`` | wait for a taken time; the caller's entries |
| ``POST /waitlist/{id}/accept``, ``/decline``, ``DELETE /waitlist/{id}`` | answer an offer, leave |
"""

from __future__ import annotations

from flask import Response, jsonify
from flask_babel import gettext as translate_message

from booking import process_settings
from booking.domain.errors import DomainError
from booking.extensions import db
from booking.schemas import reservations as schemas
from booking.services import availability, waitlist
from booking.services import reservations as service
from booking.web.api.blueprint import Blueprint
from booking.web.api.idempotency import idempotent
from booking.web.auth import require_signed_in

blp = Blueprint(
    "reservations_api",
    __name__,
    description="Reservations: bookings, their life cycle, availability, waiting lists",
)


@blp.record_once
def _configure(state) -> None:
    hours = state.app.config.get("WAITLIST_OFFER_HOURS")
    process_settings.keep(state.app, lambda: waitlist.configure(hours))


def _translated(refused: list[dict]) -> list[dict]:
    """Refused occurrences of a series, their messages in the caller's language."""
    out = []
    for item in refused:
        error = dict(item["error"])
        params = error.pop("params", None) or {}
        error["message"] = translate_message(error["message"], **params)
        out.append({**item, "error": error})
    return out


@blp.route("/reservations", methods=["POST"])
@idempotent
@blp.arguments(schemas.ReservationCreateSchema)
@blp.response(201, schemas.ReservationSchema)
@blp.alt_response(201, schema=schemas.ReservationSeriesCreatedSchema, description="a series")
def create_reservation(data):
    """Book a resource. With ``recurrence`` a series is booked instead: the
    answer is ``{"series_id", "items", "refused"}``."""
    actor = require_signed_in()
    try:
        result = service.create_booking(db.session, actor, data)
    except DomainError as error:
        if "occurrences" in error.details:
            error.details["occurrences"] = _translated(error.details["occurrences"])
        raise
    if isinstance(result, service.SeriesResult):
        body = schemas.ReservationSeriesCreatedSchema().dump(
            {
                "series_id": result.series.id,
                "items": result.made,
                "refused": _translated(result.refused),
            }
        )
        response = jsonify(body)
        response.status_code = 201
        return response
    return result


@blp.route("/reservations", methods=["GET"])
@blp.arguments(schemas.ReservationListArgs, location="query")
@blp.response(200, schemas.ReservationPageSchema)
def list_reservations(args):
    """The caller's bookings (their organisations'), or their lab's for a lab admin."""
    actor = require_signed_in()
    filters = service.ListFilters(
        status=tuple(args.get("status") or ()),
        resource_id=args.get("resource_id"),
        series_id=args.get("series_id"),
        start=args.get("start"),
        end=args.get("end"),
        scope=args.get("scope"),
        page=args["page"],
        per_page=args["per_page"],
    )
    items, total = service.list_reservations(db.session, actor, filters)
    # Built directly (schemas.reservation_json); the schema documents the shape.
    return jsonify(
        {
            "items": [schemas.reservation_json(r) for r in items],
            "page": args["page"],
            "per_page": args["per_page"],
            "total": total,
        }
    )


@blp.route("/reservations/<int:reservation_id>", methods=["GET"])
@blp.response(200, schemas.ReservationSchema)
def get_reservation(reservation_id):
    return service.get_reservation(db.session, require_signed_in(), reservation_id)


@blp.route("/reservations/<int:reservation_id>/approve", methods=["POST"])
@blp.response(200, schemas.ReservationSchema)
def approve(reservation_id):
    """Approve a request (lab admin): → ``approved``."""
    return service.approve(db.session, require_signed_in(), reservation_id)


@blp.route("/reservations/<int:reservation_id>/reject", methods=["POST"])
@blp.arguments(schemas.ReservationRejectSchema)
@blp.response(200, schemas.ReservationSchema)
def reject(data, reservation_id):
    """Reject a request with a reason (lab admin): → ``rejected``."""
    return service.reject(db.session, require_signed_in(), reservation_id, data["reason"])


@blp.route("/reservations/<int:reservation_id>/cancel", methods=["POST"])
@blp.arguments(schemas.ReservationCancelSchema)
@blp.response(200, schemas.ReservationSchema)
def cancel(data, reservation_id):
    """Cancel: the customer within the lab's cancellation window, the lab
    admin any time with a reason. ``scope: "following"`` also cancels the
    later occurrences of the series."""
    cancelled = service.cancel(
        db.session, require_signed_in(), reservation_id, data.get("reason"), data["scope"]
    )
    return cancelled[0]


@blp.route("/reservations/<int:reservation_id>/reschedule", methods=["POST"])
@blp.arguments(schemas.ReservationRescheduleSchema)
@blp.response(200, schemas.ReservationSchema)
def reschedule(data, reservation_id):
    """Move a booking; checked as a new request, the old time kept on refusal."""
    return service.reschedule(
        db.session,
        require_signed_in(),
        reservation_id,
        data["start"],
        data["end"],
        data.get("units"),
    )


@blp.route("/reservations/<int:reservation_id>/check-in", methods=["POST"])
@blp.arguments(schemas.ReservationMomentSchema)
@blp.response(200, schemas.ReservationSchema)
def check_in(data, reservation_id):
    """The customer arrived (lab admin): → ``in_use``, actual start recorded."""
    return service.check_in(db.session, require_signed_in(), reservation_id, data.get("at"))


@blp.route("/reservations/<int:reservation_id>/check-out", methods=["POST"])
@blp.arguments(schemas.ReservationMomentSchema)
@blp.response(200, schemas.ReservationSchema)
def check_out(data, reservation_id):
    """The customer left (lab admin): actual end recorded."""
    return service.check_out(db.session, require_signed_in(), reservation_id, data.get("at"))


@blp.route("/reservations/<int:reservation_id>/complete", methods=["POST"])
@blp.arguments(schemas.ReservationCompleteSchema)
@blp.response(200, schemas.ReservationSchema)
def complete(data, reservation_id):
    """Record the actual usage (lab admin): → ``completed`` with the final cost."""
    return service.complete(db.session, require_signed_in(), reservation_id, data)


@blp.route("/reservations/<int:reservation_id>/no-show", methods=["POST"])
@blp.response(200, schemas.ReservationSchema)
def no_show(reservation_id):
    """Nobody came (lab admin, after the start): → ``no_show``."""
    return service.mark_no_show(db.session, require_signed_in(), reservation_id)


@blp.route("/reservations/<int:reservation_id>/rating", methods=["POST"])
@idempotent
@blp.arguments(schemas.ReservationRatingInSchema)
@blp.response(201, schemas.ReservationRatingSchema)
def rate(data, reservation_id):
    """Rate a completed booking, once (the customer)."""
    return service.rate(
        db.session, require_signed_in(), reservation_id, data["score"], data.get("comment")
    )


@blp.route("/resources/<int:resource_id>/availability", methods=["GET"])
@blp.arguments(schemas.AvailabilityArgs, location="query")
@blp.response(200, schemas.AvailabilitySchema)
def resource_availability(args, resource_id):
    """Free and busy intervals of a resource (at most 93 days); busy
    intervals carry no customer details. A free interval is where a booking
    of ``units`` may lie whole, buffers, opening hours, lead time and
    horizon considered."""
    answer = availability.availability_of(
        db.session, resource_id, args["start"], args["end"], args["units"]
    )
    # Thousands of intervals: written out directly, not through the schema.
    return Response(answer.to_json(), mimetype="application/json")


@blp.route("/waitlist", methods=["POST"])
@idempotent
@blp.arguments(schemas.WaitlistJoinSchema)
@blp.response(201, schemas.WaitlistEntrySchema)
def join_waitlist(data):
    """Wait for a taken time; offered the slot, in order, when it frees up."""
    return waitlist.join(db.session, require_signed_in(), data)


@blp.route("/waitlist", methods=["GET"])
@blp.response(200, schemas.WaitlistListSchema)
def list_waitlist():
    """The caller's open waiting-list entries."""
    return {"items": waitlist.list_entries(db.session, require_signed_in())}


@blp.route("/waitlist/<int:entry_id>/accept", methods=["POST"])
@blp.response(201, schemas.ReservationSchema)
def accept_offer(entry_id):
    """Take an offered slot: booked through the normal rules."""
    return waitlist.accept(db.session, require_signed_in(), entry_id)


@blp.route("/waitlist/<int:entry_id>/decline", methods=["POST"])
@blp.response(200, schemas.WaitlistEntrySchema)
def decline_offer(entry_id):
    """Let an offered slot go to the next in line."""
    return waitlist.decline(db.session, require_signed_in(), entry_id)


@blp.route("/waitlist/<int:entry_id>", methods=["DELETE"])
@blp.response(200, schemas.WaitlistEntrySchema)
def leave_waitlist(entry_id):
    """Stop waiting."""
    return waitlist.leave(db.session, require_signed_in(), entry_id)
