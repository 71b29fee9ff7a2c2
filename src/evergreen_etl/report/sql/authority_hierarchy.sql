-- Where every authority of the lookup sits, under both boundary sets: its region and country
-- as supplied, and its authority, region and country today (see users_by_region.sql and
-- users_by_country.sql, whose codes these are). Disclosure control reads it to know which
-- published counts add up to which: a region is the sum of its authorities, a country of its
-- regions, a district of today the sum of the districts it took over.
SELECT supplied.code                                                      AS supplied_code,
       COALESCE(supplied.region_code, supplied.country_code, 'UNKNOWN')   AS supplied_region,
       COALESCE(supplied.country_code, 'UNKNOWN')                         AS supplied_country,
       COALESCE(today.code, supplied.code)                                AS current_code,
       COALESCE(today.region_code, today.country_code,
                supplied.region_code, supplied.country_code, 'UNKNOWN')  AS current_region,
       COALESCE(today.country_code, supplied.country_code, 'UNKNOWN')    AS current_country
FROM dim_local_authority AS supplied
LEFT JOIN dim_local_authority AS today ON today.code = supplied.current_code
ORDER BY supplied.code
