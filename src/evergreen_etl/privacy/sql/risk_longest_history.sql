-- The most address rows any user has up to the as-of time: how many positions the sequence
-- measure (risk_postcode_sequence.sql) lays out.
SELECT COALESCE(MAX(rows_per_user), 0) AS longest
FROM (
    SELECT COUNT(*) AS rows_per_user
    FROM user_address
    WHERE valid_from <= :as_of
    GROUP BY user_id
) AS histories
