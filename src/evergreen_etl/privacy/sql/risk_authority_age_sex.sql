-- k-anonymity over (local authority x age band x sex) for the users whose address was valid at
-- the as-of time. One row: number of equivalence classes, the smallest class (k), users in
-- classes smaller than the threshold, and users alone in their class. The age band is the
-- reports' (the shared fragment 'age_band' in warehouse/sql/fragments.sql).
WITH people AS (
    SELECT a.local_authority_code AS area,
           u.sex AS sex,
           {{ age_band }} AS age_band
    FROM user_address AS a
    JOIN dim_user AS u ON u.user_id = a.user_id
    WHERE a.valid_from <= :as_of
      AND (a.valid_to IS NULL OR a.valid_to > :as_of)
),
classes AS (
    SELECT area, sex, age_band, COUNT(*) AS k
    FROM people
    GROUP BY area, sex, age_band
)
SELECT COALESCE(SUM(k), 0) AS users,
       COUNT(*) AS classes,
       MIN(k) AS smallest_k,
       COALESCE(SUM(CASE WHEN k < :threshold THEN k ELSE 0 END), 0) AS users_below_threshold,
       COALESCE(SUM(CASE WHEN k = 1 THEN 1 ELSE 0 END), 0) AS unique_users
FROM classes
