WITH "quiver_entities" AS (
  SELECT e0.*, ROW_NUMBER() OVER (ORDER BY e0."user_id", e0."event_timestamp", e0."label") AS "quiver_row"
  FROM (
SELECT user_id, event_timestamp, label FROM labels
  ) AS e0
),
"quiver_v0" AS (
  SELECT e."quiver_row",
    CAST(SUM(f."amount") FILTER (WHERE f."event_ts" > e."event_timestamp" - INTERVAL '3600' SECOND) AS DOUBLE) AS "amount_sum_1h",
    COUNT(f."amount") FILTER (WHERE f."event_ts" > e."event_timestamp" - INTERVAL '86400' SECOND) AS "amount_count_1d",
    AVG(CAST(f."amount" AS DOUBLE)) FILTER (WHERE f."event_ts" > e."event_timestamp" - INTERVAL '86400' SECOND) AS "amount_mean_1d",
    MIN(f."amount") FILTER (WHERE f."event_ts" > e."event_timestamp" - INTERVAL '604800' SECOND) AS "amount_min_7d",
    CASE WHEN BOOL_OR(is_nan(f."amount")) FILTER (WHERE f."event_ts" > e."event_timestamp" - INTERVAL '604800' SECOND) THEN MAX(f."amount") FILTER (WHERE f."event_ts" > e."event_timestamp" - INTERVAL '604800' SECOND AND is_nan(f."amount")) ELSE MAX(f."amount") FILTER (WHERE f."event_ts" > e."event_timestamp" - INTERVAL '604800' SECOND) END AS "amount_max_7d",
    (ARRAY_AGG(f."amount" ORDER BY f."event_ts" DESC, f."created_ts" DESC NULLS LAST) FILTER (WHERE f."event_ts" > e."event_timestamp" - INTERVAL '86400' SECOND AND f."amount" IS NOT NULL))[1] AS "amount_last_1d",
    CAST(SUM(f."qty") FILTER (WHERE f."event_ts" > e."event_timestamp" - INTERVAL '604800' SECOND) AS BIGINT) AS "qty_sum_7d",
    COUNT(DISTINCT f."merchant") FILTER (WHERE f."event_ts" > e."event_timestamp" - INTERVAL '86400' SECOND) AS "merchant_count_distinct_1d"
  FROM "quiver_entities" e
  JOIN (SELECT "user_id", "event_ts", "created_ts", "amount", "qty", "merchant" FROM "quiver"."txn_aggs" FOR VERSION AS OF 42) AS f
    ON f."user_id" = e."user_id"
   AND f."event_ts" <= e."event_timestamp"
   AND f."event_ts" > e."event_timestamp" - INTERVAL '604800' SECOND
   AND (f."created_ts" IS NULL OR f."created_ts" <= e."event_timestamp")
  GROUP BY e."quiver_row"
)
SELECT e."user_id", e."event_timestamp", e."label", v0."amount_sum_1h" AS "amount_sum_1h", COALESCE(v0."amount_count_1d", 0) AS "amount_count_1d", v0."amount_mean_1d" AS "amount_mean_1d", v0."amount_min_7d" AS "amount_min_7d", v0."amount_max_7d" AS "amount_max_7d", v0."amount_last_1d" AS "amount_last_1d", v0."qty_sum_7d" AS "qty_sum_7d", COALESCE(v0."merchant_count_distinct_1d", 0) AS "merchant_count_distinct_1d"
FROM "quiver_entities" e
LEFT JOIN "quiver_v0" v0 ON v0."quiver_row" = e."quiver_row"
ORDER BY e."quiver_row"
