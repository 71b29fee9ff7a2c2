-- The cell key method's raw material: users at :as_of in the finest cells every report at one
-- time is made of (supplied authority x sex x age band x postcode status x terminated), with
-- the sum of their record keys. A published cell's count and key are the sums over the fine
-- cells it holds (its key modulo 256); see privacy/ckm.py. Each period is where lookup
-- version :lookup_version puts it (NULL: as recorded), as in the reports (fragment relocation).
WITH located AS (
    SELECT COALESCE(r.local_authority_code, a.local_authority_code) AS supplied_code,
           u.sex,
           {{ age_band }}                                        AS age_band,
           COALESCE(r.location_status, a.location_status)        AS location_status,
           CASE WHEN p.terminated IS NOT NULL THEN 1 ELSE 0 END  AS terminated,
           COALESCE(u.record_key, 0)                             AS record_key
    FROM user_address AS a
    {{ relocation }}
    JOIN dim_user AS u ON u.user_id = a.user_id
    LEFT JOIN dim_postcode AS p ON a.postcode_kind = 'full' AND p.postcode = a.postcode
    WHERE a.valid_from <= :as_of
      AND (a.valid_to IS NULL OR a.valid_to > :as_of)
)
SELECT supplied_code, sex, age_band, location_status, terminated,
       COUNT(*) AS users, SUM(record_key) AS key_sum
FROM located
GROUP BY supplied_code, sex, age_band, location_status, terminated
