"""Settings, one class per environment.

``BOOKING_ENV`` picks the class (``development``, ``testing`` or ``production``;
production when unset, so a forgotten variable never runs a server with
development secrets). Every setting can then be overridden from the
environment: the variables of API.md (``DATABASE_URL``, ``SECRET_KEY``,
``TIMEZONE``, ``BASE_URL``, ``SMTP_URL``) by name, anything else as
``BOOKING_<NAME>``. Secrets come only from the environment, never from here.
"""

from __future__ import annotations

import os


class Base:
    SECRET_KEY: str | None = None
    DATABASE_URL: str | None = None  # unset: a SQLite file in the instance folder
    TIMEZONE = "Asia/Shanghai"
    BASE_URL = "http://127.0.0.1:5000"
    SMTP_URL: str | None = None
    MAIL_FROM = "noreply@jcg-booking.local"

    BABEL_DEFAULT_LOCALE = "zh_CN"
    LANGUAGES = ("zh_CN", "en")

    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    SQLITE_BUSY_TIMEOUT_MS = 30_000

    API_TOKEN_DAYS = 90
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None

    # Sign-in throttling: after LOGIN_SLOW_AFTER failures within the window the
    # answer is delayed; after LOGIN_LOCK_AFTER the account (or address) is
    # locked for LOGIN_LOCK_MINUTES.
    LOGIN_WINDOW_MINUTES = 15
    LOGIN_SLOW_AFTER = 3
    LOGIN_LOCK_AFTER = 8
    LOGIN_LOCK_MINUTES = 15
    LOGIN_SLOW_SECONDS = 1.0

    # Rate limits per client address (Flask-Limiter); the sign-in lockout in
    # the database is the authoritative guard, these keep floods cheap.
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    SIGN_IN_RATE_LIMIT = "30 per minute"
    TOKEN_RATE_LIMIT = "30 per minute"
    FEED_RATE_LIMIT = "120 per minute"

    MAX_CONTENT_LENGTH = 16 * 1024 * 1024
    PHOTO_MAX_BYTES = 5 * 1024 * 1024

    IDEMPOTENCY_HOURS = 24

    # Calendar feeds: bookings from FEED_DAYS_BACK days ago to FEED_DAYS_AHEAD
    # ahead; ended ones (cancelled, rejected, ...) stay FEED_ENDED_KEEP_DAYS.
    FEED_DAYS_BACK = 90
    FEED_DAYS_AHEAD = 365
    FEED_ENDED_KEEP_DAYS = 30
    FEED_REFRESH_MINUTES = 15


class Development(Base):
    SECRET_KEY = "development-only-secret-key-not-for-production"
    DEBUG = True


class Testing(Base):
    TESTING = True
    RATELIMIT_ENABLED = False  # tests of the limits switch it on for their own app
    SECRET_KEY = "testing-secret-key"
    WTF_CSRF_ENABLED = True
    LOGIN_SLOW_SECONDS = 0.0
    BASE_URL = "http://testserver"


class Production(Base):
    SESSION_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"


ENVIRONMENTS = {"development": Development, "testing": Testing, "production": Production}

# Settings API.md names without a prefix.
PLAIN_VARIABLES = ("DATABASE_URL", "SECRET_KEY", "TIMEZONE", "BASE_URL", "SMTP_URL")


def settings_for(name: str | None = None) -> type[Base]:
    name = (name or os.environ.get("BOOKING_ENV") or "production").lower()
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        raise RuntimeError(
            f"BOOKING_ENV={name!r} is not one of {', '.join(ENVIRONMENTS)}"
        ) from None


def environment_overrides(environ: os._Environ | dict | None = None) -> dict:
    environ = os.environ if environ is None else environ
    found = {name: environ[name] for name in PLAIN_VARIABLES if environ.get(name)}
    return found
