-- Distinct users by sex and age band within each local authority at :as_of (see
-- users_by_local_authority.sql for :as_of and :boundaries).
-- Only the birth year is kept, so age is the age reached during the as-of year:
-- :as_of_year - birth_year. A missing birth year, or one after the as-of year, is 'unknown'
-- (the shared fragment 'age_band' in warehouse/sql/fragments.sql).
WITH authority AS (
    {{ authority }}
),
located AS (
    SELECT a.user_id,
           la.code AS local_authority_code,
           la.name AS local_authority_name,
           u.sex,
           {{ age_band }} AS age_band
    FROM user_address AS a
    JOIN dim_user AS u ON u.user_id = a.user_id
    {{ relocation }}
    JOIN authority AS la
      ON la.supplied_code = COALESCE(r.local_authority_code, a.local_authority_code)
    WHERE a.valid_from <= :as_of
      AND (a.valid_to IS NULL OR a.valid_to > :as_of)
)
SELECT local_authority_code, local_authority_name, sex, age_band,
       COUNT(DISTINCT user_id) AS users
FROM located
GROUP BY local_authority_code, local_authority_name, sex, age_band
ORDER BY local_authority_code, sex,
         CASE age_band WHEN '0-17' THEN 1 WHEN '18-29' THEN 2 WHEN '30-44' THEN 3
                       WHEN '45-64' THEN 4 WHEN '65+' THEN 5 ELSE 6 END
