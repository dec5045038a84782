#!/usr/bin/env bash
# `quiver materialize` into Redis (and the local Iceberg store), scripts/bench.sh's shape — a
# generated source of 10 features over 1 M entities, 5 M and 20 M rows — beside
# redis-benchmark's pipelined HSET ceiling, in one run against one throwaway redis-server (no
# persistence) on a loopback port. With BASE=rev it builds `quiver` as of rev too and runs the
# two builds alternately, a ceiling before each materialization, so a before/after is one run.
# See docs/BENCHMARKS.md, "Issue 29".
#
#   scripts/bench-materialize.sh                              # this tree, 5 M and 20 M rows
#   BASE=fb30979 scripts/bench-materialize.sh                 # and main as of fb30979
#   ROWS=5000000 REPS=2 BASE=fb30979 scripts/bench-materialize.sh
#
# Sources are generated once (internal/cmd/gendata, as scripts/bench.sh does) and cached in
# $WORK (default .cache/bench, shared with scripts/bench.sh). redis-server runs on CPU
# $REDIS_CPU (default 0); quiver and redis-benchmark on $LOAD_CPU (default 1), as in
# scripts/bench.sh. "online rows/s" is scripts/bench.sh's figure: the entity rows written
# online ÷ the run's online time (folding every source row into the latest row per entity,
# then writing those through the stale-write guard). For a CPU profile of the same run in
# process: QUIVER_BENCH_SOURCE=$WORK/src-5000000-1000000.parquet QUIVER_BENCH_ONLINE=redis
# go test -run '^$' -bench BenchmarkMaterialize -benchtime 1x -cpuprofile cpu.out ./materialize
set -euo pipefail
cd "$(dirname "$0")/.."
rows_list=${ROWS:-5000000 20000000}
reps=${REPS:-1}
entities=${ENTITIES:-1000000}
redis_cpu=${REDIS_CPU:-0}
load_cpu=${LOAD_CPU:-1}
work=${WORK:-$PWD/.cache/bench}
mkdir -p "$work/bin"
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
cleanup() {
	jobs -p | xargs -r kill 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

echo "# building quiver${BASE:+ (head and $BASE)}, gendata" >&2
go build -o "$dir/quiver-head" ./cmd/quiver
go build -o "$work/bin/gendata" ./internal/cmd/gendata
revs="head"
if [ -n "${BASE:-}" ]; then
	mkdir "$dir/base"
	git archive "$BASE" | tar -x -C "$dir/base"
	(cd "$dir/base" && go build -o "$dir/quiver-base" ./cmd/quiver)
	revs="base head"
fi
for rows in $rows_list; do
	src="$work/src-$rows-$entities.parquet"
	[[ -f "$src" ]] || { echo "# generating $src" >&2; "$work/bin/gendata" -rows "$rows" -entities "$entities" -features 10 -days 30 \
		-end 2026-11-01 -seed 1 -feature-prefix f -out "$src.tmp" && mv "$src.tmp" "$src"; }
done

taskset -c "$redis_cpu" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
	--daemonize no --logfile "$dir/redis.log" &
pid=$!
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
value=$(head -c 148 /dev/zero | tr '\0' v) # one encoded 10-feature row is ~148 bytes

echo "# $(date -u +%FT%TZ) $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), redis $(redis-server --version | cut -d' ' -f3 | cut -d= -f2), $(go version | cut -d' ' -f3), head $(git rev-parse --short HEAD)${BASE:+, base $(git rev-parse --short "$BASE")}"
echo "# redis-server on CPU $redis_cpu, quiver and redis-benchmark on CPU $load_cpu; $entities entities"
results="$dir/results.jsonl"
for rows in $rows_list; do
	src="$work/src-$rows-$entities.parquet"
	for ((r = 0; r < reps; r++)); do
		order=$revs
		if ((r % 2 == 1)); then order=$(echo "$revs" | tr ' ' '\n' | tac | xargs); fi
		for rev in $order; do
			redis-cli -p "$port" flushall >/dev/null
			t0=$(cpu_ticks)
			hset=$(taskset -c "$load_cpu" redis-benchmark -p "$port" -c 50 -P 64 -r "$entities" -n 2000000 --csv \
				HSET 'bench:h:__rand_int__' view_0 "$value" | tail -1 | cut -d, -f2 | tr -d '"')
			t1=$(cpu_ticks)
			redis-cli -p "$port" flushall >/dev/null
			redis-cli -p "$port" config resetstat >/dev/null
			repo="$dir/repo-$rev-$rows-$r"
			mkdir -p "$repo/features"
			printf 'project: bench\nonline: redis://127.0.0.1:%s/0\ndefinitions: [features]\nallowed_paths: [%s]\n' "$port" "$work" >"$repo/quiver.yaml"
			{
				printf 'entities:\n  - name: entity\n    join_keys: [{ name: entity_id, type: int64 }]\n'
				printf 'sources:\n  - name: src\n    parquet: { path: %s }\n    timestamp_field: event_ts\n    created_timestamp_field: created_ts\n' "$src"
				printf 'feature_views:\n  - name: m\n    entities: [entity]\n    source: src\n    online: true\n    features:\n'
				for i in $(seq 0 9); do
					if ((i % 2 == 0)); then t=float64; else t=int64; fi
					printf '      - { name: f%d, type: %s }\n' "$i" "$t"
				done
			} >"$repo/features/bench.yaml"
			"$dir/quiver-$rev" -C "$repo" apply >/dev/null
			t2=$(cpu_ticks)
			taskset -c "$load_cpu" /usr/bin/time -v "$dir/quiver-$rev" -C "$repo" -o json materialize \
				--start 2026-10-01 --end 2026-11-01 m >"$dir/out.json" 2>"$dir/time.txt"
			t3=$(cpu_ticks)
			ev=$(redis-cli -p "$port" info commandstats | { grep -oE 'cmdstat_evalsha:calls=[0-9]+,usec=[0-9]+' || true; } | grep -oE '[0-9]+' | tail -1 || true)
			python3 - "$dir/out.json" "$dir/time.txt" "$rev" "$rows" "$hset" "$((t1 - t0))" "$((t3 - t2))" "${ev:-0}" "$(cut -d' ' -f1 /proc/loadavg)" >>"$results" <<'PY'
import json, re, sys
out, tim, rev, rows, hset, hset_ticks, run_ticks, ev_usec, load = sys.argv[1:]
d = json.load(open(out))
r = d[0] if isinstance(d, list) else d
r = r.get("runs", [r])[0] if "runs" in r else r
t = open(tim).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
print(json.dumps({"rev": rev, "rows": int(rows), "hset": float(hset), "hset_redis_cpu_us": int(hset_ticks) * 1e4 / 2e6,
    "online_rows": r["online_rows"], "online_s": r["online_seconds"], "wall_s": r["seconds"], "rss_mib": rss / 1024,
    "redis_cpu_us_per_row": int(run_ticks) * 1e4 / max(r["online_rows"], 1), "evalsha_us_per_row": int(ev_usec) / max(r["online_rows"], 1),
    "load": float(load)}))
PY
			tail -1 "$results" >&2
		done
	done
done

python3 - "$results" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
print("| source rows | build | online rows/s | HSET/s (just before) | ratio | online s | run wall s | peak RSS MiB | Redis CPU µs/online row (HSET: µs/HSET) | EVALSHA µs/row | load |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rs:
    rate = r["online_rows"] / r["online_s"]
    print("| %d | %s | %.0f | %.0f | **%.3f** | %.2f | %.2f | %.0f | %.2f (%.2f) | %.2f | %.1f |" % (r["rows"], r["rev"], rate, r["hset"], rate / r["hset"],
        r["online_s"], r["wall_s"], r["rss_mib"], r["redis_cpu_us_per_row"], r["hset_redis_cpu_us"], r["evalsha_us_per_row"], r["load"]))
PY
