WITH "quiver_entities" AS (
  SELECT e0.*, ROW_NUMBER() OVER (ORDER BY e0."user_id", e0."event_timestamp") AS "quiver_row"
  FROM (
SELECT * FROM labels
  ) AS e0
),
"quiver_v0" AS (
  SELECT * FROM (
    SELECT e."quiver_row", f."clicks_7d",
      ROW_NUMBER() OVER (PARTITION BY e."quiver_row" ORDER BY f."event_ts" DESC, f."created_ts" DESC NULLS LAST) AS "quiver_rank"
    FROM "quiver_entities" e
    JOIN (SELECT "user_id", "event_ts", "created_ts", "clicks_7d" FROM "quiver"."user_stats") AS f
      ON f."user_id" = e."user_id"
     AND f."event_ts" <= e."event_timestamp"
     AND f."event_ts" >= e."event_timestamp" - INTERVAL '43200' SECOND
     AND (f."created_ts" IS NULL OR f."created_ts" <= e."event_timestamp")
  ) AS ranked
  WHERE "quiver_rank" = 1
)
SELECT e."user_id", e."event_timestamp", v0."clicks_7d" AS "user_stats__clicks_7d"
FROM "quiver_entities" e
LEFT JOIN "quiver_v0" v0 ON v0."quiver_row" = e."quiver_row"
ORDER BY e."quiver_row"
