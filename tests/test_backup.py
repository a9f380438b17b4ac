"""The restore drill: back up, lose data, restore, find it again — through
the same commands an operator runs."""

from __future__ import annotations

from booking.models.accounts import Organization


def test_backup_and_restore_bring_back_lost_rows(app, db, make_org, tmp_path):
    kept = make_org("enterprise", name="备份前的企业")
    db.session.commit()
    runner = app.test_cli_runner()
    target = tmp_path / "backup.dump"
    result = runner.invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    assert target.stat().st_size > 0

    db.session.delete(kept)
    make_org("enterprise", name="备份后的企业")
    db.session.commit()

    result = runner.invoke(args=["restore", "--yes", str(target)])
    assert result.exit_code == 0, result.output
    db.session.remove()
    names = {o.name for o in db.session.query(Organization)}
    assert names == {"备份前的企业"}


def test_restore_of_a_missing_file_is_refused(app):
    result = app.test_cli_runner().invoke(args=["restore", "--yes", "/nonexistent/backup"])
    assert result.exit_code != 0
