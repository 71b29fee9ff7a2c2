-- Distinct users by region at :as_of (see users_by_local_authority.sql for :as_of and
-- :boundaries). ONS regions cover England only: an authority in Wales, Scotland or Northern
-- Ireland counts under its country, as in ONS's own region-level tables. Users located as
-- UNKNOWN (and authorities the reference table does not know) count under UNKNOWN.
WITH authority AS (
    {{ authority }}
),
located AS (
    SELECT a.user_id,
           COALESCE(la.region_code, 'UNKNOWN') AS region_code,
           COALESCE(la.region_name, 'Unknown') AS region_name
    FROM user_address AS a
    {{ relocation }}
    JOIN authority AS la
      ON la.supplied_code = COALESCE(r.local_authority_code, a.local_authority_code)
    WHERE a.valid_from <= :as_of
      AND (a.valid_to IS NULL OR a.valid_to > :as_of)
)
SELECT region_code, region_name, COUNT(DISTINCT user_id) AS users
FROM located
GROUP BY region_code, region_name
ORDER BY users DESC, region_code
