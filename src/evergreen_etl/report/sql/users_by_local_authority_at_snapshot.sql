-- Distinct users by local authority at :as_of, from the periodic-snapshot facts
-- (fact_snapshot_authority, kept by every load): the history changes only at loads, so the
-- users at :as_of are those of the latest snapshot loaded at or before it, whatever the size
-- of the history. The same rows as users_by_local_authority.sql, which reads the address
-- history itself and which the facts are tested against at every time. The facts are kept in
-- recorded time: the latest knowledge is the rows no run has retired (under --as-known-at a
-- temporary view shows the rows as they were then).
WITH authority AS (
    {{ authority }}
),
-- The facts count per recorded code; the periods a newer lookup version re-located move after.
counts AS (
    SELECT f.local_authority_code AS supplied_code, f.users
    FROM fact_snapshot_authority AS f
    WHERE f.retired_run_id IS NULL
      AND f.snapshot_at = (SELECT MAX(r.as_of) FROM etl_run AS r
                           WHERE r.status = 'succeeded' AND r.as_of <= :as_of)
    UNION ALL
    {{ relocated_counts }}
)
{{ users_by_authority }}
