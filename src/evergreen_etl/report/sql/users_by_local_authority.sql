-- Distinct users by local authority at :as_of.
-- A user counts where their address row was valid at :as_of: valid_from <= :as_of < valid_to
-- (an open row has valid_to NULL). Users with no, invalid or unmatched postcodes count under
-- the UNKNOWN member, so the rows add up to the number of distinct users at :as_of.
-- COUNT(*) counts distinct users: a user's periods never overlap (the load only closes and
-- opens rows at one instant, and one current row per user is a unique index), so at most one
-- row per user is valid at any time; COUNT(DISTINCT) would sort a million ids to find that.
-- :boundaries is 'lookup' or 'recorded' (the lookup's own authority codes) or 'current'
-- (retired codes mapped to the authority that holds their area today): the shared fragment
-- 'authority' (warehouse/sql/fragments.sql) maps each supplied code.
-- :lookup_version (NULL on the recorded basis) is the lookup version whose re-located periods
-- (address_relocation) count where that version puts them instead of where they were recorded.
WITH authority AS (
    {{ authority }}
),
-- Rows are counted per supplied code first (the shared fragment 'located_counts'), so that
-- the join and the grouping by name see a few hundred counts instead of a million rows.
counts AS (
    {{ located_counts }}
)
{{ users_by_authority }}
