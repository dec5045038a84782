#!/usr/bin/env bash
# Push ingestion (PushFeatures over gRPC into a real `quiver serve` on Redis: rows/s and p99 ack
# latency) beside redis-benchmark's pipelined HSET ceiling, in one run against one throwaway
# redis-server; then the stream path's event-to-online latency (`quiver stream` consuming
# franz-go's in-process Kafka-protocol server, kfake). The server is pinned to CPU $SERVER_CPU
# (default 0); Redis, redis-benchmark and the load generator to $LOAD_CPU (default 1).
# See docs/BENCHMARKS.md and docs/ingestion.md.
#
#   scripts/bench-push.sh
#   ROWS=500000 BATCH=5000 CONCURRENCY=8 RATE=10000 scripts/bench-push.sh
#   BASE=fb30979 PUSH_ONLY=1 REPS=3 scripts/bench-push.sh   # push only: this tree and BASE, alternated
#
# Issue 29's ceiling is scripts/bench.sh's (redis-benchmark -c 50 -P 64 HSET of a 148-byte
# value), measured before each push run; the figure is rows/s ÷ that ceiling. Each push run
# also reports quiver serve's and redis-server's CPU per row (utime + stime from /proc).
set -euo pipefail
cd "$(dirname "$0")/.."
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
grpc_port=$((port + 1))
kafka_port=$((port + 2))
taskset -c "$load_cpu" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
	--daemonize no --logfile "$dir/redis.log" &
pid=$!
serve_pid=
trap 'kill $serve_pid "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
go build -o "$dir/quiver" ./cmd/quiver
go build -o "$dir/benchpush" ./internal/cmd/benchpush
revs=head
if [ -n "${BASE:-}" ]; then
	mkdir "$dir/base"
	git archive "$BASE" | tar -x -C "$dir/base"
	(cd "$dir/base" && go build -o "$dir/quiver-base" ./cmd/quiver)
	revs="base head"
fi
ln -s "$dir/quiver" "$dir/quiver-head"
export QUIVER_ONLINE="redis://127.0.0.1:$port/0"
"$dir/quiver" init "$dir/shop" --project shop >/dev/null
rm "$dir/shop/features/churn.yaml" # no model: serve needs no ONNX Runtime
cat >"$dir/shop/features/live.yaml" <<YAML
sources:
  - name: live_events
    push: {}
    timestamp_field: event_ts
  - name: clicks_stream
    kafka: { brokers: ["127.0.0.1:$kafka_port"], topic: clicks, fields: { user_id: uid } }
    timestamp_field: ts
feature_views:
  - name: user_live
    entities: [user]
    source: live_events
    features: [{ name: clicks, type: int64 }, { name: page, type: string }]
  - name: user_stream
    entities: [user]
    source: clicks_stream
    features: [{ name: clicks, type: int64 }, { name: page, type: string }]
YAML
"$dir/quiver" -C "$dir/shop" apply >/dev/null

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, $(redis-server --version | cut -d' ' -f3), $(go version | cut -d' ' -f3), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## redis-benchmark pipelined HSET (ceiling), pinned to CPU $load_cpu"
taskset -c "$load_cpu" redis-benchmark -p "$port" -P 64 -c 4 -n 1000000 -r 100000 --csv HSET 'bench:__rand_int__' f v | tail -1
echo "## quiver serve pinned to CPU $server_cpu (push log: $dir/shop/.quiver/push-log, fsynced), load generator to CPU $load_cpu"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
value=$(head -c 148 /dev/zero | tr '\0' v) # scripts/bench.sh's ceiling: one encoded 10-feature row
for ((r = 0; r < ${REPS:-1}; r++)); do
	order=$revs
	if ((r % 2 == 1)); then order=$(echo "$revs" | tr ' ' '\n' | tac | xargs); fi
	for rev in $order; do
		redis-cli -p "$port" flushall >/dev/null
		hset=$(taskset -c "$load_cpu" redis-benchmark -p "$port" -c 50 -P 64 -r 100000 -n 2000000 --csv \
			HSET 'bench:h:__rand_int__' view_0 "$value" | tail -1 | cut -d, -f2 | tr -d '"')
		redis-cli -p "$port" flushall >/dev/null
		echo "# $rev: ceiling redis-benchmark -c 50 -P 64 HSET (148-byte value): $hset requests/s; load $(cut -d' ' -f1 /proc/loadavg)"
		taskset -c "$server_cpu" "$dir/quiver-$rev" -C "$dir/shop" serve --addr "127.0.0.1:$grpc_port" --metrics-addr "" \
			--max-recv-bytes 64MiB --push-commit-interval 5s 2>"$dir/serve.log" &
		serve_pid=$!
		"$dir/quiver" health --server "127.0.0.1:$grpc_port" --wait 30s >/dev/null
		for c in ${CONCURRENCY:-1 4}; do
			s0=$(ticks "$serve_pid") r0=$(ticks "$pid")
			out=$(taskset -c "$load_cpu" "$dir/benchpush" push -server "127.0.0.1:$grpc_port" -rows "${ROWS:-200000}" \
				-batch "${BATCH:-1000}" -concurrency "$c")
			s1=$(ticks "$serve_pid") r1=$(ticks "$pid")
			rate=$(echo "$out" | grep -oE '[0-9]+ rows/s' | cut -d' ' -f1)
			echo "$rev $out; ÷ ceiling $(python3 -c "print(round($rate / $hset, 3))"); serve CPU $(python3 -c "print(round(($s1 - $s0) * 1e4 / ${ROWS:-200000}, 2))") µs/row, redis CPU $(python3 -c "print(round(($r1 - $r0) * 1e4 / ${ROWS:-200000}, 2))") µs/row"
		done
		kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=
	done
done
[ -n "${PUSH_ONLY:-}" ] && exit 0
echo "## quiver stream pinned to CPU $server_cpu, kfake and producer to CPU $load_cpu"
taskset -c "$load_cpu" "$dir/benchpush" stream -quiver "$dir/quiver" -cpu "$server_cpu" -dir "$dir/shop" \
	-port "$kafka_port" -metrics-port $((port + 3)) -rate "${RATE:-5000}" -seconds "${SECONDS_STREAM:-20}"
