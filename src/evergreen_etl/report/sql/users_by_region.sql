-- Distinct users by region at :as_of (see users_by_local_authority.sql for :as_of and
-- :boundaries). ONS regions cover England only: an authority in Wales, Scotland or Northern
-- Ireland counts under its country, as in ONS's own region-level tables. Users located as
-- UNKNOWN (and authorities the reference table does not know) count under UNKNOWN.
WITH authority AS (
    {{ authority }}
),
-- Periods are counted per authority code first (see users_by_local_authority.sql).
counts AS (
    {{ counts }}
)
SELECT COALESCE(la.region_code, 'UNKNOWN') AS region_code,
       COALESCE(la.region_name, 'Unknown') AS region_name,
       SUM(c.users) AS users
FROM counts AS c
JOIN authority AS la ON la.supplied_code = c.supplied_code
GROUP BY COALESCE(la.region_code, 'UNKNOWN'), COALESCE(la.region_name, 'Unknown')
HAVING SUM(c.users) > 0
ORDER BY users DESC, region_code
