-- The centre of each postcode district in the lookup: public ONS data, drawn faintly as
-- the map's backdrop so that the users' cells have a recognisable country around them.
SELECT outward, AVG(latitude) AS latitude, AVG(longitude) AS longitude
FROM dim_postcode
WHERE latitude BETWEEN 49.0 AND 61.5
  AND longitude BETWEEN -9.0 AND 2.5
GROUP BY outward
ORDER BY outward
