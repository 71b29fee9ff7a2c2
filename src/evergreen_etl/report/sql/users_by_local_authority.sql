-- Distinct users by local authority at :as_of.
-- A user counts where their address row was valid at :as_of: valid_from <= :as_of < valid_to
-- (an open row has valid_to NULL). Users with no, invalid or unmatched postcodes count under
-- the UNKNOWN member, so the rows add up to the number of distinct users at :as_of.
SELECT
    a.local_authority_code AS local_authority_code,
    la.name                AS local_authority_name,
    COUNT(DISTINCT a.user_id) AS users
FROM user_address AS a
JOIN dim_local_authority AS la ON la.code = a.local_authority_code
WHERE a.valid_from <= :as_of
  AND (a.valid_to IS NULL OR a.valid_to > :as_of)
GROUP BY a.local_authority_code, la.name
ORDER BY users DESC, local_authority_code
