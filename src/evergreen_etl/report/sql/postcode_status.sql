-- Distinct users at :as_of by how their postcode is located (location_status: full_matched,
-- partial_resolved, partial_unresolved, unmatched, no_authority, invalid, missing) with the
-- newest lookup version (:lookup_version re-located the period, else as it was located when
-- loaded), and whether a full postcode is terminated in the loaded lookup. Every user at
-- :as_of is in exactly one row, so the rows add up to the headline total.
SELECT COALESCE(r.location_status, a.location_status) AS location_status,
       CASE WHEN p.terminated IS NOT NULL THEN 1 ELSE 0 END AS terminated,
       COUNT(DISTINCT a.user_id) AS users
FROM user_address AS a
{{ relocation }}
LEFT JOIN dim_postcode AS p ON a.postcode_kind = 'full' AND p.postcode = a.postcode
WHERE a.valid_from <= :as_of
  AND (a.valid_to IS NULL OR a.valid_to > :as_of)
GROUP BY COALESCE(r.location_status, a.location_status),
         CASE WHEN p.terminated IS NOT NULL THEN 1 ELSE 0 END
ORDER BY users DESC, location_status, terminated
