"""Published views: the analysis views under the NHS rule, for a reader role.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

``pub_*`` views publish the current counts of the ``v_*`` analysis views under NHS England's
rule, in SQL: 0 stays 0, 1 to 7 are NULL (suppressed), other counts are rounded to the
nearest 5. On PostgreSQL a view runs with its owner's rights, so a role granted SELECT on
these views alone (``evergreen-etl db grant-reader``) reads them without any right on the
pseudonymised tables beneath. Views only: no table changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The NHS rule on a count column (integer division rounds half up after adding 2).
_NHS = "CASE WHEN users = 0 THEN 0 WHEN users <= 7 THEN NULL ELSE 5 * ((users + 2) / 5) END"

# view -> (source view, the columns beside the count)
PUBLISHED_VIEWS = {
    "pub_users_by_local_authority": (
        "v_users_by_local_authority",
        "local_authority_code, local_authority_name",
    ),
    "pub_users_by_region": ("v_users_by_region", "region_code, region_name"),
    "pub_users_by_country": ("v_users_by_country", "country_code, country_name"),
    "pub_users_by_sex_age_band": (
        "v_users_by_sex_age_band",
        "local_authority_code, local_authority_name, sex, age_band",
    ),
    "pub_users_by_postcode_status": ("v_users_by_postcode_status", "location_status, terminated"),
}


def upgrade() -> None:
    for view, (source, columns) in PUBLISHED_VIEWS.items():
        op.execute(f"CREATE VIEW {view} AS SELECT {columns}, {_NHS} AS users FROM {source}")


def downgrade() -> None:
    for view in PUBLISHED_VIEWS:
        op.execute(f"DROP VIEW {view}")
