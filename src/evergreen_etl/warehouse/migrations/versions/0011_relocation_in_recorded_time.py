"""Re-location in recorded time: the re-location of retired rows is kept; complete versions.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

A correction (late snapshot, replace, undo) retires address rows to user_address_retired;
their address_relocation rows went with them (the foreign key cascades), so
``report --as-known-at`` before the correction read those periods where they were recorded
instead of where the lookup then put them. ``address_relocation_retired`` keeps them, with
the run that retired them.

address_relocation loses its foreign keys: it is derived, written and deleted only by
set-based statements that keep it consistent (retiring a row now moves its re-location to
address_relocation_retired and deletes it explicitly), and PostgreSQL's check of three keys per
row was more than half of writing a national re-location (3 s of 5 s at 1M users). On SQLite,
which cannot drop a foreign key, the table is made again (same rows, same primary key).

``lookup_version.relocation_complete`` says that address_relocation holds every period the
version locates elsewhere than it was recorded, including the rows corrections re-derived
after it was loaded (before this revision they got none). Only then can the next version's
re-location start from it and locate again just the periods whose postcode it changes;
versions loaded before this revision are not complete, and the next version locates every
period.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SurrogateKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


_RELOCATION = "address_relocation"
_FOREIGN_KEYS = (
    ("address_id", "user_address", "address_id", "CASCADE"),
    ("local_authority_code", "dim_local_authority", "code", None),
    ("version_id", "lookup_version", "version_id", "CASCADE"),
)


def _foreign_key_name(column: str, table: str) -> str:
    return f"fk_{_RELOCATION}_{column}_{table}"


def _make_sqlite_table_again(*, foreign_keys: bool) -> None:
    """address_relocation again, with or without its foreign keys (SQLite cannot add or drop
    one). The view v_address_location names the table: the old rename rule leaves it be."""
    references = "".join(
        f", CONSTRAINT {_foreign_key_name(column, table)} FOREIGN KEY({column}) "
        f"REFERENCES {table} ({key})" + (f" ON DELETE {action}" if action else "")
        for column, table, key, action in (_FOREIGN_KEYS if foreign_keys else ())
    )
    columns = "version_id, address_id, local_authority_code, location_status"
    op.execute("PRAGMA legacy_alter_table = ON")
    op.execute(
        f"CREATE TABLE _new_{_RELOCATION} (version_id INTEGER NOT NULL, "
        "address_id INTEGER NOT NULL, local_authority_code VARCHAR(16) NOT NULL, "
        f"location_status VARCHAR(20) NOT NULL, CONSTRAINT pk_{_RELOCATION} "
        f"PRIMARY KEY (version_id, address_id){references}) WITHOUT ROWID"
    )
    op.execute(f"INSERT INTO _new_{_RELOCATION} ({columns}) SELECT {columns} FROM {_RELOCATION}")
    op.execute(f"DROP TABLE {_RELOCATION}")
    op.execute(f"ALTER TABLE _new_{_RELOCATION} RENAME TO {_RELOCATION}")
    op.execute("PRAGMA legacy_alter_table = OFF")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _make_sqlite_table_again(foreign_keys=False)
    else:
        for column, table, _key, _action in _FOREIGN_KEYS:
            op.drop_constraint(_foreign_key_name(column, table), _RELOCATION, type_="foreignkey")
    op.create_table(
        "address_relocation_retired",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("address_id", _SurrogateKey, nullable=False),
        sa.Column("retired_run_id", sa.Integer(), nullable=False),
        sa.Column("local_authority_code", sa.String(length=16), nullable=False),
        sa.Column("location_status", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["retired_run_id"],
            ["etl_run.run_id"],
            name=op.f("fk_address_relocation_retired_retired_run_id_etl_run"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["lookup_version.version_id"],
            name=op.f("fk_address_relocation_retired_version_id_lookup_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "version_id", "address_id", name=op.f("pk_address_relocation_retired")
        ),
        comment="address_relocation rows of address periods a correction retired",
        sqlite_with_rowid=False,
    )
    op.add_column(
        "lookup_version",
        sa.Column(
            "relocation_complete",
            sa.Boolean(),
            nullable=False,
            server_default=sa.false(),
            comment=(
                "address_relocation holds every period this version locates elsewhere than "
                "recorded (false: loaded before revision 0011)"
            ),
        ),
    )


def downgrade() -> None:
    op.execute("ALTER TABLE lookup_version DROP COLUMN relocation_complete")
    op.drop_table("address_relocation_retired")
    # Rows of periods no longer in user_address (none are written) would break the key.
    op.execute(
        f"DELETE FROM {_RELOCATION} WHERE address_id NOT IN (SELECT address_id FROM user_address)"
    )
    if op.get_bind().dialect.name == "sqlite":
        _make_sqlite_table_again(foreign_keys=True)
    else:
        for column, table, key, action in _FOREIGN_KEYS:
            op.create_foreign_key(
                _foreign_key_name(column, table),
                _RELOCATION,
                table,
                [column],
                [key],
                ondelete=action,
            )
