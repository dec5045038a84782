-- columns probe
SELECT *
FROM "iceberg"."features"."user_activity"
LIMIT 0

-- read, parameters: start (inclusive), end (exclusive)
SELECT "user_id", "ts", "clicks", "spend", "name", "tags", "active", "payload", "last_seen"
FROM "iceberg"."features"."user_activity"
WHERE "ts" >= ? AND "ts" < ?
