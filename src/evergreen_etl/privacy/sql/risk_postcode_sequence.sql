-- k-anonymity over each user's sequence of postcodes (as kept), oldest first, up to the as-of
-- time, for the users whose address was valid then: someone who knows where a person lived,
-- in order, looks for that sequence. Positions are numbered by a window function and laid
-- out as columns p1..pN (the caller writes /* positions */ for N = the longest history), so
-- two users are in one class when their sequences are equal.
WITH current_users AS (
    SELECT a.user_id
    FROM user_address AS a
    WHERE a.valid_from <= :as_of
      AND (a.valid_to IS NULL OR a.valid_to > :as_of)
),
ordered AS (
    SELECT a.user_id,
           COALESCE(a.postcode, 'none') AS postcode,
           ROW_NUMBER() OVER (PARTITION BY a.user_id ORDER BY a.valid_from) AS position
    FROM user_address AS a
    JOIN current_users AS c ON c.user_id = a.user_id
    WHERE a.valid_from <= :as_of
),
sequences AS (
    SELECT user_id, COUNT(*) AS length /* positions */
    FROM ordered
    GROUP BY user_id
),
classes AS (
    SELECT COUNT(*) AS k
    FROM sequences
    GROUP BY length /* position_columns */
)
SELECT COALESCE(SUM(k), 0) AS users,
       COUNT(*) AS classes,
       MIN(k) AS smallest_k,
       COALESCE(SUM(CASE WHEN k < :threshold THEN k ELSE 0 END), 0) AS users_below_threshold,
       COALESCE(SUM(CASE WHEN k = 1 THEN 1 ELSE 0 END), 0) AS unique_users
FROM classes
