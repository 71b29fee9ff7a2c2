-- Distinct users at :as_of per postcode centroid, for the map. Only users whose full postcode
-- was found in the lookup, and centroids inside the UK's extent (NSPL marks postcodes without
-- a grid reference with latitude 99.999999). The caller bins these into grid cells and
-- drops sparse cells: no centroid is ever drawn on its own.
SELECT p.latitude, p.longitude, COUNT(DISTINCT a.user_id) AS users
FROM user_address AS a
JOIN dim_postcode AS p ON p.postcode = a.postcode
WHERE a.location_status = 'full_matched'
  AND a.valid_from <= :as_of
  AND (a.valid_to IS NULL OR a.valid_to > :as_of)
  AND p.latitude BETWEEN 49.0 AND 61.5
  AND p.longitude BETWEEN -9.0 AND 2.5
GROUP BY p.latitude, p.longitude
