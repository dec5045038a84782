#!/usr/bin/env bash
# Every performance target of issue 17 (DESIGN.md "What fast means") and its ceiling, in one
# run, ending with a table of ratios, each target met or not met. See docs/BENCHMARKS.md.
#
#   scripts/bench.sh            # the issue's sizes
#   scripts/bench.sh --quick    # sizes / 10 (a smoke run of the script, not the targets)
#   scripts/bench.sh --scale 4  # sizes / 4 (to fit a busy machine in the 15 minutes)
#   WORK=/tmp/qb scripts/bench.sh   # keep (and reuse) the generated sources in /tmp/qb
#   ONLY=serving scripts/bench.sh   # only targets 1, 2, 5 (ONLY=store: only 3, 4)
#
# Pinning: redis-server and `quiver serve` on CPU $SERVER_CPU (default 0); the load generators
# (ghz, redis-benchmark, and `quiver materialize`, which loads Redis) on CPU $LOAD_CPU (default
# 1). `dataset create` and DuckDB both get every CPU. Server CPU per call is the `quiver serve`
# process's utime+stime from /proc/PID/stat over each run, divided by the calls.
#
# Needs: go, redis-server, redis-benchmark, redis-cli, node + npm (DuckDB from npm, installed
# with `npm ci` in scripts/duckdb), python3, taskset, /usr/bin/time. ghz v0.120.0 is installed
# with `go install` into $WORK/bin when missing.
set -euo pipefail
{ # the whole script is read before it runs, so editing it meanwhile cannot change a run
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scale=1
case "${1:-}" in
--quick) scale=10 ;;
--scale) scale=${2:?--scale N divides every size by N} ;;
esac
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
work=${WORK:-$root/.cache/bench}
mkdir -p "$work/bin"
mat_small=$((5000000 / scale))
mat_large=$((20000000 / scale))
ds_rows=$((10000000 / scale)) # the dataset's second view; its first is the materialized $mat_small one
entities=$((1000000 / scale))
entity_rows=$((2000000 / scale))
calls=${CALLS:-10000}
export QUIVER_ONNXRUNTIME_LIB=${QUIVER_ONNXRUNTIME_LIB:-$(./scripts/onnxruntime.sh)}

t_start=$(date +%s)
load() { cut -d' ' -f1 /proc/loadavg; }
say() { echo "[$(($(date +%s) - t_start))s load $(load)] $*" >&2; }
results="$work/results.tsv"
: >"$results"
# result TARGET WHAT MEASURED LIMIT CMP(le|ge|lt) UNIT: one row of the final table.
result() {
	python3 - "$@" >>"$results" <<'PY'
import sys
target, what, measured, limit, cmp, unit = sys.argv[1:7]
m, l = float(measured), float(limit)
ok = {"le": m <= l, "lt": m < l, "ge": m >= l}[cmp]
op = {"le": "≤", "lt": "<", "ge": "≥"}[cmp]
load = open("/proc/loadavg").read().split()[0]
fmt = lambda x: f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"
print("\t".join([target, what, f"{fmt(m)} {unit}".strip(), f"{op} {fmt(l)} {unit}".strip(), f"{m / l:.2f}" if l else "", "met" if ok else "NOT met", load]))
PY
}
note() { printf '%s\t%s\t%s\t\t\t\t%s\n' "$1" "$2" "$3" "$(load)" >>"$results"; }

# --- build -------------------------------------------------------------------------------
say "building quiver, gendata, benchserve, the pitjoin benchmark; ghz; DuckDB (npm ci)"
go build -o "$work/bin/quiver" ./cmd/quiver
go build -o "$work/bin/gendata" ./internal/cmd/gendata
go build -o "$work/bin/benchserve" ./internal/cmd/benchserve
go build -o "$work/bin/loadgen" ./internal/cmd/loadgen
go test -c -o "$work/bin/pitjoin.test" ./offline/pitjoin
go test -c -o "$work/bin/redis.test" ./online/redis
[[ -x "$work/bin/ghz" ]] || GOBIN="$work/bin" go install github.com/bojand/ghz/cmd/ghz@v0.120.0
(cd scripts/duckdb && npm ci --no-audit --no-fund --silent)
quiver=${QUIVER_BIN:-$work/bin/quiver} # QUIVER_BIN: measure another build (e.g. the one before a change)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start_redis() { # start_redis DIR -> sets redis_port
	redis_port=$(free_port)
	mkdir -p "$1"
	taskset -c "$server_cpu" redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$1" --save '' --appendonly no \
		--logfile "$1/redis.log" &
	pids+=($!)
	for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return; sleep 0.05; done
	echo "redis-server did not start" >&2
	exit 1
}
value=$(head -c 148 /dev/zero | tr '\0' v) # the size of one encoded 10-feature row
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime+stime, in 1/100 s

echo "# scripts/bench.sh $* — $(date -u +%FT%TZ), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(redis-server --version | cut -d' ' -f3), $(go version | cut -d' ' -f3), load at start: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ ${ONLY:-all} == all || ${ONLY:-} == serving ]]; then
# --- 1, 2, 5: serving ---------------------------------------------------------------------
say "serving: 10,000 entities × 3 views × 10 float64 features in Redis; quiver serve on CPU $server_cpu"
sdir="$work/serving"
rm -rf "$sdir"
start_redis "$sdir/redis"
"$work/bin/benchserve" -dir "$sdir/repo" -redis "127.0.0.1:$redis_port"
"$quiver" -C "$sdir/repo" apply >/dev/null
grpc_port=$(free_port)
taskset -c "$server_cpu" "$quiver" -C "$sdir/repo" serve --addr "127.0.0.1:$grpc_port" --metrics-addr '' >"$sdir/serve.log" 2>&1 &
serve_pid=$!
pids+=("$serve_pid")
for _ in $(seq 200); do grep -q 'serving gRPC' "$sdir/serve.log" && break; sleep 0.05; done
redis-cli -p "$redis_port" hset bench:entity view_0 "$value" view_1 "$value" view_2 "$value" >/dev/null
hmget=$(taskset -c "$load_cpu" redis-benchmark -p "$redis_port" -c 32 -n 200000 --csv HMGET bench:entity view_0 view_1 view_2 | tail -1 | cut -d, -f2 | tr -d '"')
say "redis-benchmark HMGET -c 32 (ceiling of the store round trip): $hmget/s"
note "ceiling" "redis-benchmark HMGET 3 fields, -c 32" "${hmget%.*} calls/s"

# ghz NAME METHOD DATA CONC ARGS...: runs ghz on the load CPU; prints "calls rps p50_us p99_us cpu_us_per_call".
ghz_run() {
	local name=$1 method=$2 data=$3 conc=$4
	shift 4
	local t0 t1
	# Warm up (connections, the model) before measuring.
	taskset -c "$load_cpu" "$work/bin/ghz" --insecure --proto proto/quiver/serving/v1/serving.proto --import-paths proto \
		--call "quiver.serving.v1.FeatureServing/$method" -D "$sdir/repo/$data" --disable-template-functions --disable-template-data \
		-c "$conc" -n 500 --connections $((conc < 4 ? conc : 4)) --cpus 1 -O json "127.0.0.1:$grpc_port" >/dev/null
	t0=$(ticks "$serve_pid")
	taskset -c "$load_cpu" "$work/bin/ghz" --insecure --proto proto/quiver/serving/v1/serving.proto --import-paths proto \
		--call "quiver.serving.v1.FeatureServing/$method" -D "$sdir/repo/$data" --disable-template-functions --disable-template-data \
		-c "$conc" --connections $((conc < 4 ? conc : 4)) --cpus 1 -O json "$@" "127.0.0.1:$grpc_port" >"$sdir/$name.json"
	t1=$(ticks "$serve_pid")
	python3 - "$sdir/$name.json" $((t1 - t0)) <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ok = d.get("statusCodeDistribution", {}).get("OK", 0)
if ok != d["count"] or d.get("errorDistribution"):
    sys.exit(f"ghz: {d['count']} calls, {ok} OK: {d.get('errorDistribution')}")
lat = {p["percentage"]: p["latency"] / 1000 for p in d["latencyDistribution"]}
print(d["count"], round(d["rps"]), round(lat[50]), round(lat[99]), round(int(sys.argv[2]) * 10000 / d["count"], 1))
PY
}

say "1. GetOnlineFeatures, 1 entity, concurrency 32, $calls calls"
read -r n rps p50 p99 cpu < <(ghz_run get1-c32 GetOnlineFeatures get1.json 32 -n "$calls")
say "   $rps calls/s, p50 $p50 µs, p99 $p99 µs, server CPU $cpu µs/call"
result "1" "GetOnlineFeatures 1 entity, conc 32: server CPU per call ($rps calls/s, p99 $p99 µs)" "$cpu" 80 le µs
say "1. GetOnlineFeatures, 1 entity, at 5,000 calls/s, 10,000 calls"
read -r n rps p50 p99 cpu < <(ghz_run get1-rate GetOnlineFeatures get1.json 32 --rps 5000 -n 10000)
say "   $rps calls/s achieved, p50 $p50 µs, p99 $p99 µs, server CPU $cpu µs/call"
result "1" "GetOnlineFeatures 1 entity at 5,000 calls/s: p99 (achieved $rps calls/s)" "$p99" 1000 lt µs
result "1" "  the load generator reached the asked rate" "$rps" 4750 ge calls/s

say "2. GetOnlineFeatures, 100 entities, concurrency 1"
read -r n rps p50 p99 cpu < <(ghz_run get100-c1 GetOnlineFeatures get100.json 1 -n $((calls / 10)))
say "   $rps calls/s, p50 $p50 µs, p99 $p99 µs, server CPU $cpu µs/call"
result "2" "GetOnlineFeatures 100 entities, conc 1: server CPU per call" "$cpu" 400 le µs
result "2" "GetOnlineFeatures 100 entities, conc 1: p99 ($rps calls/s)" "$p99" 5000 lt µs

say "5. Predict (MLP 30→32→1), 1 entity, concurrency 32"
read -r n rps p50 p99 cpu < <(ghz_run predict1-c32 Predict predict1.json 32 -n "$calls")
say "   $rps calls/s, p50 $p50 µs, p99 $p99 µs, server CPU $cpu µs/call"
result "5" "Predict 1 entity, conc 32: server CPU per call ($rps calls/s)" "$cpu" 120 le µs
result "5" "Predict 1 entity, conc 32: p99" "$p99" 2000 lt µs

# The same calls from loadgen (internal/cmd/loadgen: the generated client, no dynamic
# decoding), which can offer the rates ghz cannot on one core.
# lg_run NAME METHOD DATA ARGS...: prints "calls rps p50_us p99_us cpu_us_per_call".
lg_run() {
	local name=$1 method=$2 data=$3
	shift 3
	local t0 t1
	t0=$(ticks "$serve_pid")
	taskset -c "$load_cpu" "$work/bin/loadgen" -addr "127.0.0.1:$grpc_port" -method "$method" -data "$sdir/repo/$data" "$@" >"$sdir/$name.lg.json"
	t1=$(ticks "$serve_pid")
	python3 - "$sdir/$name.lg.json" $((t1 - t0)) <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if d["errors"]:
    sys.exit(f"loadgen: {d['errors']} of {d['count']} calls failed: {d.get('first_error')}")
print(d["count"], round(d["rps"]), round(d["p50_us"]), round(d["p99_us"]), round(int(sys.argv[2]) * 10000 / d["count"], 1))
PY
}
lg_calls=$((calls * 2))
say "1. (loadgen) GetOnlineFeatures, 1 entity, concurrency 32, $lg_calls calls"
read -r n rps p50 p99 cpu < <(lg_run get1-c32 GetOnlineFeatures get1.json -c 32 -n "$lg_calls")
say "   $rps calls/s, p50 $p50 µs, p99 $p99 µs, server CPU $cpu µs/call"
result "1" "(loadgen) GetOnlineFeatures 1 entity, conc 32: server CPU per call ($rps calls/s, p99 $p99 µs)" "$cpu" 80 le µs
say "1. (loadgen) GetOnlineFeatures, 1 entity, open loop at 5,000 calls/s, $lg_calls calls"
read -r n rps p50 p99 cpu < <(lg_run get1-rate GetOnlineFeatures get1.json -rps 5000 -c 256 -n "$lg_calls")
say "   $rps calls/s achieved, p50 $p50 µs, p99 $p99 µs, server CPU $cpu µs/call"
result "1" "(loadgen) GetOnlineFeatures 1 entity at 5,000 calls/s: p99 (achieved $rps calls/s; server CPU $cpu µs/call)" "$p99" 1000 lt µs
say "2. (loadgen) GetOnlineFeatures, 100 entities, concurrency 1"
read -r n rps p50 p99 cpu < <(lg_run get100-c1 GetOnlineFeatures get100.json -c 1 -connections 1 -n $((calls / 5)))
say "   $rps calls/s, p50 $p50 µs, p99 $p99 µs, server CPU $cpu µs/call"
result "2" "(loadgen) GetOnlineFeatures 100 entities, conc 1: server CPU per call" "$cpu" 400 le µs
result "2" "(loadgen) GetOnlineFeatures 100 entities, conc 1: p99 ($rps calls/s)" "$p99" 5000 lt µs
say "5. (loadgen) Predict, 1 entity, concurrency 32"
read -r n rps p50 p99 cpu < <(lg_run predict1-c32 Predict predict1.json -c 32 -n "$lg_calls")
say "   $rps calls/s, p50 $p50 µs, p99 $p99 µs, server CPU $cpu µs/call"
result "5" "(loadgen) Predict 1 entity, conc 32: server CPU per call ($rps calls/s)" "$cpu" 120 le µs
result "5" "(loadgen) Predict 1 entity, conc 32: p99" "$p99" 2000 lt µs
kill "$serve_pid" 2>/dev/null || true

fi

if [[ ${ONLY:-all} == all || ${ONLY:-} == store ]]; then
# --- 3, 4: materialization and dataset create ----------------------------------------------
mdir="$work/mat"
rm -rf "$mdir"
mkdir -p "$mdir/repo/features"
gen() { # gen FILE ROWS SEED PREFIX: a 10-feature source over $entities entities, cached in $work
	[[ -f "$1" ]] || { say "generating $1 ($2 rows)"; "$work/bin/gendata" -rows "$2" -entities "$entities" -features 10 -days 30 -end 2026-11-01 -seed "$3" -feature-prefix "$4" -out "$1.tmp" && mv "$1.tmp" "$1"; }
}
src_small="$work/src-$mat_small-$entities.parquet"
src_large="$work/src-$mat_large-$entities.parquet"
src_ds="$work/src-$ds_rows-$entities-g.parquet"
ents="$work/entities-$entity_rows-$entities.parquet"
gen "$src_small" "$mat_small" 1 f
gen "$src_large" "$mat_large" 1 f
gen "$src_ds" "$ds_rows" 2 g
[[ -f "$ents" ]] || "$work/bin/gendata" -entity-rows "$entity_rows" -entities "$entities" -days 30 -end 2026-11-01 -out "$ents"

start_redis "$mdir/redis"
printf 'project: bench\nonline: redis://127.0.0.1:%s/0\ndefinitions: [features]\nallowed_paths: [%s]\n' "$redis_port" "$work" >"$mdir/repo/quiver.yaml"
{
	printf 'entities:\n  - name: entity\n    join_keys: [{ name: entity_id, type: int64 }]\n'
	printf 'sources:\n'
	for s in small:"$src_small" large:"$src_large" ds:"$src_ds"; do
		printf '  - name: %s\n    parquet: { path: %s }\n    timestamp_field: event_ts\n    created_timestamp_field: created_ts\n' "${s%%:*}" "${s#*:}"
	done
	printf 'feature_views:\n'
	for v in m_small:small:true:f m_large:large:true:f ds:ds:false:g; do
		IFS=: read -r name src on prefix <<<"$v"
		printf '  - name: %s\n    entities: [entity]\n    source: %s\n    online: %s\n    features:\n' "$name" "$src" "$on"
		for i in $(seq 0 9); do
			if ((i % 2 == 0)); then t=float64; else t=int64; fi
			printf '      - { name: %s%d, type: %s }\n' "$prefix" "$i" "$t"
		done
	done
	printf 'feature_services:\n  - name: train\n    features: ["ds:*", "m_small:*"]\n'
} >"$mdir/repo/features/bench.yaml"
"$quiver" -C "$mdir/repo" apply >/dev/null

materialize() { # materialize VIEW -> prints "rows online_rows online_s rss_kb wall_s"
	taskset -c "$load_cpu" /usr/bin/time -v "$quiver" -C "$mdir/repo" -o json materialize --start 2026-10-01 --end 2026-11-01 "$1" \
		>"$mdir/$1.json" 2>"$mdir/$1.time"
	python3 - "$mdir/$1.json" "$mdir/$1.time" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
r = d[0] if isinstance(d, list) else d
r = r.get("runs", [r])[0] if "runs" in r else r
t = open(sys.argv[2]).read()
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)
print(r["rows_read"], r.get("online_rows", 0), r.get("online_seconds", 0), rss, r.get("seconds", 0))
PY
}
say "3. quiver materialize $mat_small rows × 10 features over $entities entities (Iceberg + Redis), on CPU $load_cpu"
read -r rows on_rows on_s rss_small wall < <(materialize m_small)
on_rate=$(python3 -c "print(round($on_rows / $on_s))")
say "   online: $on_rows view-rows in $on_s s = $on_rate/s; peak RSS $((rss_small / 1024)) MiB"
say "3. quiver materialize $mat_large rows"
read -r rows2 on_rows2 on_s2 rss_large wall2 < <(materialize m_large)
on_rate2=$(python3 -c "print(round($on_rows2 / $on_s2))")
say "   online: $on_rows2 view-rows in $on_s2 s = $on_rate2/s; peak RSS $((rss_large / 1024)) MiB"
say "3. redis-benchmark HSET -P 64 -c 50 (ceiling), same server"
redis-cli -p "$redis_port" flushall >/dev/null
hset=$(taskset -c "$load_cpu" redis-benchmark -p "$redis_port" -c 50 -P 64 -r "$entities" -n $((40000000 / scale / 10)) --csv HSET 'bench:h:__rand_int__' view_0 "$value" | tail -1 | cut -d, -f2 | tr -d '"')
say "   $hset HSET/s"
note "ceiling" "redis-benchmark HSET -P 64 -c 50, 148-byte value" "${hset%.*} requests/s"
say "3. the online write path alone: Store.Write (stale-write guard) of 2048-row batches, 2 writers as materialize flushes, same server"
redis-cli -p "$redis_port" config resetstat >/dev/null
wr=$(QUIVER_BENCH_REDIS="127.0.0.1:$redis_port" taskset -c "$load_cpu" "$work/bin/redis.test" -test.run '^$' \
	-test.bench '^BenchmarkWrite$/features/batch/^conc=2$' -test.benchtime $((400 / scale))x | grep -oE '[0-9.]+ rows/s' | cut -d' ' -f1)
evalsha=$(redis-cli -p "$redis_port" info commandstats | grep -oE 'cmdstat_evalsha:calls=[0-9]+,usec=[0-9]+' | grep -oE '[0-9]+' | tr '\n' ' ')
read -r ev_calls ev_usec <<<"$evalsha"
say "   $wr view-rows/s; Redis CPU in the guard script: $(python3 -c "print(round($ev_usec / ($ev_calls * 128), 2))") µs per row"
note "3" "Redis CPU per row inside the guard script (INFO commandstats, EVALSHA usec ÷ rows)" "$(python3 -c "print(round($ev_usec / ($ev_calls * 128), 2))") µs"
result "3" "online write path alone (Store.Write, guard kept, 2 writers): view-rows/s ÷ HSET/s ($wr/s)" "$(python3 -c "print($wr / $hset)")" 0.5 ge ""
result "3" "materialize into Redis ($mat_small rows): view-rows/s ÷ HSET/s ($on_rate/s)" "$(python3 -c "print($on_rate / $hset)")" 0.5 ge ""
result "3" "materialize into Redis ($mat_large rows): view-rows/s ÷ HSET/s ($on_rate2/s)" "$(python3 -c "print($on_rate2 / $hset)")" 0.5 ge ""
result "3" "peak RSS $mat_large rows ÷ $mat_small rows ($((rss_large / 1024)) / $((rss_small / 1024)) MiB)" "$(python3 -c "print(abs($rss_large / $rss_small - 1))")" 0.1 le "(distance of the ratio from 1)"

say "4. quiver materialize ds ($ds_rows rows, offline only) for the dataset"
read -r _ _ _ _ _ < <(materialize ds)
say "4. quiver dataset create: 2 views ($ds_rows + $mat_small rows), $entity_rows entity rows, every CPU"
/usr/bin/time -f '%e %M' -o "$mdir/ds.time" "$quiver" -C "$mdir/repo" -o json dataset create bench --service train --entities "$ents" >"$mdir/ds.json"
read -r q_s q_rss <"$mdir/ds.time"
say "   $q_s s, peak RSS $((q_rss / 1024)) MiB"
wh=$(find "$mdir/repo/.quiver" -type d -name data -path '*m_small*' | head -1)
wh_ds=$(find "$mdir/repo/.quiver" -type d -name data -path '*ds*' -not -path '*m_small*' | head -1)
say "4. DuckDB ASOF LEFT JOIN of the same offline Parquet files + zstd Parquet write, threads=$(nproc)"
THREADS=$(nproc) /usr/bin/time -f '%e %M' -o "$mdir/duck.time" node scripts/duckdb/asof.mjs "$mdir/duck.parquet" "$ents" \
	"ds=$wh_ds/**/*.parquet:g0,g1,g2,g3,g4,g5,g6,g7,g8,g9" "m_small=$wh/**/*.parquet:f0,f1,f2,f3,f4,f5,f6,f7,f8,f9" >"$mdir/duck.json"
read -r d_s d_rss <"$mdir/duck.time"
say "   $d_s s (SQL $(python3 -c "import json; print(round(json.load(open('$mdir/duck.json'))['seconds'], 2))") s), peak RSS $((d_rss / 1024)) MiB"
result "4" "dataset create vs DuckDB, wall time of each process: DuckDB ÷ Quiver ($d_s s / $q_s s; DuckDB SQL alone $(python3 -c "import json; print(round(json.load(open('$mdir/duck.json'))['seconds'], 2))") s)" "$(python3 -c "print($d_s / $q_s)")" 1.5 ge "×"

say "4. join engine alone (in-memory Arrow, $entity_rows entity rows × $ds_rows feature rows, 1 view)"
eng=$(PITJOIN_FEATURE_ROWS=$ds_rows PITJOIN_ENTITIES=$entities PITJOIN_ENTITY_ROWS=$entity_rows \
	"$work/bin/pitjoin.test" -test.run '^$' -test.bench '^BenchmarkJoin$' -test.benchtime 3x | grep -oE '[0-9.]+ entity-rows/s' | cut -d' ' -f1)
say "   $eng entity rows/s"
result "4" "join engine alone: entity rows/s" "$eng" 1000000 ge rows/s

fi

# --- the table -----------------------------------------------------------------------------
echo
echo "## Results ($(($(date +%s) - t_start)) s, load at end: $(cut -d' ' -f1-3 /proc/loadavg))"
echo
python3 - "$results" <<'PY'
import sys
print("| target | measure | measured | target | ratio | | load avg |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for line in open(sys.argv[1]):
    print("| " + " | ".join(line.rstrip("\n").split("\t")) + " |")
PY
exit
}
