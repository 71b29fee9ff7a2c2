"""Recorded time for the facts and for sex and birth year; the users without a record key.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

Each fact row names the run that computed it (recorded_run_id) and the run that computed its
snapshot again (retired_run_id), so ``report --as-known-at`` reads the few hundred facts of
the snapshot as they were known then instead of the whole address history.

The facts are derived data: the table is made again from the history loaded so far, every row
recorded by the newest run. What a run before the migration knew is not in them; a report
known at such a run reads the history (``report.analysis`` checks it).

``fact_snapshot_relocation`` holds what the newest lookup version's re-location changes in
those facts, per snapshot time and authority code (made from the history at the migration).

``user_attributes_retired`` keeps the sex and birth year a run overwrote, with that run, so
the type 1 attributes too can be read as known at an earlier run. It starts empty: what runs
before the migration overwrote is not known.

``ix_dim_user_without_record_key`` (partial: only users whose record_key is NULL, i.e. the new
users of a load until it gives them one) lets the load find them without reading every user.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "fact_snapshot_authority"
_COMMENT = "Users by local authority at each loaded snapshot (periodic snapshot facts)"


def _create(*, recorded: bool) -> None:
    run_columns = (
        [
            sa.Column(
                "recorded_run_id",
                sa.Integer(),
                nullable=False,
                comment="The load (or undo) that computed the row",
            ),
            sa.Column(
                "retired_run_id",
                sa.Integer(),
                nullable=True,
                comment=(
                    "The load or undo that computed the snapshot again (NULL: the latest knowledge)"
                ),
            ),
        ]
        if recorded
        else []
    )
    key = ["snapshot_at", "local_authority_code"] + (["recorded_run_id"] if recorded else [])
    op.create_table(
        _TABLE,
        sa.Column(
            "snapshot_at", sa.DateTime(), nullable=False, comment="A loaded snapshot's time t"
        ),
        sa.Column(
            "local_authority_code",
            sa.String(length=16),
            nullable=False,
            comment="As supplied (user_address.local_authority_code)",
        ),
        sa.Column(
            "users", sa.Integer(), nullable=False, comment="Users whose address row was valid at t"
        ),
        *run_columns,
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_fact_snapshot_authority")),
        comment=_COMMENT,
    )
    # The history loaded so far, at each succeeded load's snapshot time (the SQL as of this
    # revision: the package's own may change later).
    recorded_by = ", (SELECT COALESCE(MAX(run_id), 0) FROM etl_run)" if recorded else ""
    op.execute(
        f"""
        INSERT INTO {_TABLE} (snapshot_at, local_authority_code, users
                              {", recorded_run_id" if recorded else ""})
        SELECT r.as_of, a.local_authority_code, COUNT(*){recorded_by}
        FROM (SELECT DISTINCT as_of FROM etl_run WHERE status = 'succeeded') AS r
        JOIN user_address AS a
          ON a.valid_from <= r.as_of AND (a.valid_to IS NULL OR a.valid_to > r.as_of)
        GROUP BY r.as_of, a.local_authority_code
        """
    )


_MOVES = "fact_snapshot_relocation"
# What the newest lookup version re-located, at each succeeded load's snapshot time (the SQL
# as of this revision).
_FILL_MOVES = f"""
INSERT INTO {_MOVES}
    (snapshot_at, version_id, local_authority_code, users, recorded_run_id)
SELECT r.as_of, v.version_id, moved.code, SUM(moved.users),
       (SELECT COALESCE(MAX(run_id), 0) FROM etl_run)
FROM (SELECT DISTINCT as_of FROM etl_run WHERE status = 'succeeded') AS r
CROSS JOIN (SELECT MAX(version_id) AS version_id FROM lookup_version) AS v
JOIN (
    SELECT x.version_id, x.local_authority_code AS code, 1 AS users, a.valid_from, a.valid_to
    FROM address_relocation AS x JOIN user_address AS a ON a.address_id = x.address_id
    UNION ALL
    SELECT x.version_id, a.local_authority_code, -1, a.valid_from, a.valid_to
    FROM address_relocation AS x JOIN user_address AS a ON a.address_id = x.address_id
) AS moved
  ON moved.version_id = v.version_id
 AND moved.valid_from <= r.as_of AND (moved.valid_to IS NULL OR moved.valid_to > r.as_of)
GROUP BY r.as_of, v.version_id, moved.code
HAVING SUM(moved.users) <> 0
"""
_INDEX = "ix_dim_user_without_record_key"
_ATTRIBUTES = "user_attributes_retired"
_SURROGATE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.drop_table(_TABLE)
    _create(recorded=True)
    without_key = sa.text("record_key IS NULL")
    op.create_index(
        _INDEX, "dim_user", ["user_id"], sqlite_where=without_key, postgresql_where=without_key
    )
    op.create_table(
        _MOVES,
        sa.Column(
            "snapshot_at", sa.DateTime(), nullable=False, comment="A loaded snapshot's time t"
        ),
        sa.Column(
            "version_id",
            sa.Integer(),
            nullable=False,
            comment="The lookup version re-locating",
        ),
        sa.Column("local_authority_code", sa.String(length=16), nullable=False),
        sa.Column(
            "users",
            sa.Integer(),
            nullable=False,
            comment="Users moved into (+) or out of (-) it",
        ),
        sa.Column("recorded_run_id", sa.Integer(), nullable=False),
        sa.Column("retired_run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint(
            "snapshot_at",
            "version_id",
            "local_authority_code",
            "recorded_run_id",
            name=op.f("pk_fact_snapshot_relocation"),
        ),
        comment="Re-location's change to fact_snapshot_authority, per lookup version (facts)",
    )
    op.execute(_FILL_MOVES)
    op.create_table(
        _ATTRIBUTES,
        sa.Column("user_id", _SURROGATE, autoincrement=False, nullable=False),
        sa.Column("retired_run_id", sa.Integer(), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("birth_year", sa.SmallInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["retired_run_id"],
            ["etl_run.run_id"],
            name=op.f("fk_user_attributes_retired_retired_run_id_etl_run"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["dim_user.user_id"],
            name=op.f("fk_user_attributes_retired_user_id_dim_user"),
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "retired_run_id", name=op.f("pk_user_attributes_retired")
        ),
        comment="Sex and birth year as they were before the run that overwrote them (no PII)",
    )


def downgrade() -> None:
    op.drop_table(_ATTRIBUTES)
    op.drop_table(_MOVES)
    op.drop_index(_INDEX, table_name="dim_user")
    op.drop_table(_TABLE)
    _create(recorded=False)
