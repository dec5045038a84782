#!/usr/bin/env bash
# Online store benchmarks next to their redis-benchmark ceilings, in one run against one
# throwaway redis-server (nothing persisted) on a loopback port. See docs/BENCHMARKS.md.
#
#   online/redis/bench.sh            # from the repository root
#   BENCHTIME=5s online/redis/bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
benchtime=${BENCHTIME:-3s}
requests=${REQUESTS:-200000}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
	--daemonize no --logfile "$dir/redis.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, $(redis-server --version | cut -d' ' -f3), $(go version | cut -d' ' -f3), load: $(cut -d' ' -f1-3 /proc/loadavg)"
# An entity's hash as the store keeps it: one ~145-byte value per view (10 features each).
value=$(head -c 145 /dev/zero | tr '\0' v)
redis-cli -p "$port" hset bench:entity view_0 "$value" view_1 "$value" view_2 "$value" >/dev/null

echo "## redis-benchmark (ceiling)"
for c in 1 50; do
	echo -n "HMGET 3 fields, -c $c, no pipelining: "
	redis-benchmark -p "$port" -c "$c" -n "$requests" --csv HMGET bench:entity view_0 view_1 view_2 | tail -1
done
for c in 1 50; do
	echo -n "HSET -P 64, -c $c, 100k keys: "
	redis-benchmark -p "$port" -c "$c" -P 64 -r 100000 -n $((requests * 10)) --csv HSET 'bench:h:__rand_int__' view_0 "$value" | tail -1
done

echo "## quiver online/redis"
QUIVER_BENCH_REDIS="127.0.0.1:$port" go test -run '^$' -bench . -benchtime "$benchtime" ./online/redis/ | grep -E '^Benchmark'
