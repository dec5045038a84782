-- columns probe
SELECT *
FROM "cat"."sch"."""odd"""
LIMIT 0

-- read, parameters: start (inclusive), end (exclusive)
SELECT "we""ird key", "Shop", "event time", "select"
FROM "cat"."sch"."""odd"""
WHERE "event time" >= ? AND "event time" < ?
