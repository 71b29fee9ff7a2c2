-- How many users at :as_of reached today's authority code through an approximate mapping (a
-- recode with a boundary change), on the 'current' basis; 0 on the others. :boundaries and
-- :lookup_version as in users_by_local_authority.sql.
WITH counts AS (
    {{ located_counts }}
)
SELECT COALESCE(SUM(CASE WHEN :boundaries = 'current' AND la.current_mapping = 'approximate'
                         THEN c.users ELSE 0 END), 0) AS approximate
FROM counts AS c
JOIN dim_local_authority AS la ON la.code = c.supplied_code
