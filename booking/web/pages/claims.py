"""Pages of the claims area."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("claims_pages", __name__)

# (endpoint, label) pairs shown in the main navigation; labels lazy_gettext'd.
NAV: list = []
