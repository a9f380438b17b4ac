"""Commands: ``flask --app wsgi <command>``, or ``booking <command>``.

``db upgrade`` comes from Flask-Migrate; the rest are here.
"""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from booking.authz import Actor
from booking.domain.errors import ValidationFailed
from booking.extensions import db
from booking.services import accounts

SYSTEM = Actor(user_id=None, platform_admin=True, ip="cli")


@click.command("create-admin")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", default="Platform admin")
@with_appcontext
def create_admin(email: str, password: str, name: str) -> None:
    """Create a platform admin."""
    try:
        user = accounts.create_user(
            db.session,
            SYSTEM,
            {"email": email, "password": password, "name": name, "platform_admin": True},
        )
    except ValidationFailed as exc:
        for field, messages in exc.fields.items():
            click.echo(f"{field}: {' '.join(messages)}", err=True)
        sys.exit(1)
    db.session.commit()
    click.echo(f"platform admin {user.email} created (id {user.id})")


@click.command("create-token")
@click.argument("email")
@click.option("--days", type=int, default=None, help="validity, default API_TOKEN_DAYS")
@with_appcontext
def create_token(email: str, days: int | None) -> None:
    """Print a new API token for a user."""
    user = accounts.find_user_by_email(db.session, email)
    if user is None:
        click.echo(f"no user {email}", err=True)
        sys.exit(1)
    token, _row = accounts.issue_token(
        db.session, user, days or current_app.config["API_TOKEN_DAYS"], label="cli"
    )
    db.session.commit()
    click.echo(token)


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Load the demo data set (idempotent: running it again changes nothing)."""
    from booking.services import demo

    summary = demo.seed(db.session)
    db.session.commit()
    for line in summary:
        click.echo(line)


@click.command("backup")
@click.argument("target", type=click.Path(dir_okay=False))
@with_appcontext
def backup_database(target: str) -> None:
    """Back up the whole database to TARGET (SQLite copy or pg_dump archive)."""
    from booking.services import backup

    try:
        path = backup.backup(current_app.config["SQLALCHEMY_DATABASE_URI"], target)
    except backup.BackupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"backup written to {path}")


@click.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@with_appcontext
def restore_database(source: str, yes: bool) -> None:
    """Replace the whole database with the backup in SOURCE."""
    from booking.services import backup

    if not yes:
        click.confirm("This replaces every row of the database. Go on?", abort=True)
    db.session.remove()
    db.engine.dispose()
    try:
        backup.restore(current_app.config["SQLALCHEMY_DATABASE_URI"], source)
    except backup.BackupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"restored from {source}")


def register_cli(app: Flask) -> None:
    from booking.jobs import scheduler_command

    for command in (
        create_admin,
        create_token,
        seed_demo,
        backup_database,
        restore_database,
        scheduler_command,
    ):
        app.cli.add_command(command)


def main() -> None:
    """The ``booking`` entry point: the same commands without ``flask --app``."""
    from booking import create_app

    FlaskGroup(create_app=create_app)(prog_name="booking")
