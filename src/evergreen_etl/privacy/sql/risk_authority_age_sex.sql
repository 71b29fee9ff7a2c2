-- k-anonymity over (local authority x age band x sex) for the users whose address was valid at
-- the as-of time. One row: number of equivalence classes, the smallest class (k), users in
-- classes smaller than the threshold, and users alone in their class.
WITH people AS (
    SELECT a.local_authority_code AS area,
           u.sex AS sex,
           CASE
               WHEN u.birth_year IS NULL THEN 'unknown'
               WHEN :as_of_year - u.birth_year < 18 THEN '0-17'
               WHEN :as_of_year - u.birth_year < 30 THEN '18-29'
               WHEN :as_of_year - u.birth_year < 45 THEN '30-44'
               WHEN :as_of_year - u.birth_year < 65 THEN '45-64'
               ELSE '65+'
           END AS age_band
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
