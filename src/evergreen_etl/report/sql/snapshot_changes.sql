-- Joiners and leavers per loaded snapshot (runs with as_of <= :as_of), from the address
-- history itself, so the figures hold whatever the audit table says:
--   new_users      - users whose first address row was opened by the run
--   returned_users - users with an earlier row, none open before the run, given a row by it
--   moved_users    - users whose row the run closed and replaced (their postcode changed)
--   left_users     - users whose row the run closed without a new one
--   users          - distinct users with an address valid at the run's as-of time
-- For each run: users = previous users + new_users + returned_users - left_users.
WITH opened AS (
    SELECT o.opened_run_id AS run_id,
           CASE
             WHEN EXISTS (SELECT 1 FROM user_address AS c
                          WHERE c.user_id = o.user_id AND c.closed_run_id = o.opened_run_id)
               THEN 'moved'
             WHEN EXISTS (SELECT 1 FROM user_address AS e
                          WHERE e.user_id = o.user_id AND e.valid_from < o.valid_from)
               THEN 'returned'
             ELSE 'new'
           END AS change
    FROM user_address AS o
),
closed AS (
    SELECT c.closed_run_id AS run_id
    FROM user_address AS c
    WHERE c.closed_run_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM user_address AS o
                      WHERE o.user_id = c.user_id AND o.opened_run_id = c.closed_run_id)
),
opened_by_run AS (
    SELECT run_id,
           SUM(CASE WHEN change = 'new' THEN 1 ELSE 0 END)      AS new_users,
           SUM(CASE WHEN change = 'returned' THEN 1 ELSE 0 END) AS returned_users,
           SUM(CASE WHEN change = 'moved' THEN 1 ELSE 0 END)    AS moved_users
    FROM opened
    GROUP BY run_id
),
left_by_run AS (
    SELECT run_id, COUNT(*) AS left_users FROM closed GROUP BY run_id
)
SELECT r.run_id,
       r.as_of,
       COALESCE(o.new_users, 0)      AS new_users,
       COALESCE(o.returned_users, 0) AS returned_users,
       COALESCE(o.moved_users, 0)    AS moved_users,
       COALESCE(l.left_users, 0)     AS left_users,
       (SELECT COUNT(DISTINCT v.user_id) FROM user_address AS v
        WHERE v.valid_from <= r.as_of AND (v.valid_to IS NULL OR v.valid_to > r.as_of)) AS users
FROM etl_run AS r
LEFT JOIN opened_by_run AS o ON o.run_id = r.run_id
LEFT JOIN left_by_run AS l ON l.run_id = r.run_id
WHERE r.status = 'succeeded'
  AND r.as_of <= :as_of
ORDER BY r.as_of, r.run_id
