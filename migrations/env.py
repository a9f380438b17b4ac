"""Alembic environment, driven by Flask-Migrate (``flask --app wsgi db ...``).

The schema's source of truth is ``booking.models``; every revision is
checked against it by ``tests/test_migrations.py`` on SQLite and PostgreSQL.
"""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

import booking.models  # noqa: F401 - registers every table
from booking.database import schema_object_filter

config = context.config
if config.config_file_name:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db


def get_metadata():
    return target_db.metadata


def render_item(type_, obj, autogen_context):
    """Render the platform's column types (TypeDecorators such as UTCDateTime,
    Money, Ratio) as the plain SQLAlchemy types they store, so a revision
    never imports application code."""
    from sqlalchemy.types import TypeDecorator

    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def run_migrations_offline():
    url = target_db.engine.url.render_as_string(hide_password=False)
    context.configure(
        url=url,
        target_metadata=get_metadata(),
        literal_binds=True,
        render_as_batch=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("compare_type", True)
    conf_args.setdefault("render_item", render_item)

    with target_db.engine.connect() as connection:
        conf_args.setdefault("include_object", schema_object_filter(connection.dialect.name))
        context.configure(connection=connection, target_metadata=get_metadata(), **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
