"""Innovation vouchers as their holders and bureaus see them: ``/vouchers``
(each with its balance, what is held for approved bookings, what is
available) and ``/vouchers/<id>`` (the terms, the open holds, the
append-only ledger; the address of the expiry warning mail). Figures come
from the voucher service's ledger sums."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from booking.extensions import db
from booking.models.vouchers import VoucherStatus
from booking.services import dashboards, vouchers
from booking.web.auth import current_actor
from booking.web.pages import shared

bp = Blueprint("balances_pages", __name__)


def _holds_vouchers(actor) -> bool:
    return bool(actor.customer_orgs())


def _issues_vouchers(actor) -> bool:
    return bool(actor.bureau_ids())


NAV: list = [
    ("balances_pages.index", _l("My vouchers"), _holds_vouchers),
    (
        "balances_pages.index",
        _l("Vouchers"),
        lambda a: _issues_vouchers(a) and not _holds_vouchers(a),
    ),
]

PER_PAGE = 30
LEDGER_PER_PAGE = 50


@bp.get("/vouchers")
@login_required
def index():
    actor = current_actor()
    status = request.args.get("status") or None
    if status not in {s.value for s in VoucherStatus}:
        status = None
    page = shared.page_number()
    items, total = vouchers.list_vouchers(
        db.session, actor, status=status, page=page, per_page=PER_PAGE
    )
    vouchers.with_totals(db.session, items)
    return render_template(
        "balances/index.html",
        items=items,
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        status=status,
        holder=_holds_vouchers(actor),
        bureau=_issues_vouchers(actor),
    )


@bp.get("/vouchers/<int:voucher_id>")
@login_required
def detail(voucher_id: int):
    actor = current_actor()
    voucher = vouchers.get_voucher(db.session, actor, voucher_id)
    vouchers.with_totals(db.session, [voucher])
    page = shared.page_number()
    entries, total = vouchers.ledger_of(db.session, actor, voucher_id, page, LEDGER_PER_PAGE)
    return render_template(
        "balances/detail.html",
        v=voucher,
        holds=dashboards.voucher_holds(db.session, voucher),
        entries=entries,
        total=total,
        page=page,
        pages=max(1, -(-total // LEDGER_PER_PAGE)),
    )
