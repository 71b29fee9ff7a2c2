-- Pieces of SQL that several queries share, each written once. A query under report/sql or
-- privacy/sql names one as {{ name }}; the package's SQL loader puts the fragment's text in
-- its place (indented to match) before the query runs, so every query reads whole here and
-- in the package's read_sql(). Each fragment begins at its "-- fragment: NAME" line.

-- fragment: authority
-- Each authority code the lookup supplies, with the authority, region and country its users
-- count under. :boundaries is 'lookup' or 'recorded' (the lookup's own codes) or 'current' (a
-- retired code mapped to the authority that holds its area today, dim_local_authority.current_code,
-- the end of its chain of successors in reference/la_successors.csv).
-- ONS regions cover England only: in Wales, Scotland and Northern Ireland the region is the
-- country, as in ONS's own region-level tables. Use it as a CTE body:
-- WITH authority AS (...) ... JOIN authority AS la ON la.supplied_code = a.local_authority_code
SELECT supplied.code                                            AS supplied_code,
       COALESCE(today.code, supplied.code)                      AS code,
       COALESCE(today.name, supplied.name)                      AS name,
       COALESCE(today.region_code, today.country_code,
                supplied.region_code, supplied.country_code)    AS region_code,
       COALESCE(today.region_name, today.country_name,
                supplied.region_name, supplied.country_name)    AS region_name,
       COALESCE(today.country_code, supplied.country_code)      AS country_code,
       COALESCE(today.country_name, supplied.country_name)      AS country_name
FROM dim_local_authority AS supplied
LEFT JOIN dim_local_authority AS today
  ON :boundaries = 'current' AND today.code = supplied.current_code

-- fragment: relocation
-- The address periods user_address AS a that lookup version :lookup_version locates elsewhere
-- than they were recorded (address_relocation, one row per such period). Joined after a:
-- COALESCE(r.local_authority_code, a.local_authority_code) is then the period's authority on
-- the lookup basis. :lookup_version is NULL on the recorded basis: no row joins.
LEFT JOIN address_relocation AS r
  ON r.version_id = :lookup_version AND r.address_id = a.address_id

-- fragment: location_code
-- The authority a postcode locates to (SPEC §4): a full postcode's from the lookup row
-- dim_postcode AS p, an outward code alone's from dim_postcode_district AS d when all its live
-- postcodes lie in one authority, else UNKNOWN (schema.UNKNOWN_AUTHORITY). The postcode's kind
-- is s.postcode_kind. The merge locates a snapshot with it, re-location the stored history.
CASE
  WHEN s.postcode_kind = 'full' AND p.local_authority_code IS NOT NULL
    THEN p.local_authority_code
  WHEN s.postcode_kind = 'partial' AND d.local_authority_code IS NOT NULL
    THEN d.local_authority_code
  ELSE 'UNKNOWN'
END

-- fragment: location_status
-- How the postcode of location_code was located (report/catalog.py LOCATION_STATUS).
CASE
  WHEN s.postcode_kind = 'full' AND p.postcode IS NULL THEN 'unmatched'
  WHEN s.postcode_kind = 'full' AND p.local_authority_code IS NULL THEN 'no_authority'
  WHEN s.postcode_kind = 'full' THEN 'full_matched'
  WHEN s.postcode_kind = 'partial' AND d.local_authority_code IS NOT NULL THEN 'partial_resolved'
  WHEN s.postcode_kind = 'partial' THEN 'partial_unresolved'
  ELSE s.postcode_kind
END

-- fragment: located_counts
-- The address periods valid at :as_of counted per authority code (supplied_code, users): each
-- period once, where lookup version :lookup_version locates it (NULL: where it was recorded).
-- A user's periods never overlap, so the counts are distinct users. The periods are counted
-- per recorded code first (a few hundred counts from the covering index), then each
-- re-located period moves from its recorded code to the lookup's: a few rows read through
-- address_relocation's key, not a second pass over every period. Use it as a CTE body; a
-- code may come out more than once, and a code's users add up with SUM(users).
SELECT a.local_authority_code AS supplied_code, COUNT(*) AS users
FROM user_address AS a
WHERE a.valid_from <= :as_of
  AND (a.valid_to IS NULL OR a.valid_to > :as_of)
GROUP BY a.local_authority_code
UNION ALL
{{ relocated_counts }}

-- fragment: relocated_counts
-- What lookup version :lookup_version changes in the counts per authority code at :as_of: +1
-- under the code it locates each re-located period in, -1 under the code the period was
-- recorded with (no rows when :lookup_version is NULL). Added to counts per recorded code
-- (from the history) it gives the counts on the lookup.
SELECT moved.code, SUM(moved.users)
FROM (
    {{ relocated_periods }}
) AS moved
WHERE moved.valid_from <= :as_of
  AND (moved.valid_to IS NULL OR moved.valid_to > :as_of)
GROUP BY moved.code

-- fragment: relocated_periods
-- The periods lookup version :lookup_version re-located, as (code, users, valid_from, valid_to):
-- +n under the code the version gives them and -n under the code they were recorded with, n
-- periods at a time. What relocated_counts and the periodic-snapshot facts of re-location sum.
-- The periods are read once and counted per (new code, recorded code, interval) first: their
-- ends are snapshot times, so a few thousand rows stand for hundreds of thousands of periods.
SELECT CASE WHEN side.sign = 1 THEN pair.new_code ELSE pair.recorded_code END AS code,
       side.sign * pair.periods AS users, pair.valid_from, pair.valid_to
FROM (
    SELECT r.local_authority_code AS new_code, a.local_authority_code AS recorded_code,
           a.valid_from, a.valid_to, COUNT(*) AS periods
    FROM address_relocation AS r
    JOIN user_address AS a ON a.address_id = r.address_id
    WHERE r.version_id = :lookup_version
    GROUP BY r.local_authority_code, a.local_authority_code, a.valid_from, a.valid_to
) AS pair
CROSS JOIN (SELECT 1 AS sign UNION ALL SELECT -1) AS side

-- fragment: snapshot_counts
-- The users at :as_of per authority code (supplied_code, users) from the periodic-snapshot
-- facts (warehouse/snapshot_facts.py): the latest snapshot loaded at or before :as_of, counted
-- by recorded code, then what lookup version :lookup_version moves (its re-location facts; no
-- rows when NULL). The latest knowledge is the rows no run has retired (under --as-known-at a
-- temporary view shows the rows as they were then). Use it as a CTE body; a code may come out
-- more than once, and a code's users add up with SUM(users).
SELECT f.local_authority_code AS supplied_code, f.users
FROM fact_snapshot_authority AS f
WHERE f.retired_run_id IS NULL
  AND f.snapshot_at = (SELECT MAX(r.as_of) FROM etl_run AS r
                       WHERE r.status = 'succeeded' AND r.as_of <= :as_of)
UNION ALL
SELECT m.local_authority_code, m.users
FROM fact_snapshot_relocation AS m
WHERE m.retired_run_id IS NULL
  AND m.version_id = :lookup_version
  AND m.snapshot_at = (SELECT MAX(r.as_of) FROM etl_run AS r
                       WHERE r.status = 'succeeded' AND r.as_of <= :as_of)

-- fragment: approximate_users
-- From a CTE counts (supplied_code, users): the users whose code reaches today's through an
-- approximate mapping (a recode with a boundary change), on the 'current' basis; 0 otherwise.
SELECT COALESCE(SUM(CASE WHEN :boundaries = 'current' AND la.current_mapping = 'approximate'
                         THEN c.users ELSE 0 END), 0) AS approximate
FROM counts AS c
JOIN dim_local_authority AS la ON la.code = c.supplied_code

-- fragment: relocatable
-- The address period user_address AS a can be located again with another lookup: its full
-- postcode is stored whole ("AB1 2CD", not the sector "AB1 2", the district "AB1" or nothing),
-- or it is an outward code alone. Other periods keep the authority they were recorded with.
((a.postcode_kind = 'full' AND a.postcode IS NOT NULL AND a.postcode LIKE '% ___')
 OR (a.postcode_kind = 'partial' AND a.postcode IS NOT NULL))

-- fragment: age_band
-- The age band of dim_user AS u in the year :as_of_year. Only the birth year is kept, so age
-- is the age reached during that year: :as_of_year - birth_year. A missing birth year, or one
-- after the as-of year, is 'unknown'. The bands are report/results.py's AGE_BANDS; the view
-- v_users_by_sex_age_band (migration 0002) applies the same rule to this year, and a test
-- holds the two equal.
CASE
  WHEN u.birth_year IS NULL OR u.birth_year > :as_of_year THEN 'unknown'
  WHEN :as_of_year - u.birth_year < 18 THEN '0-17'
  WHEN :as_of_year - u.birth_year < 30 THEN '18-29'
  WHEN :as_of_year - u.birth_year < 45 THEN '30-44'
  WHEN :as_of_year - u.birth_year < 65 THEN '45-64'
  ELSE '65+'
END

-- fragment: users_by_authority
-- The rows of users by local authority from a CTE counts (supplied_code, users) and a CTE
-- authority (the fragment above): counts per supplied code summed under the authority it
-- counts under. Use it as the query's final SELECT.
SELECT
    la.code AS local_authority_code,
    la.name AS local_authority_name,
    SUM(c.users) AS users
FROM counts AS c
JOIN authority AS la ON la.supplied_code = c.supplied_code
GROUP BY la.code, la.name
HAVING SUM(c.users) > 0
ORDER BY users DESC, local_authority_code
