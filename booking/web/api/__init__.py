"""The /api/v1 blueprints, one per area, registered on the flask-smorest Api."""

from __future__ import annotations

from flask import Flask

from booking.extensions import api, csrf

PREFIX = "/api/v1"


def register_api(app: Flask) -> None:
    from booking.web.api import (
        accounts,
        approvals,
        catalog,
        claims,
        feeds,
        notifications,
        reports,
        reservations,
        training,
        vouchers,
    )

    for module in (
        accounts,
        catalog,
        reservations,
        vouchers,
        claims,
        feeds,
        notifications,
        reports,
        approvals,
        training,
    ):
        if module.blp.deferred_functions:  # a blueprint without routes is not registered
            api.register_blueprint(module.blp, url_prefix=PREFIX)
            csrf.exempt(module.blp)
