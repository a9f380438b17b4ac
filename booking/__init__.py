"""The shared-equipment and pilot-base booking platform (晋创谷开放共享服务平台).

``create_app`` reads like a table of contents: settings, extensions,
blueprints, error handlers, commands.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, request, session
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from config import environment_overrides, settings_for

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder="static",
    )
    load_settings(app, test_config)
    configure_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_template_context(app)
    return app


def load_settings(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    env_name = (test_config or {}).get("ENV_NAME")
    app.config.from_object(settings_for(env_name))
    app.config.from_prefixed_env("BOOKING")
    app.config.update(environment_overrides())
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError(
            "SECRET_KEY is not set. Production refuses to start without it: "
            "export SECRET_KEY to a long random value (python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'), or set BOOKING_ENV=development."
        )
    from booking.database import default_sqlite_url, engine_options, normalise_url

    url = app.config.get("DATABASE_URL") or default_sqlite_url(app.instance_path)
    url = normalise_url(url)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **engine_options(url, app.config["SQLITE_BUSY_TIMEOUT_MS"]),
        **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
    }
    if app.config.get("TRUSTED_PROXIES"):
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=int(app.config["TRUSTED_PROXIES"]), x_proto=1, x_host=1
        )
    from booking import process_settings
    from booking.domain.clock import set_platform_tz
    from booking.services.mailer import check_smtp_url

    process_settings.keep(app, lambda: set_platform_tz(app.config["TIMEZONE"]))

    check_smtp_url(app.config.get("SMTP_URL"))
    app.config.update(
        API_TITLE="Jinchuanggu booking platform API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
    )


def configure_logging(app: Flask) -> None:
    if not app.debug and not app.testing:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


def register_extensions(app: Flask) -> None:
    from booking.database import configure_postgresql, configure_sqlite
    from booking.extensions import api, babel, csrf, db, limiter, login_manager, migrate
    from booking.i18n import compile_translations

    db.init_app(app)
    with app.app_context():
        configure_sqlite(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])
        configure_postgresql(db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = compile_translations(
        str(Path(app.instance_path) / "translations")
    )
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    api.init_app(app)


def select_locale() -> str:
    from booking.i18n import normalise_locale

    if not request:
        return "zh_CN"
    if not request.path.startswith("/api/"):
        if session.get("locale"):
            return normalise_locale(session["locale"])
        if current_user and current_user.is_authenticated:
            return normalise_locale(current_user.locale)
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
    return normalise_locale(best)


def select_timezone() -> str:
    from flask import current_app

    return current_app.config["TIMEZONE"]


def register_blueprints(app: Flask) -> None:
    from booking.web.api import register_api
    from booking.web.auth import register_auth
    from booking.web.pages import register_pages
    from booking.web.security import register_security
    from booking.web.transactions import register_unit_of_work

    register_security(app)
    register_auth(app)
    register_api(app)
    register_pages(app)
    register_unit_of_work(app)


def register_errorhandlers(app: Flask) -> None:
    from booking.web.errors import register_errorhandlers as register

    register(app)


def register_commands(app: Flask) -> None:
    from booking.cli import register_cli

    register_cli(app)


def register_template_context(app: Flask) -> None:
    from flask_babel import get_locale

    @app.context_processor
    def platform_context():
        locale = str(get_locale() or "zh_CN")
        from booking.web.auth import current_actor
        from booking.web.pages import nav_links

        actor = current_actor()
        links = [
            (entry[0], entry[1])
            for entry in nav_links()
            if entry[0] in app.view_functions and (len(entry) < 3 or entry[2](actor))
        ]
        return {
            "current_locale": "en" if locale.startswith("en") else "zh_CN",
            "nav_links": links,
            "current_org": _current_org_label(),
        }


def _current_org_label() -> str | None:
    """The signed-in user's first active organisation and role, for the header."""
    from flask_babel import gettext

    if not (current_user and current_user.is_authenticated):
        return None
    for membership in current_user.memberships:
        org = membership.organization
        if org.status == "active":
            role = gettext("Administrator") if membership.role == "admin" else gettext("Member")
            return (
                f"{org.name}（{role}）" if not str(org.name).isascii() else f"{org.name} ({role})"
            )
    return None
