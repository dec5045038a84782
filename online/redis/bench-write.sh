#!/usr/bin/env bash
# The online write path — online/redis through online.Writer, stale-write guard kept — in the
# shapes materialize and push call it (internal/cmd/writebench), next to redis-benchmark's
# pipelined HSET ceiling, in one run against one throwaway redis-server (nothing persisted) on a
# loopback port. See docs/BENCHMARKS.md, "Issue 29".
#
#   online/redis/bench-write.sh                   # this tree, 1 M and 5 M rows over 1 M entities
#   BASE=2d2ff85 online/redis/bench-write.sh      # and the store as of BASE, in the same run
#   ROWS="200000 1000000" ENTITIES=200000 online/redis/bench-write.sh    # a quicker run
#
# redis-server runs on CPU $REDIS_CPU (default 0), every load generator (redis-benchmark,
# writebench) on CPU $LOAD_CPU (default 1). Each (rows, shape) group measures the ceiling
# first, then each build of the store, alternating, each from an empty server.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows_list=${ROWS:-1000000 5000000}
entities=${ENTITIES:-1000000}
redis_cpu=${REDIS_CPU:-0}
load_cpu=${LOAD_CPU:-1}
requests=${REQUESTS:-3000000}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

echo "# building writebench" >&2
go build -o "$dir/writebench-head" ./internal/cmd/writebench
revs="head"
if [ -n "${BASE:-}" ]; then
	# The store as of BASE, with this tree's writebench (it uses only what online/redis has
	# always exported).
	mkdir "$dir/base"
	git archive "$BASE" | tar -x -C "$dir/base"
	rm -rf "$dir/base/internal/cmd/writebench"
	cp -r internal/cmd/writebench "$dir/base/internal/cmd/writebench"
	(cd "$dir/base" && go build -o "$dir/writebench-base" ./internal/cmd/writebench)
	revs="base head"
fi

taskset -c "$redis_cpu" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
	--daemonize no --logfile "$dir/redis.log" &
pid=$!
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
cli() { redis-cli -p "$port" "$@" >/dev/null; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

echo "# $(date -u +%FT%TZ) $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(redis-server --version | cut -d' ' -f3), $(go version | cut -d' ' -f3), head $(git rev-parse --short HEAD)${BASE:+, base $(git rev-parse --short "$BASE")}"
echo "# redis-server on CPU $redis_cpu, load generators on CPU $load_cpu; $entities entities; row i is entity i mod $entities, each pass one minute newer"
# One encoded 10-feature row is ~148 bytes (scripts/bench.sh uses the same value).
value=$(head -c 148 /dev/zero | tr '\0' v)

ceiling() { # prints "HSET/s redis-cpu-µs-per-HSET"
	cli flushall
	local t0 t1 rps
	t0=$(cpu_ticks)
	rps=$(taskset -c "$load_cpu" redis-benchmark -p "$port" -c 50 -P 64 -r "$entities" -n "$requests" --csv HSET 'bench:h:__rand_int__' view_0 "$value" | tail -1 | cut -d, -f2 | tr -d '"')
	t1=$(cpu_ticks)
	python3 -c "print('%.0f %.2f' % ($rps, ($t1 - $t0) * 1e4 / $requests))"
}

printf '| rows | shape | store | rows/s | HSET/s (same group) | ratio | Redis CPU µs/row | EVALSHA µs/row | client CPU µs/row | peak RSS MiB | load |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
for rows in $rows_list; do
	for shape in materialize push; do
		read -r hset hset_cpu < <(ceiling)
		printf '| %s | ceiling | redis-benchmark -P 64 -c 50 HSET | | %s | | %s µs/HSET | | | | %s |\n' "$rows" "$hset" "$hset_cpu" "$(cut -d' ' -f1 /proc/loadavg)"
		for rev in $revs; do
			cli flushall
			cli config resetstat
			out=$(taskset -c "$load_cpu" "$dir/writebench-$rev" -addr "127.0.0.1:$port" -redis-pid "$pid" -shape "$shape" -rows "$rows" -entities "$entities")
			python3 - "$out" "$rows" "$shape" "$rev" "$hset" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
rows, shape, rev, hset, load = sys.argv[2:]
print("| %s | %s | %s | %.0f | %s | **%.3f** | %.2f | %.2f | %.2f | %.0f | %s |" % (
    rows, shape, rev, r["rows_per_s"], hset, r["rows_per_s"] / float(hset), r["redis_cpu_us_per_row"],
    r["evalsha_us_per_row"], r["client_cpu_us_per_row"], r["peak_rss_mib"], load))
PY
		done
	done
done
