-- The loads a publication at :as_of is made of (for its manifest): succeeded runs up to
-- :as_of, with the checksum of the postcode lookup each loaded (the lookup's version).
SELECT run_id, as_of, postcodes_sha256
FROM etl_run
WHERE status = 'succeeded'
  AND as_of <= :as_of
ORDER BY as_of, run_id
