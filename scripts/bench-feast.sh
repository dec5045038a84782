#!/usr/bin/env bash
# Feast's Python SDK and Quiver on the same data, in one run (issue 26): a Feast repository
# with one feature view of 9 features over USERS users × ROWS_PER_USER rows (Parquet), its
# import into Quiver (quiver import feast), then
#   - materialization into each one's embedded online store (Feast: sqlite; Quiver: sqlite://);
#   - historical retrieval for ENTITY_ROWS entity rows: Feast's get_historical_features().to_df()
#     (file offline store, dask), and `quiver dataset create` (a written, verified snapshot);
#   - online latency, 1 and 100 entities a call: Feast's FeatureStore.get_online_features in
#     process (its Python SDK), and Quiver through its Go gRPC client (internal/cmd/loadgen,
#     one call in flight) against `quiver serve` (the Python client comes later), plus one
#     `quiver get-online` command for scale.
# Feast and quiver serve run on CPU $SERVER_CPU (0), the load generator on $LOAD_CPU (1).
# Results go to docs/BENCHMARKS.md by hand.
#
#   scripts/bench-feast.sh                                   # 100k users, 1M entity rows
#   USERS=20000 ENTITY_ROWS=100000 CALLS=500 scripts/bench-feast.sh   # a quick run
set -euo pipefail
cd "$(dirname "$0")/.."
export USERS=${USERS:-100000} ROWS_PER_USER=${ROWS_PER_USER:-5} ENTITY_ROWS=${ENTITY_ROWS:-1000000} CALLS=${CALLS:-2000}
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
venv=$(./scripts/feast.sh)
py="$venv/bin/python"
dir=$(mktemp -d)
serve_pid=""
trap '[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
mkdir -p "$dir/bin"
go build -o "$dir/bin/quiver" ./cmd/quiver
go build -o "$dir/loadgen" ./internal/cmd/loadgen
q="$dir/bin/quiver"
export FEAST_USAGE=False PYTHONWARNINGS=ignore PATH="$venv/bin:$PATH"

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, feast $("$py" -c 'import feast; print(feast.__version__)'), $(go version | cut -d' ' -f3), load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" scripts/feast/bench_feast.py data "$dir"
"$py" scripts/feast/bench_feast.py requests "$dir"
echo "## Feast $( "$py" -c 'import feast; print(feast.__version__)') Python SDK, pinned to CPU $server_cpu"
taskset -c "$server_cpu" "$py" scripts/feast/bench_feast.py feast "$dir" 2> "$dir/feast.log" | grep '^{' || { tail -30 "$dir/feast.log"; exit 1; }

echo "## Quiver, pinned to CPU $server_cpu"
secs() { local s e; s=$(date +%s.%N); "$@" >"$dir/out.log" 2>&1 || { cat "$dir/out.log"; exit 1; }; e=$(date +%s.%N); printf '%.3f' "$(echo "$e - $s" | bc)"; }
echo "{\"what\": \"quiver_import\", \"seconds\": $(secs "$q" import feast "$dir/feature_repo" --out "$dir/qrepo")}"
"$q" -C "$dir/qrepo" apply >/dev/null
start=$(date -u -d '2026-12-01 - 31 days' +%FT%TZ)
t=$(secs taskset -c "$server_cpu" "$q" -C "$dir/qrepo" materialize --start "$start" --end 2026-12-01T00:00:01Z)
echo "{\"what\": \"quiver_materialize\", \"seconds\": $t, \"users\": $USERS}"
s=$(date +%s.%N)
taskset -c "$server_cpu" /usr/bin/time -f '%M' -o "$dir/rss" "$q" -C "$dir/qrepo" dataset create bench --service svc --entities "$dir/entities.parquet" >"$dir/out.log" 2>&1 || { cat "$dir/out.log"; exit 1; }
e=$(date +%s.%N)
t=$(printf '%.3f' "$(echo "$e - $s" | bc)")
echo "{\"what\": \"quiver_dataset_create\", \"entity_rows\": $ENTITY_ROWS, \"seconds\": $t, \"rows_per_s\": $(echo "$ENTITY_ROWS / $t" | bc), \"max_rss_mib\": $(( $(cat "$dir/rss") / 1024 ))}"

port=$((20000 + RANDOM % 20000))
taskset -c "$server_cpu" "$q" -C "$dir/qrepo" serve --addr "127.0.0.1:$port" --metrics-addr "" >"$dir/serve.log" 2>&1 &
serve_pid=$!
"$q" health --server "127.0.0.1:$port" --wait 30s >/dev/null
for b in 1 100; do
	n=$CALLS
	[ "$b" = 100 ] && n=$(( CALLS / 100 > 50 ? CALLS / 100 : 50 ))
	echo "{\"what\": \"quiver_online\", \"entities\": $b, \"client\": \"go grpc (loadgen -c 1)\", \"result\": $(taskset -c "$load_cpu" "$dir/loadgen" -addr "127.0.0.1:$port" -data "$dir/get$b.json" -c 1 -n "$n" -connections 1 -warmup 50)}"
done
t=$(secs "$q" get-online --server "127.0.0.1:$port" --service svc --entity user_id=42)
echo "{\"what\": \"quiver_get_online_command\", \"entities\": 1, \"seconds\": $t}"
