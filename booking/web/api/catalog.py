"""API of the catalog area (API.md, "Catalog"): search and read resources;
the owner lab's admins create and change them, their prices, blackouts and
photos, and import lists; the platform admin keeps the calendar of holidays
and adjusted working days.

``GET /resources/{id}/availability`` belongs to the reservations area.
"""

from __future__ import annotations

from flask import Response, current_app, jsonify, url_for
from flask_babel import gettext

from booking.domain.errors import N_, ValidationFailed
from booking.extensions import db
from booking.schemas import catalog as schemas
from booking.services import catalog, catalog_cache, catalog_import, photos
from booking.web.api.blueprint import Blueprint
from booking.web.api.idempotency import idempotent
from booking.web.auth import current_actor

blp = Blueprint(
    "catalog_api",
    __name__,
    description="Catalog: resources, categories, prices, blackouts, photos, calendar",
)


# --- resources -----------------------------------------------------------------


@blp.route("/resources", methods=["GET"])
@blp.arguments(schemas.ResourceQuerySchema, location="query")
@blp.response(200, schemas.ResourcePageSchema)
def search_resources(args):
    """Search the catalog: ``q`` finds Chinese or English names, model, maker,
    category names and aliases, description, as parts of words; filters;
    sorted; paged. Retired resources are not listed."""
    page = catalog.search_resources(db.session, catalog.SearchQuery(**args))
    return jsonify(
        {
            "items": _resource_jsons(page.items),
            "page": page.page,
            "per_page": page.per_page,
            "total": page.total,
        }
    )


def _resource_jsons(items) -> list[dict]:
    """Listed resources' JSON, built directly (``schemas.resource_json``:
    no marshmallow pass over every field; the schema documents the shape)
    and kept with the resources (``catalog_cache``)."""
    photo = url_for("catalog_pages.photo", photo_id=0)[: -len("0")]

    def photo_url(photo_id: int, thumbnail: bool) -> str:
        return f"{photo}{photo_id}/thumbnail" if thumbnail else f"{photo}{photo_id}"

    def build(listed) -> dict:
        return schemas.resource_json(listed, photo_url)

    return [catalog_cache.CACHE.json(item, photo, build) for item in items]


@blp.route("/resources", methods=["POST"])
@idempotent
@blp.arguments(schemas.ResourceInSchema)
@blp.response(201, schemas.ResourceSchema)
def create_resource(data):
    """Add a resource to a lab (its admin). ``provider_id`` may be left out by
    the admin of one lab."""
    resource = catalog.create_resource(db.session, current_actor(), data)
    return catalog.get_resource(db.session, current_actor(), resource.id)


@blp.route("/resources/<int:resource_id>", methods=["GET"])
@blp.response(200, schemas.ResourceSchema)
def get_resource(resource_id):
    """One resource with its rules, opening hours and published prices."""
    item = catalog.resource_view(db.session, current_actor(), resource_id)
    return jsonify(_resource_jsons([item])[0])


@blp.route("/resources/<int:resource_id>", methods=["PATCH"])
@blp.arguments(schemas.ResourcePatchSchema)
@blp.response(200, schemas.ResourceSchema)
def update_resource(data, resource_id):
    """Change a resource (the owner lab's admins; anyone else: 404). ``rules``
    merge into the current rules; ``opening_hours`` replace the week;
    ``prices`` replace the price list, versioned like ``PUT .../prices``.
    ``status: retired`` takes it out of the catalog (kept for reports)."""
    catalog.update_resource(db.session, current_actor(), resource_id, data)
    db.session.expire_all()
    return catalog.get_resource(db.session, current_actor(), resource_id)


# --- prices ----------------------------------------------------------------------


@blp.route("/resources/<int:resource_id>/prices", methods=["GET"])
@blp.arguments(schemas.PriceHistoryQuerySchema, location="query")
@blp.response(200, schemas.PriceListSchema)
def get_prices(args, resource_id):
    """The published prices in effect; with ``history=true`` (the owner lab's
    admins) every version, newest first."""
    actor = current_actor()
    if args["history"]:
        rules = catalog.price_history(db.session, actor, resource_id)
    else:
        rules = catalog.current_prices(catalog.get_resource(db.session, actor, resource_id))
    return {"resource_id": resource_id, "prices": rules}


@blp.route("/resources/<int:resource_id>/prices", methods=["PUT"])
@blp.arguments(schemas.PriceListInSchema)
@blp.response(200, schemas.PriceListSchema)
def put_prices(data, resource_id):
    """Publish a new price list (the owner lab's admins). Versioned: rules
    whose terms change are closed (``effective_until``) and new ones start,
    now or at ``effective_from``; unchanged rules are kept. Units must fit the
    kind: hour (instrument), sample (testing), core_hour/node_hour/gpu_hour
    (hpc), day/shift/batch (pilot line)."""
    actor = current_actor()
    catalog.set_prices(db.session, actor, resource_id, data["prices"], data.get("effective_from"))
    db.session.expire_all()
    resource = catalog.get_resource(db.session, actor, resource_id)
    return {"resource_id": resource_id, "prices": catalog.open_price_rules(resource)}


# --- blackouts ---------------------------------------------------------------------


@blp.route("/resources/<int:resource_id>/blackouts", methods=["GET"])
@blp.arguments(schemas.BlackoutQuerySchema, location="query")
@blp.response(200, schemas.BlackoutListSchema)
def list_blackouts(args, resource_id):
    """Blackouts overlapping ``from``..``to`` (default: those not over yet)."""
    items = catalog.list_blackouts(
        db.session, current_actor(), resource_id, args.get("start"), args.get("end")
    )
    return {"items": items}


@blp.route("/resources/<int:resource_id>/blackouts", methods=["POST"])
@idempotent
@blp.arguments(schemas.BlackoutInSchema)
@blp.response(201, schemas.BlackoutCreatedSchema)
def add_blackout(data, resource_id):
    """Close a resource for maintenance, calibration, a breakdown or a
    closure (the owner lab's admins). A time without an offset is platform
    local time. The answer lists live bookings inside it, for the lab to
    move or cancel."""
    blackout, overlapping = catalog.add_blackout(db.session, current_actor(), resource_id, data)
    blackout.overlapping_reservations = overlapping
    return blackout


@blp.route("/resources/<int:resource_id>/blackouts/<int:blackout_id>", methods=["DELETE"])
@blp.response(204)
def delete_blackout(resource_id, blackout_id):
    catalog.delete_blackout(db.session, current_actor(), resource_id, blackout_id)


# --- photos ------------------------------------------------------------------------


@blp.route("/resources/<int:resource_id>/photos", methods=["POST"])
@blp.arguments(schemas.PhotoFileSchema, location="files")
@blp.arguments(schemas.PhotoFormSchema, location="form")
@blp.response(201, schemas.PhotoSchema)
def add_photo(files, form, resource_id):
    """Upload a photo (multipart ``file``, optional ``caption``): JPEG, PNG or
    WebP, at most ``PHOTO_MAX_BYTES``; 422 for anything else."""
    content = files["file"].read(current_app.config["PHOTO_MAX_BYTES"] + 1)
    return photos.add_photo(
        db.session,
        current_actor(),
        resource_id,
        content,
        form.get("caption", ""),
        max_bytes=current_app.config["PHOTO_MAX_BYTES"],
    )


@blp.route("/resources/<int:resource_id>/photos/<int:photo_id>", methods=["DELETE"])
@blp.response(204)
def delete_photo(resource_id, photo_id):
    photos.delete_photo(db.session, current_actor(), resource_id, photo_id)


# --- bulk import ---------------------------------------------------------------------


@blp.route("/resources/import", methods=["POST"])
@blp.arguments(schemas.ImportFileSchema, location="files")
@blp.arguments(schemas.ImportFormSchema, location="form")
@blp.response(201, schemas.ImportResultSchema)
def import_resources(files, form):
    """Import a lab's list (multipart ``file``: CSV or XLSX; ``provider_id``
    unless the caller administers one lab; ``dry_run`` to check only). Every
    row is checked first; errors come back by row and column in
    ``details.rows`` (and ``details.fields`` keyed ``"<row>.<column>"``), and
    nothing is imported unless every row is good."""
    upload = files["file"]
    try:
        result = catalog_import.import_resources(
            db.session,
            current_actor(),
            upload.filename or "",
            upload.read(),
            provider_id=form.get("provider_id"),
            dry_run=form["dry_run"],
        )
    except catalog_import.ImportRejected as exc:
        for row in exc.details["rows"]:
            row["messages"] = [gettext(m) for m in row["messages"]]
        raise
    body = {"dry_run": result.dry_run, "created": result.created, "items": result.items}
    return body, 200 if result.dry_run else 201


@blp.route("/resources/import/template.csv", methods=["GET"])
@blp.response(200, content_type="text/csv")
def import_template():
    """The import's columns with one example row (UTF-8 with BOM)."""
    return Response(
        catalog_import.template_csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=resources-template.csv"},
    )


# --- categories ------------------------------------------------------------------------


@blp.route("/categories", methods=["GET"])
@blp.response(200, schemas.CategoryListSchema)
def list_categories():
    """The two-level taxonomy, with names in both languages and search aliases."""
    tree = catalog.category_tree(db.session)
    items = [{**schemas.CategorySchema().dump(top), "children": children} for top, children in tree]
    return {"items": items}


# --- the platform's calendar -----------------------------------------------------------


def _year(year: int) -> int:
    if not 2000 <= year <= 2100:
        raise ValidationFailed({"year": [N_("The date is out of range.")]})
    return year


@blp.route("/calendar/<int:year>", methods=["GET"])
@blp.response(200, schemas.CalendarYearSchema)
def get_calendar_year(year):
    """A year's public holidays and adjusted working days (调休), from the
    holiday library and the platform admin's entries (which win)."""
    year = _year(year)
    return {
        "year": year,
        "library_knows": catalog.library_knows_year(year),
        "days": catalog.calendar_year(db.session, year),
    }


@blp.route("/calendar/<int:year>", methods=["PUT"])
@blp.arguments(schemas.CalendarYearInSchema)
@blp.response(200, schemas.CalendarYearSchema)
def put_calendar_year(data, year):
    """Replace the platform admin's entries of a year (platform admin):
    ``{"days": [{"date", "kind": "holiday"|"workday", "name"}]}``; an
    adjusted working day is a Saturday or Sunday."""
    year = _year(year)
    days = catalog.set_calendar_year(db.session, current_actor(), year, data["days"])
    return {"year": year, "library_knows": catalog.library_knows_year(year), "days": days}
