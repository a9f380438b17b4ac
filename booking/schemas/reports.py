"""The reports at the edge: query parameters, the JSON shapes, and the
tabular layouts the CSV and XLSX downloads share (one header row, typed
columns, a totals row).

A table is a list of ``Column`` (key, English header as a message id, kind)
and rows of plain values; ``to_csv`` writes it as UTF-8 with a byte-order mark
(spreadsheet programs in Chinese open it right), ``to_xlsx`` with typed cells
(numbers as numbers, money with the ``0.00`` format, ratios as percentages,
dates as dates), the header frozen and the totals row in bold. The JSON, the
CSV and the XLSX of one report are made from the same report object, so they
agree.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import marshmallow as ma

from booking.domain import reports as rules
from booking.domain.errors import N_
from booking.schemas.common import Money

FORMATS = ("json", "csv", "xlsx")
LAYOUTS = ("standard", "nrii")


# --- query parameters -------------------------------------------------------------------


class RegionField(ma.fields.String):
    """A region code or prefix: 2, 4 or 6 digits (``14``, ``1401``, ``140100``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text.isdigit() or len(text) not in (2, 4, 6):
            raise ma.ValidationError(
                N_("A region is a prefix of a 6-digit division code (e.g. 14 or 1401).")
            )
        return text


class OpenSharingQuerySchema(ma.Schema):
    year = ma.fields.Integer(
        validate=ma.validate.Range(2000, 2100),
        metadata={"description": "The assessment year; default: last year."},
    )
    provider_id = ma.fields.Integer(metadata={"description": "A lab; default: the caller's."})
    region = RegionField(metadata={"description": "A region (bureau); default: the bureau's."})
    programme = ma.fields.String(
        load_default="national",
        validate=ma.validate.Length(1, 20),
        metadata={"description": "national (500,000 CNY) or shanxi (200,000 CNY)"},
    )
    layout = ma.fields.String(
        load_default="standard",
        validate=ma.validate.OneOf(LAYOUTS),
        metadata={"description": "standard, or nrii: the national platform's field layout"},
    )
    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(FORMATS))


class SettlementQuerySchema(ma.Schema):
    period_from = ma.fields.Date(data_key="from", metadata={"description": "default: 1 Jan"})
    period_to = ma.fields.Date(data_key="to", metadata={"description": "inclusive; default: today"})
    region = RegionField(metadata={"description": "default: the bureau's region"})
    group_by = ma.fields.String(
        load_default="provider", validate=ma.validate.OneOf(rules.GROUPINGS)
    )
    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(FORMATS))


class AssessmentProgrammeSaveSchema(ma.Schema):
    name_zh = ma.fields.String(required=True, validate=ma.validate.Length(1, 120))
    name_en = ma.fields.String(required=True, validate=ma.validate.Length(1, 160))
    threshold = Money(required=True)
    quota_hours = ma.fields.Integer(required=True, validate=ma.validate.Range(1, 8784))
    special_quota_hours = ma.fields.Integer(required=True, validate=ma.validate.Range(1, 8784))
    report_within_working_days = ma.fields.Integer(
        load_default=30, validate=ma.validate.Range(1, 365)
    )
    resource_kinds = ma.fields.List(
        ma.fields.String(
            validate=ma.validate.OneOf(("instrument", "testing_service", "hpc", "pilot_line"))
        ),
        load_default=lambda: ["instrument"],
    )
    funding_sources = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(("government", "self", "other"))),
        load_default=lambda: ["government"],
    )
    effective_from = ma.fields.Date(required=True)


# --- JSON -------------------------------------------------------------------------------


class Hours(ma.fields.Float):
    """Hours as a JSON number with two decimals."""


class AssessmentProgrammeSchema(ma.Schema):
    code = ma.fields.String()
    name_zh = ma.fields.String()
    name_en = ma.fields.String()
    threshold = Money()
    quota_hours = Hours()
    special_quota_hours = Hours()
    report_within_working_days = ma.fields.Integer()
    resource_kinds = ma.fields.List(ma.fields.String())
    funding_sources = ma.fields.List(ma.fields.String())
    effective_from = ma.fields.Date()


class OpenSharingInstrumentSchema(ma.Schema):
    resource_id = ma.fields.Integer()
    inner_id = ma.fields.String(allow_none=True)
    name_zh = ma.fields.String()
    name_en = ma.fields.String()
    provider_id = ma.fields.Integer()
    provider_name = ma.fields.String()
    category_code = ma.fields.String(allow_none=True)
    original_value = Money()
    special_purpose = ma.fields.Boolean()
    status = ma.fields.String()
    nrii_status = ma.fields.String()
    share_mode = ma.fields.String()
    accepted_on = ma.fields.Date(allow_none=True)
    nrii_reported_on = ma.fields.Date(allow_none=True)
    reporting_deadline = ma.fields.Date(allow_none=True)
    reporting = ma.fields.String()
    overdue = ma.fields.Boolean()
    quota_hours = Hours()
    effective_hours = Hours()
    external_hours = Hours()
    share_rate = ma.fields.Float()
    utilisation = ma.fields.Float()
    bookings = ma.fields.Integer()
    users = ma.fields.Integer()
    external_users = ma.fields.Integer()
    organizations = ma.fields.Integer()
    external_organizations = ma.fields.Integer()
    service_income = Money(attribute="income")
    external_income = Money()
    trainings = ma.fields.Integer()
    ratings = ma.fields.Integer()
    average_rating = ma.fields.Float(allow_none=True)
    rating_word = ma.fields.String(allow_none=True)
    fee = ma.fields.String()
    service_url = ma.fields.String()


class OpenSharingTotalsSchema(ma.Schema):
    instruments = ma.fields.Integer()
    reported = ma.fields.Integer()
    running = ma.fields.Integer()
    shared = ma.fields.Integer()
    shared_externally = ma.fields.Integer()
    overdue = ma.fields.Integer()
    network_ratio = ma.fields.Float(metadata={"description": "入网比例"})
    running_ratio = ma.fields.Float(metadata={"description": "正常运行比例"})
    shared_ratio = ma.fields.Float(metadata={"description": "参与共享比例"})
    external_ratio = ma.fields.Float(metadata={"description": "外部共享比例"})
    original_value = Money()
    effective_hours = Hours()
    external_hours = Hours()
    share_rate = ma.fields.Float()
    average_effective_hours = Hours()
    quota_hours = Hours()
    utilisation = ma.fields.Float()
    bookings = ma.fields.Integer()
    users = ma.fields.Integer()
    external_users = ma.fields.Integer()
    organizations = ma.fields.Integer()
    external_organizations = ma.fields.Integer()
    service_income = Money(attribute="income")
    external_income = Money()
    trainings = ma.fields.Integer()
    ratings = ma.fields.Integer()
    average_rating = ma.fields.Float(allow_none=True)
    rating_word = ma.fields.String(allow_none=True)


class OpenSharingLabSchema(ma.Schema):
    provider_id = ma.fields.Integer()
    provider_name = ma.fields.String()
    totals = ma.fields.Nested(OpenSharingTotalsSchema)


class OpenSharingMonthSchema(ma.Schema):
    month = ma.fields.Integer()
    effective_hours = Hours()
    external_hours = Hours()


class OpenSharingReportSchema(ma.Schema):
    year = ma.fields.Integer()
    programme = ma.fields.Nested(AssessmentProgrammeSchema)
    provider_id = ma.fields.Integer(attribute="scope.provider_id", allow_none=True)
    provider_name = ma.fields.String(attribute="scope.provider_name", allow_none=True)
    region = ma.fields.String(attribute="scope.region", allow_none=True)
    items = ma.fields.List(ma.fields.Nested(OpenSharingInstrumentSchema), attribute="lines")
    totals = ma.fields.Nested(OpenSharingTotalsSchema)
    labs = ma.fields.List(ma.fields.Nested(OpenSharingLabSchema))
    months = ma.fields.List(ma.fields.Nested(OpenSharingMonthSchema))
    generated_at = ma.fields.AwareDateTime()


class SettlementLineSchema(ma.Schema):
    key = ma.fields.String()
    label = ma.fields.String()
    flow = ma.fields.String()
    cross_region = ma.fields.Boolean()
    region = ma.fields.String(allow_none=True)
    bookings = ma.fields.Integer()
    total_fees = Money()
    voucher_share = Money()
    customer_share = Money()
    held = Money()
    redeemed = Money()
    claimed = Money()
    approved = Money()
    paid = Money()
    expired = Money()


class SettlementReconciliationCheckSchema(ma.Schema):
    name = ma.fields.String()
    report = Money(minimum=None)
    ledger = Money(minimum=None)
    difference = Money(minimum=None)
    ok = ma.fields.Boolean()


class SettlementReconciliationSchema(ma.Schema):
    ok = ma.fields.Boolean()
    message = ma.fields.String()
    checks = ma.fields.List(ma.fields.Nested(SettlementReconciliationCheckSchema))


class SettlementReportSchema(ma.Schema):
    period_from = ma.fields.Date(data_key="from")
    period_to = ma.fields.Date(data_key="to")
    region = ma.fields.String(attribute="scope.region", allow_none=True)
    group_by = ma.fields.String()
    items = ma.fields.List(ma.fields.Nested(SettlementLineSchema))
    totals = ma.fields.Nested(SettlementLineSchema)
    totals_by_flow = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Nested(SettlementLineSchema)
    )
    reconciliation = ma.fields.Nested(SettlementReconciliationSchema)
    generated_at = ma.fields.AwareDateTime()


class NriiExportSchema(ma.Schema):
    year = ma.fields.Integer()
    programme = ma.fields.String()
    fields = ma.fields.List(ma.fields.String())
    items = ma.fields.List(ma.fields.Dict())


# --- labels -----------------------------------------------------------------------------

FLOW_LABELS = {
    "local": N_("Within the region"),
    "outbound": N_("Our vouchers, providers elsewhere"),
    "inbound": N_("Other regions' vouchers, providers here"),
}
CATEGORY_LABELS = {
    "instrument_sharing": N_("Instrument sharing"),
    "testing": N_("Testing"),
    "computing": N_("Computing"),
    "pilot_scale": N_("Pilot scale"),
    "rd_design": N_("R&D design"),
    "tech_consulting": N_("Technical consulting"),
}
UNATTRIBUTED = N_("Expired, not attributable")
GROUP_LABELS = {
    "provider": N_("Provider"),
    "enterprise": N_("Enterprise"),
    "category": N_("Service category"),
    "region": N_("Issuing region"),
    "month": N_("Month"),
}
TOTAL = N_("Total")
RECONCILED = N_("Totals reconcile with the voucher ledger to the fen.")
NOT_RECONCILED = N_(
    "Totals do not reconcile with the voucher ledger: %(name)s differs by %(difference)s "
    "(report %(report)s, ledger %(ledger)s)."
)
CHECK_NAMES = {
    "voucher_share": N_("voucher share on bookings against redeemed in the ledger"),
    "redeemed": N_("redeemed"),
    "held": N_("held"),
    "expired": N_("expired"),
    "total_fees": N_("total fees against voucher plus customer share"),
}


def line_label(line: rules.SettlementLine, group_by: str, translate: Callable[[str], str]) -> str:
    if line.key == "":
        return translate(UNATTRIBUTED)
    if group_by == "category":
        return translate(CATEGORY_LABELS.get(line.key, line.key))
    return line.label


def reconciliation_message(result: rules.ReconciliationResult, translate) -> str:
    if result.ok:
        return translate(RECONCILED)
    parts = []
    for check in result.checks:
        if not check.ok:
            parts.append(
                translate(NOT_RECONCILED)
                % {
                    "name": translate(CHECK_NAMES.get(check.name, check.name)),
                    "difference": f"{check.difference:.2f}",
                    "report": f"{check.report:.2f}",
                    "ledger": f"{check.ledger:.2f}",
                }
            )
    return " ".join(parts)


def settlement_json(report, translate) -> dict:
    """The settlement report as the JSON schema expects it (labels translated)."""

    def line_dict(line: rules.SettlementLine) -> dict:
        data = {name: getattr(line, name) for name in rules.SETTLEMENT_AMOUNTS}
        data.update(
            key=line.key,
            label=line_label(line, report.group_by, translate),
            flow=line.flow.value,
            cross_region=line.flow != rules.Flow.LOCAL,
            region=line.region,
            bookings=line.bookings,
        )
        return data

    totals = line_dict(report.totals)
    totals.update(key="", label=translate(TOTAL))
    by_flow = {}
    for flow, line in report.totals_by_flow.items():
        by_flow[flow] = line_dict(line) | {
            "key": "",
            "label": translate(FLOW_LABELS[flow]),
            "flow": flow,
            "cross_region": flow != "local",
        }
    checks = [
        {
            "name": c.name,
            "report": c.report,
            "ledger": c.ledger,
            "difference": c.difference,
            "ok": c.ok,
        }
        for c in report.reconciliation.checks
    ]
    return {
        "period_from": report.period_from,
        "period_to": report.period_to,
        "scope": report.scope,
        "group_by": report.group_by,
        "items": [line_dict(li) for li in report.lines],
        "totals": totals,
        "totals_by_flow": by_flow,
        "reconciliation": {
            "ok": report.reconciliation.ok,
            "message": reconciliation_message(report.reconciliation, translate),
            "checks": checks,
        },
        "generated_at": report.generated_at,
    }


def nrii_json(report) -> dict:
    """The NRII export: the field names, then one record per instrument in a
    stable order. Nothing in it depends on when it was made."""
    items = []
    for line in report.lines:
        record = rules.nrii_record(line)
        for name in ("worth", "serviceIncome"):
            record[name] = f"{record[name]:.2f}"
        for name in ("effectiveHours", "externalHours"):
            record[name] = float(record[name])
        items.append(record)
    return {
        "year": report.year,
        "programme": report.programme.code,
        "fields": list(rules.NRII_FIELDS),
        "items": items,
    }


# --- tables -----------------------------------------------------------------------------

TEXT, INTEGER, HOURS, MONEY, RATIO, DATE, BOOLEAN, RATING = (
    "text",
    "integer",
    "hours",
    "money",
    "ratio",
    "date",
    "boolean",
    "rating",
)


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # message id, or a fixed field name (NRII) when ``fixed``
    kind: str = TEXT
    width: int = 12
    fixed: bool = False


@dataclass
class Table:
    title: str
    headers: list[str]
    kinds: list[str]
    widths: list[int]
    rows: list[list]
    totals: list | None = None
    footer: list[str] | None = None


OPEN_SHARING_COLUMNS = (
    Column("provider_name", N_("Lab"), TEXT, 24),
    Column("inner_id", N_("Inner number"), TEXT, 14),
    Column("name_zh", N_("Instrument name"), TEXT, 28),
    Column("category_code", N_("Category code"), TEXT, 10),
    Column("original_value", N_("Original value (CNY)"), MONEY, 16),
    Column("special_purpose", N_("Special purpose"), BOOLEAN, 8),
    Column("nrii_status", N_("Running status"), TEXT, 10),
    Column("share_mode", N_("Sharing mode"), TEXT, 10),
    Column("accepted_on", N_("Accepted on"), DATE, 12),
    Column("nrii_reported_on", N_("Reported to NRII on"), DATE, 12),
    Column("reporting_deadline", N_("Reporting deadline"), DATE, 12),
    Column("overdue", N_("Not reported in time"), BOOLEAN, 8),
    Column("quota_hours", N_("Benchmark hours"), HOURS, 10),
    Column("effective_hours", N_("Effective hours"), HOURS, 10),
    Column("external_hours", N_("External service hours"), HOURS, 10),
    Column("share_rate", N_("Share rate"), RATIO, 10),
    Column("utilisation", N_("Hours against benchmark"), RATIO, 10),
    Column("bookings", N_("Number of bookings"), INTEGER, 8),
    Column("users", N_("Users served"), INTEGER, 8),
    Column("external_users", N_("External users"), INTEGER, 8),
    Column("organizations", N_("Organisations served"), INTEGER, 8),
    Column("external_organizations", N_("External organisations"), INTEGER, 8),
    Column("income", N_("Service income (CNY)"), MONEY, 14),
    Column("external_income", N_("External service income (CNY)"), MONEY, 14),
    Column("trainings", N_("Trainings"), INTEGER, 8),
    Column("ratings", N_("Ratings"), INTEGER, 8),
    Column("average_rating", N_("Average rating"), RATING, 8),
    Column("rating_word", N_("Satisfaction"), TEXT, 10),
)

NRII_KINDS = {
    "worth": MONEY,
    "effectiveHours": HOURS,
    "externalHours": HOURS,
    "serviceIncome": MONEY,
    "serviceUsers": INTEGER,
    "serviceUnits": INTEGER,
    "trainings": INTEGER,
}

SETTLEMENT_COLUMNS = (
    Column("flow", N_("Flow"), TEXT, 22),
    Column("bookings", N_("Number of bookings"), INTEGER, 8),
    Column("total_fees", N_("Total fees"), MONEY, 14),
    Column("voucher_share", N_("Voucher share"), MONEY, 14),
    Column("customer_share", N_("Customer share"), MONEY, 14),
    Column("held", N_("Held amount"), MONEY, 14),
    Column("redeemed", N_("Redeemed amount"), MONEY, 14),
    Column("claimed", N_("Claimed amount"), MONEY, 14),
    Column("approved", N_("Approved amount"), MONEY, 14),
    Column("paid", N_("Paid amount"), MONEY, 14),
    Column("expired", N_("Expired amount"), MONEY, 14),
)


def _value(obj, key):
    value = getattr(obj, key)
    return getattr(value, "value", value)


def open_sharing_table(report, translate: Callable[[str], str]) -> Table:
    cols = OPEN_SHARING_COLUMNS
    rows = [[_value(line, c.key) for c in cols] for line in report.lines]
    t = report.totals
    totals_values = {
        "provider_name": translate(TOTAL),
        "original_value": t.original_value,
        "quota_hours": t.quota_hours,
        "effective_hours": t.effective_hours,
        "external_hours": t.external_hours,
        "share_rate": t.share_rate,
        "utilisation": t.utilisation,
        "bookings": t.bookings,
        "users": t.users,
        "external_users": t.external_users,
        "organizations": t.organizations,
        "external_organizations": t.external_organizations,
        "income": t.income,
        "external_income": t.external_income,
        "trainings": t.trainings,
        "ratings": t.ratings,
        "average_rating": t.average_rating,
        "rating_word": t.rating_word,
        "overdue": None,
    }
    totals = [totals_values.get(c.key) for c in cols]
    footer = [
        translate(N_("Share of instruments on the national network")) + f": {t.network_ratio:.2%}",
        translate(N_("Share running normally")) + f": {t.running_ratio:.2%}",
        translate(N_("Share taking part in sharing")) + f": {t.shared_ratio:.2%}",
        translate(N_("Share shared externally")) + f": {t.external_ratio:.2%}",
    ]
    return Table(
        title=f"{report.year}",
        headers=[translate(c.label) for c in cols],
        kinds=[c.kind for c in cols],
        widths=[c.width for c in cols],
        rows=rows,
        totals=totals,
        footer=footer,
    )


def nrii_table(report) -> Table:
    """The NRII layout: field names as headers, no totals (the national
    platform's import takes records only)."""
    rows = []
    for line in report.lines:
        record = rules.nrii_record(line)
        rows.append([record[name] for name in rules.NRII_FIELDS])
    return Table(
        title=f"NRII {report.year}",
        headers=list(rules.NRII_FIELDS),
        kinds=[NRII_KINDS.get(name, TEXT) for name in rules.NRII_FIELDS],
        widths=[14] * len(rules.NRII_FIELDS),
        rows=rows,
    )


def settlement_table(report, translate: Callable[[str], str]) -> Table:
    group = Column("label", GROUP_LABELS[report.group_by], TEXT, 28)
    cols = (group, *SETTLEMENT_COLUMNS)

    def row(line: rules.SettlementLine, label: str, flow_text: str) -> list:
        values = {"label": label, "flow": flow_text, "bookings": line.bookings}
        values.update({name: getattr(line, name) for name in rules.SETTLEMENT_AMOUNTS})
        return [values[c.key] for c in cols]

    rows = [
        row(li, line_label(li, report.group_by, translate), translate(FLOW_LABELS[li.flow]))
        for li in report.lines
    ]
    return Table(
        title=f"{report.period_from:%Y%m%d}-{report.period_to:%Y%m%d}",
        headers=[translate(c.label) for c in cols],
        kinds=[c.kind for c in cols],
        widths=[c.width for c in cols],
        rows=rows,
        totals=row(report.totals, translate(TOTAL), ""),
        footer=[reconciliation_message(report.reconciliation, translate)],
    )


def _csv_cell(value, kind: str, translate) -> str:
    if value is None:
        return ""
    if kind == BOOLEAN:
        return translate(N_("Yes")) if value else translate(N_("No"))
    if kind in (MONEY, HOURS):
        return f"{Decimal(value):.2f}"
    if kind == RATIO:
        return f"{Decimal(value):.4f}"
    if kind == RATING:
        return f"{Decimal(value):.2f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def to_csv(table: Table, translate: Callable[[str], str] = lambda s: s) -> bytes:
    """UTF-8 with a byte-order mark; one header row, the rows, the totals
    row, then the footer lines (one cell each)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.headers)
    for row in _with_totals(table):
        writer.writerow([_csv_cell(v, k, translate) for v, k in zip(row, table.kinds, strict=True)])
    for line in table.footer or []:
        writer.writerow([line])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _with_totals(table: Table) -> Iterable[list]:
    yield from table.rows
    if table.totals is not None:
        yield table.totals


XLSX_FORMATS = {
    MONEY: "#,##0.00",
    HOURS: "0.00",
    RATIO: "0.00%",
    DATE: "yyyy-mm-dd",
    RATING: "0.00",
    INTEGER: "0",
}
#: Workbook timestamp: fixed, so the same report makes the same bytes.
XLSX_CREATED = datetime(2000, 1, 1)


def to_xlsx(table: Table, translate: Callable[[str], str] = lambda s: s) -> bytes:
    """An XLSX workbook of one sheet (XlsxWriter, several times faster than
    openpyxl without lxml): a bold header row, frozen; typed cells; the
    totals row in bold; the footer lines below."""
    import xlsxwriter

    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"in_memory": True})
    workbook.set_properties({"created": XLSX_CREATED})
    sheet = workbook.add_worksheet(_sheet_name(table.title))
    header = workbook.add_format(
        {"bold": True, "bg_color": "#EEEEEE", "text_wrap": True, "valign": "top"}
    )
    plain = {kind: workbook.add_format({"num_format": fmt}) for kind, fmt in XLSX_FORMATS.items()}
    bold = {
        kind: workbook.add_format({"num_format": fmt, "bold": True})
        for kind, fmt in XLSX_FORMATS.items()
    }
    bold_text = workbook.add_format({"bold": True})
    for index, width in enumerate(table.widths):
        sheet.set_column(index, index, width)
    sheet.freeze_panes(1, 0)
    for col, text in enumerate(table.headers):
        sheet.write_string(0, col, text, header)
    yes, no = translate(N_("Yes")), translate(N_("No"))
    row_index = 1
    plan = _xlsx_plan(sheet, table.kinds, plain, None, yes, no)
    for row in table.rows:
        for write, value in zip(plan, row, strict=True):
            if value is not None:
                write(row_index, value)
        row_index += 1
    if table.totals is not None:
        totals_plan = _xlsx_plan(sheet, table.kinds, bold, bold_text, yes, no)
        for write, value in zip(totals_plan, table.totals, strict=True):
            if value is not None:
                write(row_index, value)
        row_index += 1
    for line in table.footer or []:
        sheet.write_string(row_index, 0, line)
        row_index += 1
    workbook.close()
    return out.getvalue()


def _sheet_name(title: str) -> str:
    cleaned = "".join("_" if c in "[]:*?/\\" else c for c in title)[:31]
    return cleaned or "report"


def _xlsx_plan(sheet, kinds, formats, text_format, yes, no) -> list:
    """Per column, how a cell of its kind is written (chosen once per table,
    not per cell: 20,000 rows of 12 columns)."""

    def writer(c: int, kind: str):
        if kind == BOOLEAN:
            return lambda r, value: sheet.write_string(r, c, yes if value else no, text_format)
        if kind == DATE:
            return lambda r, value: sheet.write_datetime(r, c, value, formats[DATE])
        if kind in formats:
            number_format = formats[kind]
            return lambda r, value: sheet.write_number(r, c, float(value), number_format)
        return lambda r, value: sheet.write_string(r, c, str(value), text_format)

    return [writer(c, kind) for c, kind in enumerate(kinds)]
