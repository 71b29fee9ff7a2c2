"""initial warehouse schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Tables of the star schema, the SCD2 user-address table with its one-current-row index,
the unknown local-authority member, and the analysts' views.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEW_CURRENT_LOCATION = """
CREATE VIEW v_user_current_location AS
SELECT u.user_id, u.pseudonym, u.sex, u.birth_year,
       a.postcode, a.postcode_kind, a.location_status,
       a.local_authority_code, la.name AS local_authority_name,
       la.region_name, la.country_name, a.valid_from AS living_here_since
FROM user_address a
JOIN dim_user u ON u.user_id = a.user_id
JOIN dim_local_authority la ON la.code = a.local_authority_code
WHERE a.is_current
"""

VIEW_USERS_BY_AUTHORITY = """
CREATE VIEW v_users_by_local_authority AS
SELECT local_authority_code, local_authority_name, COUNT(*) AS users
FROM v_user_current_location
GROUP BY local_authority_code, local_authority_name
"""


def upgrade() -> None:
    op.create_table(
        "dim_local_authority",
        sa.Column(
            "code", sa.String(length=16), nullable=False, comment="ONS district code, or UNKNOWN"
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("region_code", sa.String(length=16), nullable=True),
        sa.Column("region_name", sa.String(length=128), nullable=True),
        sa.Column("country_code", sa.String(length=16), nullable=True),
        sa.Column("country_name", sa.String(length=64), nullable=True),
        sa.Column(
            "current_code",
            sa.String(length=16),
            nullable=True,
            comment="The authority that holds this area today",
        ),
        sa.Column("is_current", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_dim_local_authority")),
        comment="Local authority districts, with an explicit unknown member",
    )
    op.create_table(
        "dim_postcode",
        sa.Column("postcode", sa.String(length=8), nullable=False, comment="Canonical pcds form"),
        sa.Column("outward", sa.String(length=4), nullable=False, comment="Postcode district"),
        sa.Column(
            "local_authority_code",
            sa.String(length=16),
            nullable=True,
            comment="NULL when the lookup has a pseudo-code",
        ),
        sa.Column("country_code", sa.String(length=16), nullable=True),
        sa.Column("region_code", sa.String(length=16), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("introduced", sa.String(length=6), nullable=True, comment="YYYYMM"),
        sa.Column(
            "terminated", sa.String(length=6), nullable=True, comment="YYYYMM, NULL while live"
        ),
        sa.PrimaryKeyConstraint("postcode", name=op.f("pk_dim_postcode")),
        comment="The ONS postcode lookup as loaded (NSPL)",
    )
    op.create_table(
        "dim_postcode_district",
        sa.Column("outward", sa.String(length=4), nullable=False),
        sa.Column(
            "local_authority_code",
            sa.String(length=16),
            nullable=True,
            comment="Set only when every live postcode of the district lies in this authority",
        ),
        sa.Column("live_postcodes", sa.Integer(), nullable=False),
        sa.Column("authorities", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("outward", name=op.f("pk_dim_postcode_district")),
        comment="Where an outward code alone can be located",
    )
    op.create_table(
        "etl_run",
        sa.Column("run_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column(
            "as_of", sa.DateTime(), nullable=False, comment="The snapshot time t of the load"
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "key_id", sa.String(length=32), nullable=False, comment="Identifies the pseudonym key"
        ),
        sa.Column("users_sha256", sa.String(length=64), nullable=True),
        sa.Column("postcodes_sha256", sa.String(length=64), nullable=True),
        sa.Column("users_in_snapshot", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("new_users", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("returned_users", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("moved_users", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("left_users", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("unchanged_users", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rejected_records", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("postcodes_loaded", sa.Integer(), nullable=True),
        sa.Column(
            "details",
            sa.JSON(),
            nullable=True,
            comment="Location counts and data-quality summary (no PII)",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_etl_run")),
        comment="One row per load: checksums, as-of time and counts",
    )
    with op.batch_alter_table("etl_run", schema=None) as batch_op:
        batch_op.create_index("ix_etl_run_as_of", ["as_of"], unique=False)

    op.create_table(
        "dim_user",
        sa.Column(
            "user_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "pseudonym", sa.String(length=64), nullable=False, comment="HMAC-SHA256 of email"
        ),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("birth_year", sa.SmallInteger(), nullable=True),
        sa.Column("first_run_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("sex IN ('F', 'M', 'U')", name=op.f("ck_dim_user_sex")),
        sa.ForeignKeyConstraint(
            ["first_run_id"], ["etl_run.run_id"], name=op.f("fk_dim_user_first_run_id_etl_run")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_dim_user")),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_dim_user_pseudonym")),
        comment="Pseudonymised users (no direct identifier)",
    )
    op.create_table(
        "user_address",
        sa.Column(
            "address_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "postcode",
            sa.String(length=8),
            nullable=True,
            comment="Canonical full postcode, outward code, or NULL",
        ),
        sa.Column("postcode_kind", sa.String(length=8), nullable=False),
        sa.Column("local_authority_code", sa.String(length=16), nullable=False),
        sa.Column("location_status", sa.String(length=20), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("valid_to", sa.DateTime(), nullable=True),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("opened_run_id", sa.Integer(), nullable=False),
        sa.Column("closed_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "is_current = (valid_to IS NULL)", name=op.f("ck_user_address_current_is_open")
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_user_address_interval")
        ),
        sa.ForeignKeyConstraint(
            ["closed_run_id"],
            ["etl_run.run_id"],
            name=op.f("fk_user_address_closed_run_id_etl_run"),
        ),
        sa.ForeignKeyConstraint(
            ["local_authority_code"],
            ["dim_local_authority.code"],
            name=op.f("fk_user_address_local_authority_code_dim_local_authority"),
        ),
        sa.ForeignKeyConstraint(
            ["opened_run_id"],
            ["etl_run.run_id"],
            name=op.f("fk_user_address_opened_run_id_etl_run"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["dim_user.user_id"], name=op.f("fk_user_address_user_id_dim_user")
        ),
        sa.PrimaryKeyConstraint("address_id", name=op.f("pk_user_address")),
        comment="Where each user lived when: SCD type 2, half-open [valid_from, valid_to)",
    )
    with op.batch_alter_table("user_address", schema=None) as batch_op:
        batch_op.create_index("ix_user_address_user_valid", ["user_id", "valid_from"], unique=False)
        batch_op.create_index(
            "ix_user_address_valid",
            ["valid_from", "valid_to", "local_authority_code"],
            unique=False,
        )
        batch_op.create_index(
            "ux_user_address_current",
            ["user_id"],
            unique=True,
            sqlite_where=sa.text("is_current"),
            postgresql_where=sa.text("is_current"),
        )

    op.execute(
        sa.text(
            "INSERT INTO dim_local_authority (code, name, is_current) "
            "VALUES ('UNKNOWN', 'Unknown (no, invalid or unmatched postcode)', true)"
        )
    )
    op.execute(VIEW_CURRENT_LOCATION)
    op.execute(VIEW_USERS_BY_AUTHORITY)


def downgrade() -> None:
    op.execute("DROP VIEW v_users_by_local_authority")
    op.execute("DROP VIEW v_user_current_location")
    with op.batch_alter_table("user_address", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_user_address_current",
            sqlite_where=sa.text("is_current"),
            postgresql_where=sa.text("is_current"),
        )
        batch_op.drop_index("ix_user_address_valid")
        batch_op.drop_index("ix_user_address_user_valid")

    op.drop_table("user_address")
    op.drop_table("dim_user")
    with op.batch_alter_table("etl_run", schema=None) as batch_op:
        batch_op.drop_index("ix_etl_run_as_of")

    op.drop_table("etl_run")
    op.drop_table("dim_postcode_district")
    op.drop_table("dim_postcode")
    op.drop_table("dim_local_authority")
