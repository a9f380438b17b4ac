"""Security headers on every answer.

The Content-Security-Policy allows nothing inline: no inline scripts, no
``style=""`` attributes, no ``on*=`` handlers. Pages load their scripts and
styles from /static; data for scripts travels in ``data-*`` attributes or
``<script type="application/json">`` blocks (which are not executed).
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.routing import IntegerConverter

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if request.path.startswith("/api/") and "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    return response


class BoundedIntegerConverter(IntegerConverter):
    """``<int:...>`` in URLs, at most the largest BIGINT: a longer number is
    no id of ours, so the URL matches nothing (404) instead of reaching the
    database, which cannot even compare it (SQLite raises OverflowError)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def register_security(app: Flask) -> None:
    # Before any blueprint: rules take their converters when they are added.
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.after_request(add_security_headers)
