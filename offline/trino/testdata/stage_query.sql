CREATE TABLE "quiverstage_shop"."r7_user_stats"
WITH (format = 'PARQUET')
AS
SELECT "user_id", "event_ts", "created_ts", "clicks", "spend", "name", "tags", "active", "payload", "last_seen"
FROM (
SELECT *, row_number() OVER (PARTITION BY "user_id", "event_ts", "created_ts") AS "quiver_rn"
FROM (
SELECT CAST("user_id" AS BIGINT) AS "user_id", CAST("ts" AS TIMESTAMP(6) WITH TIME ZONE) AS "event_ts", CAST("created" AS TIMESTAMP(6) WITH TIME ZONE) AS "created_ts", CAST("clicks" AS BIGINT) AS "clicks", CAST("spend" AS DOUBLE) AS "spend", CAST("name" AS VARCHAR) AS "name", CAST("tags" AS ARRAY(VARCHAR)) AS "tags", CAST("active" AS BOOLEAN) AS "active", CAST("payload" AS VARBINARY) AS "payload", CAST("last_seen" AS TIMESTAMP(6) WITH TIME ZONE) AS "last_seen"
FROM (
SELECT "user_id", "ts", "created", "clicks", "spend", "name", "tags", "active", "payload", "last_seen"
FROM (
SELECT * FROM hive.web.activity
) AS "quiver_source"
WHERE "ts" >= ? AND "ts" < ?
) AS "quiver_rows"
) AS "quiver_cast"
) AS "quiver_dedup"
WHERE "quiver_rn" = 1
