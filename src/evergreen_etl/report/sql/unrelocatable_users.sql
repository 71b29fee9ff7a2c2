-- Users at :as_of whose address period is stored at a precision that dropped the full
-- postcode: they keep the authority recorded when they were loaded, on every basis. Run only
-- when the warehouse has ever stored postcodes at a coarser precision (else it is 0).
SELECT COUNT(*) AS users
FROM user_address AS a
WHERE a.valid_from <= :as_of
  AND (a.valid_to IS NULL OR a.valid_to > :as_of)
  AND a.postcode_kind IN ('full', 'partial')
  AND NOT {{ relocatable }}
