-- Distinct users by country of the UK at :as_of (see users_by_local_authority.sql for :as_of
-- and :boundaries). Users located as UNKNOWN count under UNKNOWN.
WITH authority AS (
    {{ authority }}
),
located AS (
    SELECT a.user_id,
           COALESCE(la.country_code, 'UNKNOWN') AS country_code,
           COALESCE(la.country_name, 'Unknown') AS country_name
    FROM user_address AS a
    {{ relocation }}
    JOIN authority AS la
      ON la.supplied_code = COALESCE(r.local_authority_code, a.local_authority_code)
    WHERE a.valid_from <= :as_of
      AND (a.valid_to IS NULL OR a.valid_to > :as_of)
)
SELECT country_code, country_name, COUNT(DISTINCT user_id) AS users
FROM located
GROUP BY country_code, country_name
ORDER BY users DESC, country_code
