"""Pages of the reports area: printable report pages with server-drawn
charts (``booking.web.charts``) and CSV/XLSX downloads, for the signed-in
web session. The figures come from the same services as the API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import marshmallow as ma
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from booking import authz
from booking.domain import reports as rules
from booking.domain.errors import ValidationFailed
from booking.extensions import db
from booking.schemas import reports as schemas
from booking.services import reports
from booking.web import charts
from booking.web.api import reports as api
from booking.web.auth import current_actor

bp = Blueprint("reports_pages", __name__)

# (endpoint, label) pairs shown in the main navigation; labels lazy_gettext'd.
NAV: list = [("reports_pages.index", _l("Reports"))]

TOP_INSTRUMENTS = 10
TOP_GROUPS = 12


def _money(value) -> str:
    return f"{Decimal(value or 0):,.2f}"


def _hours(value) -> str:
    return f"{Decimal(value or 0):,.2f}"


def _percent(value) -> str:
    return f"{Decimal(value or 0) * 100:.2f}%"


FORMAT = SimpleNamespace(money=_money, hours=_hours, percent=_percent)


def _signed_in_or_login():
    if not current_actor().authenticated:
        return redirect(url_for("accounts_pages.login", next=request.full_path))
    return None


def _load(schema: ma.Schema) -> dict:
    try:
        return schema.load(request.args.to_dict())
    except ma.ValidationError as exc:
        raise ValidationFailed(
            {k: v if isinstance(v, list) else [str(v)] for k, v in exc.messages.items()}
        ) from None


@bp.get("/reports")
def index():
    """Which reports the caller may pull, with their forms."""
    if (login := _signed_in_or_login()) is not None:
        return login
    actor = current_actor()
    today = api.local_today()
    return render_template(
        "reports/index.html",
        may_settle=authz.can(actor, "report.settlement.pull"),
        may_share=authz.can(actor, "report.open_sharing.pull"),
        programmes=reports.programme_codes(db.session),
        groupings=[(g, gettext(schemas.GROUP_LABELS[g])) for g in rules.GROUPINGS],
        default_year=today.year - 1,
        default_from=date(today.year, 1, 1),
        default_to=today,
    )


# --- open sharing ---------------------------------------------------------------------------


def _open_sharing_charts(report) -> dict:
    effective = gettext("Effective hours")
    external = gettext("External service hours")
    months = [f"{m.month}" for m in report.months]
    by_month = charts.column_chart(
        months,
        [
            (effective, [m.effective_hours for m in report.months]),
            (external, [m.external_hours for m in report.months]),
        ],
        title=gettext("Hours by month, %(year)s", year=report.year),
        unit=" h",
    )
    top = sorted(report.lines, key=lambda li: (-li.effective_hours, li.resource_id))
    top = top[:TOP_INSTRUMENTS]
    by_instrument = charts.bar_chart(
        [li.name_zh for li in top],
        [
            (effective, [li.effective_hours for li in top]),
            (external, [li.external_hours for li in top]),
        ],
        title=gettext("Top instruments by effective and external hours"),
        unit=" h",
    )
    return {"by_month": by_month, "by_instrument": by_instrument}


@bp.get("/reports/open-sharing")
def open_sharing():
    if (login := _signed_in_or_login()) is not None:
        return login
    query = _load(schemas.OpenSharingQuerySchema())
    report = api.with_report_session(lambda s: api.open_sharing(s, query))
    args = {k: v for k, v in request.args.items() if k not in ("format", "layout")}
    args["year"] = report.year
    return render_template(
        "reports/open_sharing.html",
        report=report,
        charts=_open_sharing_charts(report),
        fmt=FORMAT,
        args=args,
        programmes=reports.programme_codes(db.session),
    )


@bp.get("/reports/open-sharing/download")
def open_sharing_download():
    if (login := _signed_in_or_login()) is not None:
        return login
    query = _load(schemas.OpenSharingQuerySchema())
    if query["format"] == "json":
        query["format"] = "csv"
    report = api.with_report_session(lambda s: api.open_sharing(s, query))
    if query["layout"] == "nrii":
        table = schemas.nrii_table(report)
        return api.download(table, query["format"], "nrii-" + api.open_sharing_filename(report))
    table = schemas.open_sharing_table(report, gettext)
    return api.download(table, query["format"], api.open_sharing_filename(report))


# --- settlement -------------------------------------------------------------------------------


def _money_chart(report, title: str):
    lines = sorted(report.lines, key=lambda li: (-li.voucher_share, li.key))[:TOP_GROUPS]
    labels = []
    for line in lines:
        label = schemas.line_label(line, report.group_by, gettext)
        if line.flow != rules.Flow.LOCAL:
            label += " ↔"
        labels.append(label)
    return charts.bar_chart(
        labels,
        [
            (gettext("Voucher share"), [li.voucher_share for li in lines]),
            (gettext("Paid amount"), [li.paid for li in lines]),
        ],
        title=title,
        unit=" ¥",
        label_chars=18,
    )


@bp.get("/reports/voucher-settlement")
def settlement():
    if (login := _signed_in_or_login()) is not None:
        return login
    query = _load(schemas.SettlementQuerySchema())
    titles = {
        "provider": gettext("Voucher money by provider"),
        "category": gettext("Voucher money by service category"),
        "region": gettext("Voucher money by issuing region"),
    }

    def build(session):
        main = api.settlement(session, query)
        by = {main.group_by: main}
        for group_by in titles:
            if group_by not in by:
                by[group_by] = api.settlement(session, {**query, "group_by": group_by})
        return main, by

    report, by = api.with_report_session(build)
    money_charts = [_money_chart(by[g], title) for g, title in titles.items()]
    args = {k: v for k, v in request.args.items() if k != "format"}
    args.update(
        {
            "from": report.period_from.isoformat(),
            "to": report.period_to.isoformat(),
            "group_by": report.group_by,
        }
    )
    return render_template(
        "reports/settlement.html",
        report=report,
        lines=[(line, schemas.line_label(line, report.group_by, gettext)) for line in report.lines],
        flow_labels={k: gettext(v) for k, v in schemas.FLOW_LABELS.items()},
        group_label=gettext(schemas.GROUP_LABELS[report.group_by]),
        groupings=[(g, gettext(schemas.GROUP_LABELS[g])) for g in rules.GROUPINGS],
        reconciliation=schemas.reconciliation_message(report.reconciliation, gettext),
        charts=money_charts,
        fmt=FORMAT,
        args=args,
    )


@bp.get("/reports/voucher-settlement/download")
def settlement_download():
    if (login := _signed_in_or_login()) is not None:
        return login
    query = _load(schemas.SettlementQuerySchema())
    if query["format"] == "json":
        query["format"] = "csv"
    report = api.with_report_session(lambda s: api.settlement(s, query))
    table = schemas.settlement_table(report, gettext)
    return api.download(table, query["format"], api.settlement_filename(report))
