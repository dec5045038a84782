#!/usr/bin/env bash
# Windowed-aggregation benchmarks (docs/BENCHMARKS.md), in one run:
#  1. dataset create: EVENTS events over USERS users (30 days) and ENTITIES entity rows, a view
#     of 3 windows x 4 functions (sum, count, max, mean of amount over 1h, 1d, 7d), built by
#     `quiver dataset create` (in-process engine, Parquet snapshot written) from the Iceberg
#     table `quiver materialize` wrote; beside DuckDB's window query (RANGE BETWEEN INTERVAL ...
#     PRECEDING AND CURRENT ROW) over the same events and entity Parquet files, written to
#     Parquet too. Both get the same files; the materialization is timed separately.
#  2. online: reading one entity of a 12-aggregation view from a throwaway redis-server (Go
#     benchmark BenchmarkReadAggregations), beside redis-benchmark's HMGET of a value the size
#     of that view's tiles.
#
#   EVENTS=10000000 ENTITIES=2000000 USERS=200000 scripts/bench-aggregations.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
EVENTS=${EVENTS:-10000000}
ENTITIES=${ENTITIES:-2000000}
USERS=${USERS:-200000}
BENCHTIME=${BENCHTIME:-3s}
work=${WORK:-$(mktemp -d)}
cleanup() { [[ -n "${redis_pid:-}" ]] && kill "$redis_pid" 2>/dev/null; [[ -z "${WORK:-}" ]] && rm -rf "$work"; true; }
trap cleanup EXIT
duck() { node "$root/scripts/duckdb/query.mjs" "$@"; }
[[ -d "$root/scripts/duckdb/node_modules/@duckdb/node-api" ]] || npm ci --prefix "$root/scripts/duckdb" --no-audit --no-fund --loglevel=error
(cd "$root" && go build -o "$work/quiver" ./cmd/quiver)
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); EVENTS=$EVENTS ENTITIES=$ENTITIES USERS=$USERS"

repo="$work/repo"
rm -rf "$repo" && mkdir -p "$repo/features" "$repo/data"
events="$repo/data/events.parquet" ents="$repo/data/entities.parquet"
cat >"$work/gen.sql" <<SQL
COPY (SELECT (hash(i) % $USERS)::BIGINT AS user_id,
             TIMESTAMPTZ '2026-10-01 00:00:00+00' + to_microseconds((hash(i * 7 + 1) % 2592000000000)::BIGINT) AS event_ts,
             TIMESTAMPTZ '2026-10-01 00:00:05+00' + to_microseconds((hash(i * 7 + 1) % 2592000000000)::BIGINT) AS created_ts,
             CASE WHEN i % 20 = 0 THEN NULL ELSE (hash(i * 13) % 100000) / 100.0 END::DOUBLE AS amount
      FROM range($EVENTS) t(i)) TO '$events' (FORMAT parquet, ROW_GROUP_SIZE 131072);
COPY (SELECT (hash(i + 99) % ($USERS + $USERS / 10))::BIGINT AS user_id,
             TIMESTAMPTZ '2026-10-08 00:00:00+00' + to_microseconds((hash(i * 3 + 5) % 1987200000000)::BIGINT) AS event_timestamp,
             (i % 2)::BIGINT AS label
      FROM range($ENTITIES) t(i)) TO '$ents' (FORMAT parquet);
SELECT 1;
SQL
duck "$work/gen.sql" >/dev/null

printf 'project: bench\ndefinitions: [features]\n' >"$repo/quiver.yaml"
cat >"$repo/features/aggs.yaml" <<YAML
entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
sources:
  - name: txns
    parquet: { path: data/events.parquet }
    timestamp_field: event_ts
    created_timestamp_field: created_ts
feature_views:
  - name: txn_aggs
    entities: [user]
    source: txns
    online: false
    columns: [{ name: amount, type: float64 }]
    aggregations:
      - { column: amount, function: sum, windows: [1h, 1d, 7d] }
      - { column: amount, function: count, windows: [1h, 1d, 7d] }
      - { column: amount, function: max, windows: [1h, 1d, 7d] }
      - { column: amount, function: mean, windows: [1h, 1d, 7d] }
feature_services:
  - name: aggs
    features: [txn_aggs:*]
YAML
"$work/quiver" -C "$repo" apply >/dev/null
echo "== quiver materialize (raw events into Iceberg; not part of the comparison)"
/usr/bin/time -f '%e s wall, %M KiB max RSS' "$work/quiver" -C "$repo" materialize --start 2026-09-01 --end 2026-12-01 2>&1 | tail -2

echo "== quiver dataset create: $ENTITIES entity rows x 12 aggregation features over $EVENTS events"
/usr/bin/time -f '%e s wall, %M KiB max RSS' "$work/quiver" -C "$repo" dataset create bench --service aggs --entities "$ents" 2>&1 | grep -E 'Created|wall'

echo "== DuckDB window query over the same Parquet files, written to Parquet"
cols=""
for w in 1h:3599999999 1d:86399999999 7d:604799999999; do
	for f in sum count max mean; do
		e=$f && [[ $f == mean ]] && e=avg
		cols+="    $e(amount) OVER (PARTITION BY user_id ORDER BY t RANGE BETWEEN INTERVAL '${w##*:} microseconds' PRECEDING AND CURRENT ROW) AS amount_${f}_${w%%:*},"$'\n'
	done
done
cat >"$work/window.sql" <<SQL
SET preserve_insertion_order = false;
CREATE TEMP VIEW u AS
  SELECT user_id, event_ts AS t, amount, NULL::BIGINT AS label, FALSE AS is_ent FROM read_parquet('$events')
  UNION ALL
  SELECT user_id, event_timestamp, NULL, label, TRUE FROM read_parquet('$ents');
COPY (
  SELECT user_id, t AS event_timestamp, label,
$cols    0 AS _end
  FROM u QUALIFY is_ent
) TO '$work/duckdb-out.parquet' (FORMAT parquet);
SQL
/usr/bin/time -f '%e s wall, %M KiB max RSS' node "$root/scripts/duckdb/query.mjs" "$work/window.sql" --quiet 2>&1

echo "== online: one entity of a 12-aggregation view from Redis"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
out=$(cd "$root" && QUIVER_BENCH_REDIS="127.0.0.1:$port" go test -run '^$' -bench ReadAggregations -benchtime "$BENCHTIME" ./online/redis/)
grep -E '^Benchmark' <<<"$out"
size=$(grep -oE '[0-9]+ tile-bytes' <<<"$out" | head -1 | cut -d' ' -f1)
value=$(head -c "${size:-3300}" /dev/zero | tr '\0' v)
redis-cli -p "$port" hset bench:entity txn_aggs "$value" >/dev/null
for c in 1 50; do
	echo -n "redis-benchmark HMGET 1 field of ${size:-3300} bytes, -c $c: "
	redis-benchmark -p "$port" -c "$c" -n 200000 --csv HMGET bench:entity txn_aggs | tail -1
done
