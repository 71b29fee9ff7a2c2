-- The data-quality record of each load with as_of <= :as_of, from the audit table.
-- details holds the location counts ("location": {...}) and the anonymise summary
-- ("anonymise": {"records_read": ...}); no personal data.
SELECT run_id, as_of, status, users_in_snapshot, duplicates, rejected_records,
       postcodes_loaded, details
FROM etl_run
WHERE as_of <= :as_of
ORDER BY as_of, run_id
