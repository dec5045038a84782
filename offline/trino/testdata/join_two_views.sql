WITH "quiver_entities" AS (
  SELECT e0.*, ROW_NUMBER() OVER (ORDER BY e0."user_id", e0."merchant_id", e0."event_timestamp", e0."label") AS "quiver_row"
  FROM (
SELECT user_id, merchant_id, event_timestamp, label FROM hive.ml.churn_labels
  ) AS e0
),
"quiver_v0" AS (
  SELECT * FROM (
    SELECT e."quiver_row", f."clicks_7d", f."spend_30d",
      ROW_NUMBER() OVER (PARTITION BY e."quiver_row" ORDER BY f."event_ts" DESC, f."created_ts" DESC NULLS LAST) AS "quiver_rank"
    FROM "quiver_entities" e
    JOIN (SELECT "user_id", "event_ts", "created_ts", "clicks_7d", "spend_30d" FROM "quiver"."user_stats" FOR VERSION AS OF 6860063553876728467) AS f
      ON f."user_id" = e."user_id"
     AND f."event_ts" <= e."event_timestamp"
     AND f."event_ts" >= e."event_timestamp" - INTERVAL '604800' SECOND
  ) AS ranked
  WHERE "quiver_rank" = 1
),
"quiver_v1" AS (
  SELECT * FROM (
    SELECT e."quiver_row", f."visits",
      ROW_NUMBER() OVER (PARTITION BY e."quiver_row" ORDER BY f."event_ts" DESC, f."created_ts" DESC NULLS LAST) AS "quiver_rank"
    FROM "quiver_entities" e
    JOIN (SELECT "user_id", "merchant_id", "event_ts", "created_ts", "visits" FROM "iceberg"."quiver"."user_merchant") AS f
      ON f."user_id" = e."user_id"
     AND f."merchant_id" = e."merchant_id"
     AND f."event_ts" <= e."event_timestamp"
  ) AS ranked
  WHERE "quiver_rank" = 1
)
SELECT e."user_id", e."merchant_id", e."event_timestamp", e."label", v0."clicks_7d" AS "clicks_7d", v0."spend_30d" AS "spend_30d", v1."visits" AS "visits"
FROM "quiver_entities" e
LEFT JOIN "quiver_v0" v0 ON v0."quiver_row" = e."quiver_row"
LEFT JOIN "quiver_v1" v1 ON v1."quiver_row" = e."quiver_row"
ORDER BY e."quiver_row"
