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
-- Users are counted per supplied code first, so that the join and the grouping by name see a
-- few hundred counts instead of a million rows: the counts placeholder is the shared fragment
-- 'located_counts' (from the address history) or, when they hold the knowledge asked for,
-- 'snapshot_counts' (from the periodic-snapshot facts: the latest snapshot loaded at or before
-- :as_of, whatever the size of the history; report/catalog.py ReportSpec.facts).
counts AS (
    {{ counts }}
)
{{ users_by_authority }}
