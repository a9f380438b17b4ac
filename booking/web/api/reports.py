"""API of the reports area (API.md "Reports"): the voucher settlement report
and the open-sharing report, as JSON, CSV (UTF-8 with BOM) or XLSX.

Reports only read. With ``REPORTS_DATABASE_URL`` set (``BOOKING_REPORTS_DATABASE_URL``
in the environment) they read from that database, a read replica; otherwise
from the main one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import Response, current_app
from flask_babel import gettext

from booking.domain import clock
from booking.extensions import db
from booking.schemas import reports as schemas
from booking.services import reports
from booking.web.api.blueprint import Blueprint
from booking.web.auth import current_actor, require_signed_in

blp = Blueprint(
    "reports_api", __name__, description="Reports: voucher settlement, open-sharing assessment"
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOWNLOADS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": XLSX,
}


#: ``layout=nrii`` in JSON: the national platform's layout (``schemas.nrii_json``).
NRII_JSON = {
    "type": "object",
    "required": ["year", "programme", "fields", "items"],
    "properties": {
        "year": {"type": "integer"},
        "programme": {"type": "string"},
        "fields": {"type": "array", "items": {"type": "string"}},
        "items": {"type": "array", "items": {"type": "object"}},
    },
}


def _download_doc(schema_name: str, *alternatives: dict) -> dict:
    """The 200 answer's three representations (JSON by default, CSV, XLSX);
    ``alternatives``: other shapes the JSON takes (with ``layout=nrii``)."""
    json_schema: dict = {"$ref": f"#/components/schemas/{schema_name}"}
    if alternatives:
        json_schema = {"oneOf": [json_schema, *alternatives]}
    return {
        "responses": {
            "200": {
                "content": {
                    "application/json": {"schema": json_schema},
                    "text/csv": {"schema": {"type": "string"}},
                    XLSX: {"schema": {"type": "string", "format": "binary"}},
                }
            }
        }
    }


def reporting_session():
    """The session reports read with: the replica's when one is configured."""
    url = current_app.config.get("REPORTS_DATABASE_URL")
    if not url:
        return db.session, None
    sessions = current_app.extensions.setdefault("report_sessions", reports.ReportSessions())
    session = sessions.session(url)
    return session, session.close


def with_report_session(build: Callable):
    session, close = reporting_session()
    try:
        return build(session)
    finally:
        if close is not None:
            close()


def local_today() -> date:
    return clock.now().astimezone(clock.platform_tz()).date()


def default_year() -> int:
    return local_today().year - 1


def service_url_template() -> str:
    return current_app.config["BASE_URL"].rstrip("/") + "/resources/{id}"


def download(table: schemas.Table, fmt: str, filename: str) -> Response:
    body = schemas.to_csv(table, gettext) if fmt == "csv" else schemas.to_xlsx(table, gettext)
    return Response(
        body,
        mimetype=DOWNLOADS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'},
    )


def open_sharing(session, query: dict):
    return reports.open_sharing_report(
        session,
        current_actor(),
        year=query.get("year") or default_year(),
        provider_id=query.get("provider_id"),
        region=query.get("region"),
        programme=query["programme"],
        service_url=service_url_template(),
    )


def open_sharing_filename(report) -> str:
    scope = report.scope
    where = f"lab{scope.provider_id}" if scope.provider_id else f"region{scope.region or 'all'}"
    return f"open-sharing-{report.year}-{report.programme.code}-{where}"


def settlement(session, query: dict):
    today = local_today()
    return reports.settlement_report(
        session,
        current_actor(),
        period_from=query.get("period_from") or date(today.year, 1, 1),
        period_to=query.get("period_to") or today,
        region=query.get("region"),
        group_by=query["group_by"],
    )


def settlement_filename(report) -> str:
    return (
        f"voucher-settlement-{report.period_from:%Y%m%d}-{report.period_to:%Y%m%d}-"
        f"{report.scope.region or 'all'}-{report.group_by}"
    )


@blp.route("/reports/voucher-settlement", methods=["GET"])
@blp.arguments(schemas.SettlementQuerySchema, location="query", as_kwargs=False)
@blp.response(200, schemas.SettlementReportSchema)
@blp.doc(**_download_doc("SettlementReport"))
def voucher_settlement(query):
    """Voucher settlement of a period and region (bureau): per provider,
    enterprise, service category, issuing region or month, with totals,
    cross-region flows marked both ways, and the reconciliation with the
    ledger. ``format=csv|xlsx`` downloads the table."""
    require_signed_in()
    report = with_report_session(lambda s: settlement(s, query))
    if query["format"] != "json":
        table = schemas.settlement_table(report, gettext)
        return download(table, query["format"], settlement_filename(report))
    return schemas.settlement_json(report, gettext)


@blp.route("/reports/open-sharing", methods=["GET"])
@blp.arguments(schemas.OpenSharingQuerySchema, location="query", as_kwargs=False)
@blp.response(200, schemas.OpenSharingReportSchema)
@blp.doc(**_download_doc("OpenSharingReport", NRII_JSON))
def open_sharing_report(query):
    """Open-sharing assessment of a year for a lab (lab admin, bureau) or a
    region (bureau): per in-scope instrument and the lab's totals.
    ``layout=nrii`` gives the national platform's field layout (JSON:
    ``{"year", "programme", "fields", "items"}``)."""
    require_signed_in()
    report = with_report_session(lambda s: open_sharing(s, query))
    fmt, layout = query["format"], query["layout"]
    if layout == "nrii":
        if fmt == "json":
            return Response(_json_bytes(schemas.nrii_json(report)), mimetype="application/json")
        return download(schemas.nrii_table(report), fmt, "nrii-" + open_sharing_filename(report))
    if fmt != "json":
        table = schemas.open_sharing_table(report, gettext)
        return download(table, fmt, open_sharing_filename(report))
    return report


def _json_bytes(data) -> bytes:
    import json

    return json.dumps(data, ensure_ascii=False, sort_keys=False).encode("utf-8")


@blp.route("/reports/programmes", methods=["GET"])
@blp.response(200, schemas.AssessmentProgrammeSchema(many=True))
def list_programmes():
    """The assessment programmes with the settings in force this year."""
    require_signed_in()
    year = local_today().year
    return [
        reports.programme_for(db.session, code, year)
        for code in reports.programme_codes(db.session)
    ]


@blp.route("/reports/programmes/<string:code>", methods=["PUT"])
@blp.arguments(schemas.AssessmentProgrammeSaveSchema)
@blp.response(200, schemas.AssessmentProgrammeSchema)
def save_programme(data, code):
    """Set a programme's threshold, benchmark hours and reporting limit from
    a date on (platform admin)."""
    return reports.save_programme(db.session, require_signed_in(), {**data, "code": code})
