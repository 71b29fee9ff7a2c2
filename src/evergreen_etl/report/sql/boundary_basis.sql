-- What the caption of a report by authority at :as_of says about its boundary basis:
--   not_relocatable - users whose period is stored at a precision that dropped the full
--                     postcode: they keep the authority recorded when they were loaded, on
--                     every basis;
--   approximate     - on the 'current' basis, users whose authority reached today's code
--                     through an approximate mapping (a recode with a boundary change).
-- :boundaries and :lookup_version as in users_by_local_authority.sql.
SELECT
    COALESCE(SUM(CASE WHEN a.postcode_kind IN ('full', 'partial')
                       AND NOT {{ relocatable }} THEN 1 ELSE 0 END), 0) AS not_relocatable,
    COALESCE(SUM(CASE WHEN :boundaries = 'current' AND la.current_mapping = 'approximate'
                 THEN 1 ELSE 0 END), 0) AS approximate
FROM user_address AS a
{{ relocation }}
JOIN dim_local_authority AS la
  ON la.code = COALESCE(r.local_authority_code, a.local_authority_code)
WHERE a.valid_from <= :as_of
  AND (a.valid_to IS NULL OR a.valid_to > :as_of)
