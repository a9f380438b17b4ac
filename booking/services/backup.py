"""Backup and restore of the whole database.

- SQLite: the online backup API of the sqlite3 module (a consistent copy
  while the service runs; WAL content included).
- PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore --clean``; the
  client programs must be installed and of the server's major version or
  newer.

The restore drill in ``tests/test_backup.py`` runs both.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(RuntimeError):
    pass


def _libpq_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: str) -> str:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return path


def backup(url: str, target: str | Path) -> Path:
    """Write a backup of the database at ``url`` to ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        tmp = target.with_suffix(target.suffix + ".partial")
        with sqlite3.connect(_sqlite_path(url)) as source, sqlite3.connect(tmp) as copy:
            source.backup(copy)
        os.replace(tmp, target)
        return target
    if backend == "postgresql":
        _run(["pg_dump", "--format=custom", "--no-owner", f"--file={target}", _libpq_url(url)])
        return target
    raise BackupError(f"no backup for {backend}")


def restore(url: str, source: str | Path) -> None:
    """Replace the database at ``url`` with the backup in ``source``."""
    source = Path(source)
    if not source.exists():
        raise BackupError(f"{source} does not exist")
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        with sqlite3.connect(source) as backup_db, sqlite3.connect(_sqlite_path(url)) as live:
            backup_db.backup(live)
        return
    if backend == "postgresql":
        _run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                f"--dbname={_libpq_url(url)}",
                str(source),
            ]
        )
        return
    raise BackupError(f"no restore for {backend}")


def _run(command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed (PostgreSQL client programs)")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()}")
