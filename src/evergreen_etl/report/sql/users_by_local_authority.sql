-- Distinct users by local authority at :as_of.
-- A user counts where their address row was valid at :as_of: valid_from <= :as_of < valid_to
-- (an open row has valid_to NULL). Users with no, invalid or unmatched postcodes count under
-- the UNKNOWN member, so the rows add up to the number of distinct users at :as_of.
-- COUNT(*) counts distinct users: a user's periods never overlap (the load only closes and
-- opens rows at one instant, and one current row per user is a unique index), so at most one
-- row per user is valid at any time; COUNT(DISTINCT) would sort a million ids to find that.
-- :boundaries is 'supplied' (the lookup's own authority codes) or 'current' (abolished codes
-- mapped to the authority that holds their area today): the shared fragment 'authority'
-- (warehouse/sql/fragments.sql) maps each supplied code.
WITH authority AS (
    {{ authority }}
),
-- Rows are counted per supplied code first, so that the join and the grouping by name see a
-- few hundred counts instead of a million rows.
counts AS (
    SELECT a.local_authority_code AS supplied_code, COUNT(*) AS users
    FROM user_address AS a
    WHERE a.valid_from <= :as_of
      AND (a.valid_to IS NULL OR a.valid_to > :as_of)
    GROUP BY a.local_authority_code
)
SELECT
    la.code AS local_authority_code,
    la.name AS local_authority_name,
    SUM(c.users) AS users
FROM counts AS c
JOIN authority AS la ON la.supplied_code = c.supplied_code
GROUP BY la.code, la.name
ORDER BY users DESC, local_authority_code
