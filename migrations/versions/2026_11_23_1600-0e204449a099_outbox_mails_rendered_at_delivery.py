"""outbox mails rendered at delivery

A mail is written with the snapshot it is rendered from (``params``); its
subject and bodies stay empty until the mailer renders them.

Revision ID: 0e204449a099
Revises: 9657dfc157cc
Create Date: 2026-11-23 16:00:00.000000

"""

import warnings
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0e204449a099"
down_revision = "9657dfc157cc"
branch_labels = None
depends_on = None


@contextmanager
def outbox_mails():
    """The table's batch (SQLite copies it; reflecting it reflects ``users``,
    whose expression index SQLAlchemy cannot reflect and says so)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        with op.batch_alter_table("outbox_mails", schema=None) as batch_op:
            yield batch_op


def upgrade():
    with outbox_mails() as batch_op:
        batch_op.add_column(sa.Column("params", sa.JSON(none_as_null=True), nullable=True))
        batch_op.alter_column("subject", existing_type=sa.String(length=300), nullable=True)
        batch_op.alter_column("text_body", existing_type=sa.Text(), nullable=True)
        batch_op.create_check_constraint(
            op.f("ck_outbox_mails_rendered_or_renderable"),
            "(subject IS NOT NULL AND text_body IS NOT NULL) OR params IS NOT NULL",
        )


def downgrade():
    # Mails not rendered yet cannot keep empty texts: what they say is in
    # their snapshot, which the old schema has no place for. Say so in them.
    op.execute(
        "UPDATE outbox_mails SET status = 'failed', "
        "last_error = 'not rendered yet when the schema was downgraded' "
        "WHERE text_body IS NULL AND status = 'pending'"
    )
    op.execute("UPDATE outbox_mails SET subject = '(not rendered)' WHERE subject IS NULL")
    op.execute("UPDATE outbox_mails SET text_body = '' WHERE text_body IS NULL")
    with outbox_mails() as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_mails_rendered_or_renderable"), type_="check")
        batch_op.alter_column("text_body", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("subject", existing_type=sa.String(length=300), nullable=False)
        batch_op.drop_column("params")
