-- Distinct users by country of the UK at :as_of (see users_by_local_authority.sql for :as_of
-- and :boundaries). Users located as UNKNOWN count under UNKNOWN.
WITH authority AS (
    {{ authority }}
),
-- Periods are counted per authority code first (see users_by_local_authority.sql).
counts AS (
    {{ counts }}
)
SELECT COALESCE(la.country_code, 'UNKNOWN') AS country_code,
       COALESCE(la.country_name, 'Unknown') AS country_name,
       SUM(c.users) AS users
FROM counts AS c
JOIN authority AS la ON la.supplied_code = c.supplied_code
GROUP BY COALESCE(la.country_code, 'UNKNOWN'), COALESCE(la.country_name, 'Unknown')
HAVING SUM(c.users) > 0
ORDER BY users DESC, country_code
