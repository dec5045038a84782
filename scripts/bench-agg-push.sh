#!/usr/bin/env bash
# Pushes into an aggregation view (events folded into tiles by one compare-and-set per entity)
# beside plain pushes (latest row per entity through the stale-write guard), in one run against
# one throwaway redis-server and one `quiver serve`: event-to-acknowledgement latency at a fixed
# event rate (an upper bound of event-to-online), Redis's and the server's CPU time per event.
# The server is pinned to CPU $SERVER_CPU (default 0); Redis and the load generator to
# $LOAD_CPU (default 1). See docs/BENCHMARKS.md ("Fresh aggregations from push").
#
#   scripts/bench-agg-push.sh
#   RATE=5000 SECONDS_LOAD=20 BATCH=50 scripts/bench-agg-push.sh
set -euo pipefail
cd "$(dirname "$0")/.."
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
rate=${RATE:-5000}
secs=${SECONDS_LOAD:-20}
batch=${BATCH:-50}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
grpc_port=$((port + 1))
metrics_port=$((port + 2))
taskset -c "$load_cpu" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
	--daemonize no --logfile "$dir/redis.log" &
pid=$!
serve_pid=
trap 'kill $serve_pid "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
go build -o "$dir/quiver" ./cmd/quiver
go build -o "$dir/benchaggpush" ./internal/cmd/benchaggpush
export QUIVER_ONLINE="redis://127.0.0.1:$port/0"
"$dir/quiver" init "$dir/shop" --project shop >/dev/null
rm "$dir/shop/features/churn.yaml" # no model: serve needs no ONNX Runtime
cat >"$dir/shop/features/live.yaml" <<YAML
sources:
  - name: live_events
    push: {}
    timestamp_field: event_ts
  - name: txn_events
    push: {}
    timestamp_field: event_ts
feature_views:
  - name: user_live
    entities: [user]
    source: live_events
    features: [{ name: clicks, type: int64 }, { name: page, type: string }]
  - name: txn_aggs
    entities: [user]
    source: txn_events
    columns: [{ name: qty, type: int64 }, { name: amount, type: float64 }, { name: merchant, type: string }]
    aggregations:
      - { column: qty, function: count, windows: [1h, 1d] }
      - { column: qty, function: sum, windows: [1h, 1d] }
      - { column: qty, function: max, windows: [1h] }
      - { column: qty, function: last, windows: [1d] }
      - { column: amount, function: mean, windows: [1h] }
      - { column: merchant, function: count_distinct, windows: [1d] }
YAML
"$dir/quiver" -C "$dir/shop" apply >/dev/null

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, $(redis-server --version | cut -d' ' -f3), $(go version | cut -d' ' -f3), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## quiver serve pinned to CPU $server_cpu (push log fsynced), redis and load generator to CPU $load_cpu; $rate events/s for ${secs}s, $batch events per request"
taskset -c "$server_cpu" "$dir/quiver" -C "$dir/shop" serve --addr "127.0.0.1:$grpc_port" --metrics-addr "127.0.0.1:$metrics_port" \
	--push-commit-interval 5s 2>"$dir/serve.log" &
serve_pid=$!
"$dir/quiver" health --server "127.0.0.1:$grpc_port" --wait 30s >/dev/null
load() { taskset -c "$load_cpu" "$dir/benchaggpush" -server "127.0.0.1:$grpc_port" -redis "127.0.0.1:$port" \
	-server-pid "$serve_pid" -metrics "127.0.0.1:$metrics_port" -rate "$rate" -seconds "$secs" -batch "$batch" "$@"; }
load -view user_live -kind plain -users 10000
load -view txn_aggs -kind agg -users 10000
load -view user_live -kind plain -users 100
load -view txn_aggs -kind agg -users 100
