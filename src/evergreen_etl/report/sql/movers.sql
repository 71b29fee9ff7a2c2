-- Moves between local authorities from :from_time to :to_time, per authority.
-- A mover is a user with an address valid at both times whose authority differs between
-- them (moves in between that end where they started do not count; joiners and leavers are
-- not movers). inflow: movers who ended here; outflow: movers who started here;
-- net = inflow - outflow. UNKNOWN is kept as an authority, so that for every authority the
-- change in users between the two times is net + joiners - leavers.
-- :boundaries as in users_by_local_authority.sql: under 'current', a move between two
-- districts that merged is no move.
WITH authority AS (
    {{ authority }}
),
at_start AS (
    SELECT a.user_id, la.code, la.name
    FROM user_address AS a
    {{ relocation }}
    JOIN authority AS la
      ON la.supplied_code = COALESCE(r.local_authority_code, a.local_authority_code)
    WHERE a.valid_from <= :from_time
      AND (a.valid_to IS NULL OR a.valid_to > :from_time)
),
at_end AS (
    SELECT a.user_id, la.code, la.name
    FROM user_address AS a
    {{ relocation }}
    JOIN authority AS la
      ON la.supplied_code = COALESCE(r.local_authority_code, a.local_authority_code)
    WHERE a.valid_from <= :to_time
      AND (a.valid_to IS NULL OR a.valid_to > :to_time)
),
moves AS (
    SELECT s.code AS from_code, s.name AS from_name, e.code AS to_code, e.name AS to_name
    FROM at_start AS s
    JOIN at_end AS e ON e.user_id = s.user_id
    WHERE s.code <> e.code
),
flows AS (
    SELECT to_code AS code, to_name AS name, 1 AS inflow, 0 AS outflow FROM moves
    UNION ALL
    SELECT from_code, from_name, 0, 1 FROM moves
)
SELECT code AS local_authority_code,
       name AS local_authority_name,
       SUM(inflow) AS inflow,
       SUM(outflow) AS outflow,
       SUM(inflow) - SUM(outflow) AS net
FROM flows
GROUP BY code, name
ORDER BY local_authority_code
