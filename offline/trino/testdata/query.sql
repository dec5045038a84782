-- columns probe
SELECT *
FROM (
SELECT user_id, ts, created, clicks, spend, name, tags, active, payload, last_seen
FROM hive.web.activity
) AS "quiver_source"
LIMIT 0

-- read, parameters: start (inclusive), end (exclusive)
SELECT "user_id", "ts", "created", "clicks", "spend", "name", "tags", "active", "payload", "last_seen"
FROM (
SELECT user_id, ts, created, clicks, spend, name, tags, active, payload, last_seen
FROM hive.web.activity
) AS "quiver_source"
WHERE "ts" >= ? AND "ts" < ?
