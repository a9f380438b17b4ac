"""HTML pages, one blueprint per area. Each module may list ``NAV`` entries
(endpoint, lazy label) for the main navigation."""

from __future__ import annotations

from flask import Flask

from booking.web.pages import (
    accounts,
    approvals,
    balances,
    bookings,
    bureau,
    catalog,
    claims,
    feeds,
    home,
    lab,
    notifications,
    password_reset,
    platform_admin,
    redemption,
    reports,
    reservations,
    training,
    vouchers,
    waitlist,
)

MODULES = (
    home,
    accounts,
    password_reset,
    catalog,
    bookings,
    waitlist,
    balances,
    lab,
    reservations,
    approvals,
    training,
    vouchers,
    claims,
    feeds,
    notifications,
    reports,
    redemption,
    bureau,
    platform_admin,
)


def register_pages(app: Flask) -> None:
    for module in MODULES:
        app.register_blueprint(module.bp)


def nav_links() -> list:
    return [entry for module in MODULES for entry in getattr(module, "NAV", [])]
