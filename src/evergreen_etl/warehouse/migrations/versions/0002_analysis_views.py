"""analysis views

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Views that answer the report's analyses for a plain SQL client, today: users by region, by
country, by sex and age band within authority, by today's authority boundaries and by
postcode status; every move between two address rows; joiners and leavers per snapshot;
data quality per load. Views only: no table changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The two backends differ only in how they say "this year" and how they read JSON.
_CURRENT_YEAR = {
    "sqlite": "CAST(strftime('%Y', 'now') AS INTEGER)",
    "postgresql": "CAST(EXTRACT(YEAR FROM CURRENT_DATE) AS INTEGER)",
}
_LOCATION_STATUSES = (
    "full_matched",
    "partial_resolved",
    "partial_unresolved",
    "unmatched",
    "no_authority",
    "invalid",
    "missing",
)


def _json_integer(dialect: str, *path: str) -> str:
    if dialect == "postgresql":
        steps = " -> ".join(f"'{p}'" for p in path[:-1])
        return f"CAST(details -> {steps} ->> '{path[-1]}' AS INTEGER)"
    return f"CAST(json_extract(details, '$.{'.'.join(path)}') AS INTEGER)"


VIEW_USERS_BY_REGION = """
CREATE VIEW v_users_by_region AS
SELECT COALESCE(la.region_code, la.country_code, 'UNKNOWN') AS region_code,
       COALESCE(la.region_name, la.country_name, 'Unknown') AS region_name,
       COUNT(*) AS users
FROM user_address a
JOIN dim_local_authority la ON la.code = a.local_authority_code
WHERE a.is_current
GROUP BY COALESCE(la.region_code, la.country_code, 'UNKNOWN'),
         COALESCE(la.region_name, la.country_name, 'Unknown')
"""

VIEW_USERS_BY_COUNTRY = """
CREATE VIEW v_users_by_country AS
SELECT COALESCE(la.country_code, 'UNKNOWN') AS country_code,
       COALESCE(la.country_name, 'Unknown') AS country_name,
       COUNT(*) AS users
FROM user_address a
JOIN dim_local_authority la ON la.code = a.local_authority_code
WHERE a.is_current
GROUP BY COALESCE(la.country_code, 'UNKNOWN'), COALESCE(la.country_name, 'Unknown')
"""

VIEW_USERS_BY_CURRENT_AUTHORITY = """
CREATE VIEW v_users_by_current_local_authority AS
SELECT COALESCE(today.code, la.code) AS local_authority_code,
       COALESCE(today.name, la.name) AS local_authority_name,
       COUNT(*) AS users
FROM user_address a
JOIN dim_local_authority la ON la.code = a.local_authority_code
LEFT JOIN dim_local_authority today ON today.code = la.current_code
WHERE a.is_current
GROUP BY COALESCE(today.code, la.code), COALESCE(today.name, la.name)
"""

VIEW_USERS_BY_SEX_AGE_BAND = """
CREATE VIEW v_users_by_sex_age_band AS
SELECT local_authority_code, local_authority_name, sex, age_band, COUNT(*) AS users
FROM (
    SELECT a.local_authority_code, la.name AS local_authority_name, u.sex,
           CASE
             WHEN u.birth_year IS NULL OR u.birth_year > {year} THEN 'unknown'
             WHEN {year} - u.birth_year < 18 THEN '0-17'
             WHEN {year} - u.birth_year < 30 THEN '18-29'
             WHEN {year} - u.birth_year < 45 THEN '30-44'
             WHEN {year} - u.birth_year < 65 THEN '45-64'
             ELSE '65+'
           END AS age_band
    FROM user_address a
    JOIN dim_user u ON u.user_id = a.user_id
    JOIN dim_local_authority la ON la.code = a.local_authority_code
    WHERE a.is_current
) AS current_users
GROUP BY local_authority_code, local_authority_name, sex, age_band
"""

VIEW_USER_MOVES = """
CREATE VIEW v_user_moves AS
SELECT n.user_id,
       n.valid_from AS moved_at,
       n.opened_run_id AS run_id,
       p.local_authority_code AS from_local_authority_code,
       n.local_authority_code AS to_local_authority_code,
       CASE WHEN p.local_authority_code <> n.local_authority_code THEN 1 ELSE 0 END
         AS between_authorities
FROM user_address p
JOIN user_address n ON n.user_id = p.user_id AND n.valid_from = p.valid_to
"""

VIEW_USERS_BY_POSTCODE_STATUS = """
CREATE VIEW v_users_by_postcode_status AS
SELECT a.location_status,
       CASE WHEN p.terminated IS NOT NULL THEN 1 ELSE 0 END AS terminated,
       COUNT(*) AS users
FROM user_address a
LEFT JOIN dim_postcode p ON a.postcode_kind = 'full' AND p.postcode = a.postcode
WHERE a.is_current
GROUP BY a.location_status, CASE WHEN p.terminated IS NOT NULL THEN 1 ELSE 0 END
"""

VIEW_SNAPSHOT_CHANGES = """
CREATE VIEW v_snapshot_changes AS
WITH opened AS (
    SELECT o.opened_run_id AS run_id,
           CASE
             WHEN EXISTS (SELECT 1 FROM user_address c
                          WHERE c.user_id = o.user_id AND c.closed_run_id = o.opened_run_id)
               THEN 'moved'
             WHEN EXISTS (SELECT 1 FROM user_address e
                          WHERE e.user_id = o.user_id AND e.valid_from < o.valid_from)
               THEN 'returned'
             ELSE 'new'
           END AS change
    FROM user_address o
),
opened_by_run AS (
    SELECT run_id,
           SUM(CASE WHEN change = 'new' THEN 1 ELSE 0 END) AS new_users,
           SUM(CASE WHEN change = 'returned' THEN 1 ELSE 0 END) AS returned_users,
           SUM(CASE WHEN change = 'moved' THEN 1 ELSE 0 END) AS moved_users
    FROM opened
    GROUP BY run_id
),
left_by_run AS (
    SELECT c.closed_run_id AS run_id, COUNT(*) AS left_users
    FROM user_address c
    WHERE c.closed_run_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM user_address o
                      WHERE o.user_id = c.user_id AND o.opened_run_id = c.closed_run_id)
    GROUP BY c.closed_run_id
)
SELECT r.run_id, r.as_of,
       COALESCE(o.new_users, 0) AS new_users,
       COALESCE(o.returned_users, 0) AS returned_users,
       COALESCE(o.moved_users, 0) AS moved_users,
       COALESCE(l.left_users, 0) AS left_users,
       (SELECT COUNT(*) FROM user_address v
        WHERE v.valid_from <= r.as_of AND (v.valid_to IS NULL OR v.valid_to > r.as_of)) AS users
FROM etl_run r
LEFT JOIN opened_by_run o ON o.run_id = r.run_id
LEFT JOIN left_by_run l ON l.run_id = r.run_id
WHERE r.status = 'succeeded'
"""

VIEW_RUN_QUALITY = """
CREATE VIEW v_run_quality AS
SELECT run_id, as_of, status,
       {records_read} AS records_read,
       rejected_records AS rejected,
       duplicates,
       users_in_snapshot,
       {locations},
       postcodes_loaded
FROM etl_run
"""

# Newest first: dropped in this order on downgrade.
VIEWS = (
    "v_run_quality",
    "v_snapshot_changes",
    "v_users_by_postcode_status",
    "v_user_moves",
    "v_users_by_sex_age_band",
    "v_users_by_current_local_authority",
    "v_users_by_country",
    "v_users_by_region",
)


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    year = _CURRENT_YEAR.get(dialect, _CURRENT_YEAR["postgresql"])
    locations = ",\n       ".join(
        f"{_json_integer(dialect, 'location', status)} AS {status}" for status in _LOCATION_STATUSES
    )
    op.execute(VIEW_USERS_BY_REGION)
    op.execute(VIEW_USERS_BY_COUNTRY)
    op.execute(VIEW_USERS_BY_CURRENT_AUTHORITY)
    op.execute(VIEW_USERS_BY_SEX_AGE_BAND.format(year=year))
    op.execute(VIEW_USER_MOVES)
    op.execute(VIEW_USERS_BY_POSTCODE_STATUS)
    op.execute(VIEW_SNAPSHOT_CHANGES)
    op.execute(
        VIEW_RUN_QUALITY.format(
            records_read=_json_integer(dialect, "anonymise", "records_read"),
            locations=locations,
        )
    )


def downgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW {view}")
