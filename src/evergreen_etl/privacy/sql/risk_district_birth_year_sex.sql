-- k-anonymity over (postcode district x birth year x sex) for the users whose address was valid
-- at the as-of time. The district is the outward code of the postcode; users with no usable
-- postcode (or a warehouse that keeps authorities only) form one "no district" value.
WITH people AS (
    SELECT COALESCE(a.postcode_district, 'none') AS district,
           COALESCE(u.birth_year, 0) AS birth_year,
           u.sex AS sex
    FROM user_address AS a
    JOIN dim_user AS u ON u.user_id = a.user_id
    WHERE a.valid_from <= :as_of
      AND (a.valid_to IS NULL OR a.valid_to > :as_of)
),
classes AS (
    SELECT district, birth_year, sex, COUNT(*) AS k
    FROM people
    GROUP BY district, birth_year, sex
)
SELECT COALESCE(SUM(k), 0) AS users,
       COUNT(*) AS classes,
       MIN(k) AS smallest_k,
       COALESCE(SUM(CASE WHEN k < :threshold THEN k ELSE 0 END), 0) AS users_below_threshold,
       COALESCE(SUM(CASE WHEN k = 1 THEN 1 ELSE 0 END), 0) AS unique_users
FROM classes
