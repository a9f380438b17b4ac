"""Bulk import of a lab's instrument list (仪器设备清单) from CSV or XLSX.

One row is one resource; the first row names the columns (English names or
the Chinese labels below, in any order). Every row is checked first — the
types, then every rule the API and the forms apply — and the errors come
back by row (as the spreadsheet numbers them: the header is row 1) and
column. Nothing is imported unless every row is good.

Opening hours are written compactly: ``1-5 08:30-12:00,14:00-17:30; 6
09:00-12:00`` (ISO weekdays, Monday is 1); empty means around the clock.
Prices: one column per customer class (``price_internal``, ...) in the unit
of ``price_unit``, sharing the set-up fee, minimum quantity and rounding.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import marshmallow as ma
from sqlalchemy import select
from sqlalchemy.orm import Session

from booking.authz import Actor
from booking.domain import catalog as rules
from booking.domain.errors import N_, ValidationFailed
from booking.models.catalog import Resource
from booking.schemas.catalog import ResourceInSchema
from booking.services import audit
from booking.services.catalog import (
    check_new_resource,
    provider_for_new_resource,
    write_new_resource,
)

MAX_ROWS = 5000

#: (column, Chinese label, required)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("kind", "类型", True),
    ("name_zh", "中文名称", True),
    ("name_en", "英文名称", False),
    ("category", "分类代码", True),
    ("manufacturer", "生产厂商", False),
    ("model", "型号", False),
    ("inner_id", "资产编号", False),
    ("location", "存放地点", False),
    ("region", "地区代码", False),
    ("original_value", "原值", False),
    ("funding_source", "经费来源", False),
    ("accepted_on", "验收日期", False),
    ("country", "产地国别", False),
    ("capacity", "容量", False),
    ("capacity_unit", "容量单位", False),
    ("turnaround_days", "检测周期天数", False),
    ("service_category", "服务类别", False),
    ("voucher_eligible", "可用创新券", False),
    ("description_zh", "中文介绍", False),
    ("description_en", "英文介绍", False),
    ("granularity_minutes", "预约粒度分钟", False),
    ("min_minutes", "最短分钟", False),
    ("max_minutes", "最长分钟", False),
    ("lead_minutes", "提前预约分钟", False),
    ("horizon_days", "可预约天数", False),
    ("buffer_before_minutes", "前缓冲分钟", False),
    ("buffer_after_minutes", "后缓冲分钟", False),
    ("requires_approval", "需要审批", False),
    ("requires_training", "需要培训", False),
    ("closed_on_holidays", "节假日关闭", False),
    ("opening_hours", "开放时间", False),
    ("price_unit", "计价单位", False),
    ("price_internal", "校内价", False),
    ("price_academic", "高校院所价", False),
    ("price_enterprise", "企业价", False),
    ("setup_fee", "开机费", False),
    ("min_quantity", "最低计费量", False),
    ("rounding_minutes", "计费取整分钟", False),
)
COLUMN_NAMES = [c[0] for c in COLUMNS]
_BY_HEADER = {name: name for name, _, _ in COLUMNS} | {label: name for name, label, _ in COLUMNS}
RULE_COLUMNS = (
    "granularity_minutes",
    "min_minutes",
    "max_minutes",
    "lead_minutes",
    "horizon_days",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "requires_approval",
    "requires_training",
)
PRICE_COLUMNS = {
    "internal": "price_internal",
    "academic": "price_academic",
    "enterprise": "price_enterprise",
}
PRICE_TERM_COLUMNS = ("setup_fee", "min_quantity", "rounding_minutes")
KIND_WORDS = {
    "仪器": "instrument",
    "仪器设备": "instrument",
    "检测": "testing_service",
    "检测服务": "testing_service",
    "超算": "hpc",
    "算力": "hpc",
    "中试": "pilot_line",
    "中试线": "pilot_line",
}


@dataclass
class RowProblem:
    row: int
    column: str
    messages: list[str]


class ImportRejected(ValidationFailed):
    """Rows at fault, by row and column; nothing was imported.
    ``details.fields`` is keyed ``"<row>.<column>"``; ``details.rows`` lists
    ``{"row", "column", "messages"}``."""

    code = "import_rejected"
    default_message = N_("Some rows are not valid: nothing was imported.")

    def __init__(self, problems: list[RowProblem]) -> None:
        fields: dict[str, list[str]] = {}
        for p in problems:
            fields.setdefault(f"{p.row}.{p.column}", []).extend(p.messages)
        super().__init__(fields)
        self.details["rows"] = [
            {"row": p.row, "column": p.column, "messages": list(p.messages)} for p in problems
        ]


@dataclass
class ImportResult:
    dry_run: bool
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def created(self) -> int:
        return 0 if self.dry_run else len(self.items)


# --- reading the file ---------------------------------------------------------


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _decode(content: bytes) -> str:
    # Spreadsheet programs in Chinese save CSV as GB18030 unless told otherwise.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportRejected([RowProblem(1, "file", [N_("The file is neither UTF-8 nor GB18030.")])])


def read_rows(filename: str, content: bytes) -> list[list[str]]:
    """The table's rows as text cells (the header included)."""
    is_xlsx = content[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx")
    if is_xlsx:
        return list(_xlsx_rows(content))
    text = _decode(content)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), dialect)]


def _xlsx_rows(content: bytes) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:
        raise ImportRejected(
            [RowProblem(1, "file", [N_("The file is not a readable XLSX workbook.")])]
        ) from None
    try:
        sheet = book.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield [_cell_text(v) for v in row]
    finally:
        book.close()


# --- from a row to the service's input -----------------------------------------


def _header(cells: list[str]) -> tuple[list[str | None], list[RowProblem]]:
    problems = []
    names: list[str | None] = []
    for cell in cells:
        key = cell.strip().lower() if cell.strip().isascii() else cell.strip()
        name = _BY_HEADER.get(key)
        if cell.strip() and name is None:
            problems.append(RowProblem(1, cell.strip(), [N_("Unknown column.")]))
        if name is not None and name in names:
            problems.append(RowProblem(1, name, [N_("This column appears twice.")]))
        names.append(name)
    for name, _, required in COLUMNS:
        if required and name not in names:
            problems.append(RowProblem(1, name, [N_("This column is missing.")]))
    return names, problems


def row_payload(values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str], list[RowProblem]]:
    """One row as the JSON the API takes, a map from the payload's field
    paths back to the row's columns, and the problems found on the way."""
    problems: list[RowProblem] = []
    payload: dict[str, Any] = {}
    where: dict[str, str] = {}
    for name, value in values.items():
        if value == "" or name in RULE_COLUMNS or name in PRICE_COLUMNS.values():
            continue
        if name in PRICE_TERM_COLUMNS or name in ("price_unit", "opening_hours"):
            continue
        payload[name] = value
        where[name] = name
    if payload.get("kind") in KIND_WORDS:
        payload["kind"] = KIND_WORDS[payload["kind"]]
    row_rules = {name: values[name] for name in RULE_COLUMNS if values.get(name)}
    if row_rules:
        payload["rules"] = row_rules
        where.update({f"rules.{name}": name for name in row_rules})
    hours = values.get("opening_hours", "")
    try:
        payload["opening_hours"] = rules.parse_week_hours(hours)
        for index in range(len(payload["opening_hours"])):
            where[f"opening_hours.{index}"] = "opening_hours"
    except ValueError as exc:
        problems.append(RowProblem(0, "opening_hours", [str(exc)]))
    prices = []
    unit = values.get("price_unit", "")
    for customer_class, column in PRICE_COLUMNS.items():
        if not values.get(column):
            continue
        index = len(prices)
        price: dict[str, Any] = {
            "customer_class": customer_class,
            "unit": unit,
            "unit_price": values[column],
        }
        where[f"prices.{index}.unit_price"] = column
        where[f"prices.{index}.unit"] = "price_unit"
        where[f"prices.{index}.customer_class"] = column
        for term in PRICE_TERM_COLUMNS:
            if values.get(term):
                price[term] = values[term]
                where[f"prices.{index}.{term}"] = term
        prices.append(price)
    if prices:
        if not unit:
            problems.append(RowProblem(0, "price_unit", [N_("Give the unit of the prices.")]))
        payload["prices"] = prices
    return payload, where, problems


def _flatten_errors(messages: Any, prefix: str = "") -> Iterator[tuple[str, list[str]]]:
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from _flatten_errors(value, f"{prefix}{key}.")
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        yield prefix.rstrip("."), list(messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            yield from _flatten_errors(value, f"{prefix}{index}.")


def _column_of(path: str, where: dict[str, str]) -> str:
    """The row's column a field path (``rules.min_minutes``,
    ``prices.1.unit_price``, ``opening_hours.3.close``) came from."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        found = where.get(".".join(parts[:cut]))
        if found:
            return found
    if parts[0] in ("rules", "prices") and len(parts) > 1:
        return parts[-1]
    return parts[0]


def _merge(problems: list[RowProblem]) -> list[RowProblem]:
    merged: dict[tuple[int, str], RowProblem] = {}
    for p in problems:
        key = (p.row, p.column)
        if key in merged:
            merged[key].messages.extend(m for m in p.messages if m not in merged[key].messages)
        else:
            merged[key] = RowProblem(p.row, p.column, list(p.messages))
    return list(merged.values())


# --- the use case --------------------------------------------------------------


def import_resources(
    session: Session,
    actor: Actor,
    filename: str,
    content: bytes,
    *,
    provider_id: int | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Check every row, then (unless ``dry_run``) create every resource; one
    bad row and nothing is created (``ImportRejected``, 422)."""
    provider = provider_for_new_resource(session, actor, provider_id)
    table = list(read_rows(filename, content))
    if not table or not any(table[0]):
        raise ImportRejected([RowProblem(1, "file", [N_("The file has no header row.")])])
    names, problems = _header(table[0])
    if problems:
        raise ImportRejected(_merge(problems))
    body = [(number, cells) for number, cells in enumerate(table[1:], start=2) if any(cells)]
    if not body:
        raise ImportRejected([RowProblem(2, "file", [N_("The file has no rows to import.")])])
    if len(body) > MAX_ROWS:
        raise ImportRejected([RowProblem(1, "file", [N_("At most 5000 rows at a time.")])])

    existing_ids = set(
        session.scalars(
            select(Resource.inner_id).where(
                Resource.provider_id == provider.id, Resource.inner_id.is_not(None)
            )
        )
    )
    seen_ids: dict[str, int] = {}
    schema = ResourceInSchema()
    checked = []
    for number, cells in body:
        values = {
            name: (cells[i] if i < len(cells) else "")
            for i, name in enumerate(names)
            if name is not None
        }
        payload, where, row_problems = row_payload(values)
        for p in row_problems:
            p.row = number
        problems.extend(row_problems)
        inner_id = values.get("inner_id")
        if inner_id:
            if inner_id in existing_ids:
                problems.append(
                    RowProblem(number, "inner_id", [N_("The lab has a resource with this number.")])
                )
            elif inner_id in seen_ids:
                problems.append(
                    RowProblem(number, "inner_id", [N_("This number appears in another row.")])
                )
            seen_ids[inner_id] = number
        if row_problems:
            continue
        reported: set[str] = set()
        try:
            data = schema.load(payload)
        except ma.ValidationError as exc:
            for path, messages in _flatten_errors(exc.messages):
                column = _column_of(path, where)
                reported.add(column)
                problems.append(RowProblem(number, column, messages))
            # Check the rest of the row too, so one pass reports every cell.
            rest = {k: v for k, v in payload.items() if k not in exc.messages}
            try:
                data = schema.load(rest, partial=True)
            except ma.ValidationError:
                continue
        try:
            new = check_new_resource(session, provider, data)
        except ValidationFailed as exc:
            for path, messages in exc.fields.items():
                column = _column_of(path, where)
                if column not in reported:
                    problems.append(RowProblem(number, column, messages))
            continue
        if not reported:
            checked.append((number, new))
    if problems:
        raise ImportRejected(_merge(problems))

    result = ImportResult(dry_run=dry_run)
    for number, new in checked:
        resource = None if dry_run else write_new_resource(session, actor, new)
        result.items.append(
            {
                "row": number,
                "id": resource.id if resource else None,
                "name_zh": new.data.get("name_zh"),
            }
        )
    if not dry_run:
        audit.record(
            session,
            actor,
            "resource.import",
            ("organizations", provider.id),
            after={"file": filename, "rows": len(checked), "ids": [i["id"] for i in result.items]},
        )
    return result


def template_csv() -> str:
    """A header row and one example row, for labs to fill in."""
    example = {
        "kind": "instrument",
        "name_zh": "场发射扫描电子显微镜",
        "name_en": "Field-emission scanning electron microscope",
        "category": "0101",
        "manufacturer": "ZEISS",
        "model": "Sigma 300",
        "inner_id": "2019-0001",
        "location": "理科楼B区105室",
        "original_value": "2680000.00",
        "funding_source": "government",
        "accepted_on": "2019-06-18",
        "granularity_minutes": "30",
        "min_minutes": "60",
        "max_minutes": "480",
        "requires_approval": "是",
        "requires_training": "是",
        "opening_hours": "1-5 08:30-12:00,14:00-17:30",
        "price_unit": "hour",
        "price_internal": "200.00",
        "price_academic": "300.00",
        "price_enterprise": "500.00",
        "rounding_minutes": "30",
    }
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMN_NAMES)
    writer.writerow([example.get(name, "") for name in COLUMN_NAMES])
    return "\ufeff" + out.getvalue()
