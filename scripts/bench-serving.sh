#!/usr/bin/env bash
# 1-entity GetOnlineFeatures (3 views × 10 features) over gRPC and over HTTP/JSON (typed and plain) against a real
# `quiver serve` process, beside the redis-benchmark HMGET ceiling, in one run against one
# throwaway redis-server. The server is pinned to CPU $SERVER_CPU (default 0); Redis,
# redis-benchmark and the load generator to $LOAD_CPU (default 1). See docs/BENCHMARKS.md.
#
#   scripts/bench-serving.sh                 # from the repository root
#   CALLS=50000 COUNT=3 scripts/bench-serving.sh
#   BASE_QUIVER=/path/to/older/quiver scripts/bench-serving.sh   # also the gRPC path of an older build
#   BASE_QUIVER=... BASE_ALL=1 scripts/bench-serving.sh            # ... and its HTTP/JSON paths (a build that has them)
set -euo pipefail
cd "$(dirname "$0")/.."
# quiver serve checks at start that the ONNX Runtime its models need can be loaded.
export QUIVER_ONNXRUNTIME_LIB=${QUIVER_ONNXRUNTIME_LIB:-$(./scripts/onnxruntime.sh)}
calls=${CALLS:-20000}
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
taskset -c "$load_cpu" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
	--daemonize no --logfile "$dir/redis.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
go build -o "$dir/quiver" ./cmd/quiver
if [ -n "${BASE_QUIVER:-}" ]; then # an older quiver binary to compare the gRPC path against
	cp "$BASE_QUIVER" "$dir/quiver-base"
fi

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, $(redis-server --version | cut -d' ' -f3), $(go version | cut -d' ' -f3), load: $(cut -d' ' -f1-3 /proc/loadavg)"
value=$(head -c 145 /dev/zero | tr '\0' v)
redis-cli -p "$port" hset bench:entity view_0 "$value" view_1 "$value" view_2 "$value" >/dev/null
echo "## redis-benchmark (ceiling), pinned to CPU $load_cpu"
for c in 1 16; do
	echo -n "HMGET 3 fields, -c $c: "
	taskset -c "$load_cpu" redis-benchmark -p "$port" -c "$c" -n 200000 --csv HMGET bench:entity view_0 view_1 view_2 | tail -1
done
echo "## quiver serve pinned to CPU $server_cpu, load generator to CPU $load_cpu"
QUIVER_BENCH_QUIVER="$dir/quiver" QUIVER_BENCH_REDIS="127.0.0.1:$port" QUIVER_BENCH_CPU="$server_cpu" \
	taskset -c "$load_cpu" go test -run '^$' -bench '^BenchmarkTransports$' -benchtime "${calls}x" -count "${COUNT:-1}" ./serving/ |
	grep -E '^Benchmark'
if [ -n "${BASE_QUIVER:-}" ]; then
	only=grpc
	[ -n "${BASE_ALL:-}" ] && only=
	echo "## the same ${only:-gRPC and HTTP} calls against BASE_QUIVER=$BASE_QUIVER"
	QUIVER_BENCH_QUIVER="$dir/quiver-base" QUIVER_BENCH_ONLY=$only QUIVER_BENCH_REDIS="127.0.0.1:$port" QUIVER_BENCH_CPU="$server_cpu" \
		taskset -c "$load_cpu" go test -run '^$' -bench '^BenchmarkTransports$' -benchtime "${calls}x" -count "${COUNT:-1}" ./serving/ |
		grep -E '^Benchmark'
fi
