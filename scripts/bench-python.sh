#!/usr/bin/env bash
# get_online_features latency from the Python client against the Go client (internal/cmd/loadgen)
# on one `quiver serve`: p50/p99 at concurrency 1 (one call at a time, one connection) for 1 and
# 100 entities of the churn_v1 service (1 view x 3 features) of a `quiver init` repo, online
# store a throwaway redis-server. The server is pinned to CPU $SERVER_CPU (default 0); Redis and
# both clients to $LOAD_CPU (default 1). ROUNDS (default 2) alternates Go and Python rounds.
# Then, in the same run, a dataset of FLIGHT_ROWS entity rows (default 5,000,000; 0: none)
# built through create_dataset and read FLIGHT_ROUNDS times (default 3) over Arrow Flight
# (get_dataset) and directly from its Parquet files with pyarrow, alternately.
# Prints tables; see docs/BENCHMARKS.md.
#
#   scripts/bench-python.sh
#   CALLS=20000 ROUNDS=3 scripts/bench-python.sh
#   CALLS=0 FLIGHT_ROWS=5000000 scripts/bench-python.sh     # the Flight part only
set -euo pipefail
cd "$(dirname "$0")/.."
# quiver serve checks at start that the ONNX Runtime its models need can be loaded.
export QUIVER_ONNXRUNTIME_LIB=${QUIVER_ONNXRUNTIME_LIB:-$(./scripts/onnxruntime.sh)}
calls=${CALLS:-5000}
calls100=${CALLS100:-$((calls / 2))}
warmup=${WARMUP:-500}
rounds=${ROUNDS:-2}
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
venv=$(./scripts/python-venv.sh)
rm -rf python/build
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall ./python

dir=$(mktemp -d)
redis_pid="" serve_pid=""
cleanup() {
	for p in $serve_pid $redis_pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
go build -o "$dir/quiver" ./cmd/quiver
go build -o "$dir/loadgen" ./internal/cmd/loadgen

rport=$((20000 + RANDOM % 20000))
taskset -c "$load_cpu" redis-server --port "$rport" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
	--daemonize no --logfile "$dir/redis.log" &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
export QUIVER_ONLINE="redis://127.0.0.1:$rport/0"
"$dir/quiver" init "$dir/shop" --project shop >/dev/null
"$dir/quiver" -C "$dir/shop" apply >/dev/null
"$dir/quiver" -C "$dir/shop" materialize --start "$(date -u -d '31 days ago' +%F)" --end "$(date -u -d tomorrow +%F)" >/dev/null

port=$((20000 + RANDOM % 20000))
(cd "$dir/shop" && exec taskset -c "$server_cpu" "$dir/quiver" serve --addr "127.0.0.1:$port" --metrics-addr "" \
	--preload-models=false --push=false >"$dir/serve.log" 2>&1) &
serve_pid=$!
"$dir/quiver" health --server "127.0.0.1:$port" --wait 30s >/dev/null || { cat "$dir/serve.log"; exit 1; }
"$venv/bin/python" scripts/bench-python-client.py data "$dir"

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg); $("$venv/bin/python" -c 'import sys, grpc, google.protobuf as p; print(f"Python {sys.version.split()[0]}, grpcio {grpc.__version__}, protobuf {p.__version__}")'), $(go version | cut -d' ' -f3)"
echo "# quiver serve on CPU $server_cpu; redis and the clients on CPU $load_cpu; concurrency 1, one connection; churn_v1 (3 features)"
results=$dir/results.jsonl
touch "$results"
[ "$calls" = 0 ] && rounds=0
for r in $(seq "$rounds"); do
	for n in 1 100; do
		c=$calls
		[ "$n" = 100 ] && c=$calls100
		taskset -c "$load_cpu" "$dir/loadgen" -addr "127.0.0.1:$port" -method GetOnlineFeatures -data "$dir/get$n.json" \
			-c 1 -connections 1 -n "$c" -warmup "$warmup" |
			"$venv/bin/python" -c "import json, sys; r = json.load(sys.stdin); assert r['errors'] == 0, r; print(json.dumps({'client': 'go (loadgen)', 'entities': $n, 'count': r['count'], 'rps': round(r['rps']), 'p50_us': r['p50_us'], 'p99_us': r['p99_us'], 'round': $r}))" >>"$results"
		taskset -c "$load_cpu" "$venv/bin/python" scripts/bench-python-client.py run "127.0.0.1:$port" "$n" "$c" "$warmup" |
			sed "s/}\$/, \"round\": $r}/" >>"$results"
	done
done
"$venv/bin/python" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
if not rows:
    sys.exit(0)
print(f"| round | entities | client | calls | p50 µs | p99 µs | calls/s |")
print(f"| ---: | ---: | --- | ---: | ---: | ---: | ---: |")
for r in sorted(rows, key=lambda r: (r["entities"], r["round"])):
    print(f"| {r['round']} | {r['entities']} | {r['client']} | {r['count']} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | {r['rps']} |")
PY

flight_rows=${FLIGHT_ROWS:-5000000}
if [ "$flight_rows" != 0 ]; then
	echo
	echo "# Arrow Flight: a dataset of $flight_rows rows (churn_v1); quiver serve on CPU $server_cpu, the Python reader on CPU $load_cpu"
	ref=$("$venv/bin/python" scripts/bench-python-client.py flight-create "127.0.0.1:$port" "$flight_rows")
	location=$("$dir/quiver" -C "$dir/shop" -o json dataset show "$ref" | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["location"])')
	warehouse=$dir/shop/.quiver/warehouse
	taskset -c "$load_cpu" "$venv/bin/python" scripts/bench-python-client.py flight-read "127.0.0.1:$port" "$ref" "$warehouse/$location" "${FLIGHT_ROUNDS:-3}" >"$dir/flight.jsonl"
	"$venv/bin/python" - "$dir/flight.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r0 = rows[0]
print(f"{r0['rows']:,} rows in {r0['parts']} Parquet part(s): {r0['parquet_mb']} MB of Parquet, {r0['arrow_mb']} MB of Arrow")
print("| round | read | seconds | rows/s | Arrow MB/s |")
print("| ---: | --- | ---: | ---: | ---: |")
for r in rows:
    print(f"| {r['round']} | {r['how']} | {r['seconds']:.2f} | {r['rows_per_s']:,} | {r['arrow_mb_per_s']:,.0f} |")
PY
fi
