-- How many users at :as_of reached today's authority code through an approximate mapping (a
-- recode with a boundary change), on the 'current' basis; 0 on the others. :boundaries and
-- :lookup_version as in users_by_local_authority.sql, and the counts placeholder too.
WITH counts AS (
    {{ counts }}
)
{{ approximate_users }}
