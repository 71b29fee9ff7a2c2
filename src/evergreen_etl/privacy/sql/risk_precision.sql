-- k-anonymity over (place x birth year x sex) for the users whose address was valid at the
-- as-of time, with the place at each precision the warehouse can give: the postcode as kept
-- (the full postcode at the default precision), its sector, its district, its authority.
-- One row per precision; the risk report recommends the finest whose share of unique users
-- is below the limit.
WITH people AS (
    SELECT COALESCE(a.postcode, 'none') AS postcode,
           CASE WHEN a.postcode IS NOT NULL AND length(a.postcode) >= 6
                THEN substr(a.postcode, 1, length(a.postcode) - 2)
                ELSE COALESCE(a.postcode, 'none') END AS sector,
           COALESCE(a.postcode_district, 'none') AS district,
           a.local_authority_code AS authority,
           COALESCE(u.birth_year, 0) AS birth_year,
           u.sex AS sex
    FROM user_address AS a
    JOIN dim_user AS u ON u.user_id = a.user_id
    WHERE a.valid_from <= :as_of
      AND (a.valid_to IS NULL OR a.valid_to > :as_of)
),
classes AS (
    SELECT 1 AS rank, 'postcode' AS precision, COUNT(*) AS k
    FROM people GROUP BY postcode, birth_year, sex
    UNION ALL
    SELECT 2, 'sector', COUNT(*) FROM people GROUP BY sector, birth_year, sex
    UNION ALL
    SELECT 3, 'district', COUNT(*) FROM people GROUP BY district, birth_year, sex
    UNION ALL
    SELECT 4, 'authority', COUNT(*) FROM people GROUP BY authority, birth_year, sex
)
SELECT rank, precision,
       SUM(k) AS users,
       COUNT(*) AS classes,
       MIN(k) AS smallest_k,
       SUM(CASE WHEN k < :threshold THEN k ELSE 0 END) AS users_below_threshold,
       SUM(CASE WHEN k = 1 THEN 1 ELSE 0 END) AS unique_users
FROM classes
GROUP BY rank, precision
ORDER BY rank
