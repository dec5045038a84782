#!/usr/bin/env bash
# The online write path — online/redis through online.Writer, stale-write guard kept — in the
# shapes materialize and push call it (internal/cmd/writebench), next to redis-benchmark's
# pipelined HSET ceiling, in one run against one throwaway redis-server (nothing persisted) on a
# loopback port. See docs/BENCHMARKS.md, "Issue 29".
#
#   online/redis/bench-write.sh                   # this tree, 1 M and 5 M rows over 1 M entities
#   BASE=2d2ff85 online/redis/bench-write.sh      # and the store as of BASE, in the same run
#   ROWS="200000 1000000" ENTITIES=200000 online/redis/bench-write.sh    # a quicker run
#   TTL=0 SHAPES=materialize online/redis/bench-write.sh    # a view without TTL (scripts/bench.sh's)
#
# redis-server runs on CPU $REDIS_CPU (default 0), every load generator (redis-benchmark,
# writebench) on CPU $LOAD_CPU (default 1). The machine is shared and its load moves within
# a minute, so a (rows, shape) run is cut into $SEGMENTS segments (default 10): each segment
# measures the ceiling (redis-benchmark -c 50 -P 64 HSET of a 148-byte value, $CEILING
# requests), then each build writes its next rows (alternating which goes first), each build
# one process for the whole run, into its own project. Rates are totals over the segments;
# peak RSS is each writer process's over its whole run.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows_list=${ROWS:-1000000 5000000}
entities=${ENTITIES:-1000000}
redis_cpu=${REDIS_CPU:-0}
load_cpu=${LOAD_CPU:-1}
segments=${SEGMENTS:-10}
ttl=${TTL:-168h}
shapes=${SHAPES:-materialize push}
ceiling_requests=${CEILING:-300000}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
pid=
cleanup() {
	jobs -p | xargs -r kill 2>/dev/null || true
	wait 2>/dev/null || true
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

echo "# $(date -u +%FT%TZ) $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), redis $(redis-server --version | cut -d' ' -f3 | cut -d= -f2), $(go version | cut -d' ' -f3), head $(git rev-parse --short HEAD)${BASE:+, base $(git rev-parse --short "$BASE")}"
echo "# redis-server on CPU $redis_cpu, load generators on CPU $load_cpu; view TTL $ttl; $entities entities (row i is entity i mod $entities, each pass one minute newer); $segments segments per run"
# One encoded 10-feature row is ~148 bytes (scripts/bench.sh uses the same value).
value=$(head -c 148 /dev/zero | tr '\0' v)

results="$dir/results.jsonl"
for rows in $rows_list; do
	for shape in $shapes; do
		cli flushall
		step=$(((rows + segments - 1) / segments))
		declare -A fin=() fout=()
		for rev in $revs; do
			mkfifo "$dir/in-$rev" "$dir/out-$rev"
			taskset -c "$load_cpu" "$dir/writebench-$rev" -addr "127.0.0.1:$port" -redis-pid "$pid" -shape "$shape" -ttl "$ttl" \
				-rows "$rows" -entities "$entities" -project "wb_$rev" -step "$step" <"$dir/in-$rev" >"$dir/out-$rev" &
			exec {fd}>"$dir/in-$rev"
			fin[$rev]=$fd
			exec {fd}<"$dir/out-$rev"
			fout[$rev]=$fd
		done
		for ((s = 0; s < segments; s++)); do
			t0=$(cpu_ticks)
			hset=$(taskset -c "$load_cpu" redis-benchmark -p "$port" -c 50 -P 64 -r "$entities" -n "$ceiling_requests" --csv \
				HSET 'bench:h:__rand_int__' view_0 "$value" | tail -1 | cut -d, -f2 | tr -d '"')
			t1=$(cpu_ticks)
			echo "{\"rev\":\"ceiling\",\"rows_total\":$rows,\"shape\":\"$shape\",\"requests\":$ceiling_requests,\"rps\":$hset,\"redis_cpu_s\":$(((t1 - t0)))e-2,\"load\":$(cut -d' ' -f1 /proc/loadavg)}" >>"$results"
			order=$revs
			if ((s % 2 == 1)); then order=$(echo "$revs" | tr ' ' '\n' | tac | xargs); fi
			for rev in $order; do
				echo go >&"${fin[$rev]}"
				read -r line <&"${fout[$rev]}"
				echo "{\"rev\":\"$rev\",\"rows_total\":$rows,\"load\":$(cut -d' ' -f1 /proc/loadavg),\"seg\":$line}" >>"$results"
			done
		done
		for rev in $revs; do
			read -r line <&"${fout[$rev]}"
			echo "{\"rev\":\"$rev\",\"rows_total\":$rows,\"shape\":\"$shape\",\"total\":$line}" >>"$results"
			fd=${fin[$rev]}
			exec {fd}>&-
			fd=${fout[$rev]}
			exec {fd}<&-
			rm -f "$dir/in-$rev" "$dir/out-$rev"
		done
		wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
	done
done

python3 - "$results" <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1])]
groups = collections.OrderedDict()
for r in rows:
    shape = r.get("shape") or r.get("seg", {}).get("shape") or r.get("total", {}).get("shape")
    groups.setdefault((r["rows_total"], shape), []).append(r)
# "Redis-bound ratio": a pipelined HSET's Redis CPU ÷ a written row's, the ratio the write
# path would reach if Redis were the limit of both; unlike rows/s, it does not depend on how
# much CPU the load generators got.
print("| rows | shape | store | rows/s | HSET/s (same segments) | ratio | Redis CPU µs/row | Redis-bound ratio | EVALSHA µs/row | client CPU µs/row | writer peak RSS MiB | load (min–max) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for (n, shape), rs in groups.items():
    ceil = [r for r in rs if r["rev"] == "ceiling"]
    req = sum(r["requests"] for r in ceil)
    secs = sum(r["requests"] / r["rps"] for r in ceil)
    hset = req / secs
    hset_cpu = sum(r["redis_cpu_s"] for r in ceil) * 1e6 / req
    loads = [r["load"] for r in rs if "load" in r]
    print("| %d | %s | ceiling | | %.0f | | %.2f µs/HSET | | | | | %.1f–%.1f |" % (
        n, shape, hset, hset_cpu, min(loads), max(loads)))
    for r in rs:
        if "total" not in r:
            continue
        t = r["total"]
        print("| %d | %s | %s | %.0f | %.0f | **%.3f** | %.2f | %.3f | %.2f | %.2f | %.0f | |" % (
            n, shape, r["rev"], t["rows_per_s"], hset, t["rows_per_s"] / hset, t["redis_cpu_us_per_row"],
            hset_cpu / t["redis_cpu_us_per_row"], t["evalsha_us_per_row"], t["client_cpu_us_per_row"], t["peak_rss_mib"]))
PY
