"""Lookup versions, re-location and the local-authority code history.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

Every postcode lookup loaded becomes a version (lookup_version); the address periods a later
version locates elsewhere than they were recorded are kept per version (address_relocation),
so the authority recorded at load time is never overwritten. dim_local_authority gains
current_mapping: whether a retired code's successor chain (reference/la_successors.csv) is
exact or approximate.

A warehouse that already holds a lookup gets it recorded as version 1, its publication month
taken from the data (the file it came from is not known any more).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from evergreen_etl.warehouse.lookup_versions import successions

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SurrogateKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_FIRST_VERSION = """
INSERT INTO lookup_version
    (sha256, source, published, published_from, postcodes, loaded_at, run_id)
SELECT r.postcodes_sha256, 'loaded before lookup versions were recorded',
       (SELECT substr(MAX(introduced), 1, 4) || '-' || substr(MAX(introduced), 5, 2)
        FROM dim_postcode),
       'data', (SELECT COUNT(*) FROM dim_postcode), COALESCE(r.finished_at, r.started_at),
       r.run_id
FROM etl_run AS r
WHERE r.run_id = (SELECT MAX(run_id) FROM etl_run
                  WHERE status = 'succeeded' AND postcodes_loaded IS NOT NULL)
"""


# Each address period with the authority it was recorded with and the one the newest lookup
# version gives it (the lookup basis of the reports), for a plain SQL client.
VIEW_ADDRESS_LOCATION = """
CREATE VIEW v_address_location AS
SELECT a.address_id, a.user_id, a.valid_from, a.valid_to, a.is_current,
       a.local_authority_code AS recorded_local_authority_code,
       a.location_status AS recorded_location_status,
       COALESCE(r.local_authority_code, a.local_authority_code) AS local_authority_code,
       COALESCE(r.location_status, a.location_status) AS location_status
FROM user_address a
LEFT JOIN address_relocation r
  ON r.address_id = a.address_id
 AND r.version_id = (SELECT MAX(version_id) FROM lookup_version)
"""


def upgrade() -> None:
    op.add_column(
        "dim_local_authority",
        sa.Column(
            "current_mapping",
            sa.String(length=11),
            nullable=True,
            comment="exact or approximate: how current_code holds this area (NULL: it is current)",
        ),
    )
    op.create_table(
        "lookup_version",
        sa.Column("version_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "source",
            sa.String(length=512),
            nullable=False,
            comment="URL or file name it was loaded from",
        ),
        sa.Column(
            "published",
            sa.String(length=7),
            nullable=True,
            comment="YYYY-MM: the lookup's publication month",
        ),
        sa.Column(
            "published_from",
            sa.String(length=4),
            nullable=False,
            comment="name: read from the file name; data: the newest introduction date in it",
        ),
        sa.Column("postcodes", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True, comment="The load that brought it"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["etl_run.run_id"],
            name=op.f("fk_lookup_version_run_id_etl_run"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_lookup_version")),
        comment="Every postcode lookup loaded, in order: the newest is dim_postcode",
    )
    op.create_table(
        "address_relocation",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("address_id", _SurrogateKey, nullable=False),
        sa.Column("local_authority_code", sa.String(length=16), nullable=False),
        sa.Column("location_status", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["address_id"],
            ["user_address.address_id"],
            name=op.f("fk_address_relocation_address_id_user_address"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["local_authority_code"],
            ["dim_local_authority.code"],
            name=op.f("fk_address_relocation_local_authority_code_dim_local_authority"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["lookup_version.version_id"],
            name=op.f("fk_address_relocation_version_id_lookup_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "address_id", name=op.f("pk_address_relocation")),
        comment="Address periods a lookup version locates elsewhere than they were recorded",
        sqlite_with_rowid=False,
    )
    op.execute(_FIRST_VERSION)
    op.execute(VIEW_ADDRESS_LOCATION)
    # Retired codes already in the warehouse: today's authority through the successor chain.
    chains = [
        {"code": code, "current": current, "mapping": mapping}
        for code, (current, mapping) in successions().items()
    ]
    op.get_bind().execute(
        sa.text(
            "UPDATE dim_local_authority SET current_code = :current, current_mapping = :mapping "
            "WHERE code = :code"
        ),
        chains,
    )


def downgrade() -> None:
    op.execute("DROP VIEW v_address_location")
    op.drop_table("address_relocation")
    op.drop_table("lookup_version")
    op.execute("ALTER TABLE dim_local_authority DROP COLUMN current_mapping")
