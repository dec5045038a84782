#!/usr/bin/env bash
# Materialization benchmark (docs/BENCHMARKS.md): a generated ROWS-row x 10-feature Parquet
# source over ENTITIES entities, materialized by `quiver materialize` into the Iceberg offline
# store and a throwaway redis-server, with peak RSS from /usr/bin/time; then the Redis ceiling
# (redis-benchmark -P 64 HSET) against the same server.
#
#   ROWS=5000000 ENTITIES=1000000 scripts/bench-materialize.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${ROWS:-5000000}
ENTITIES=${ENTITIES:-1000000}
work=${WORK:-$(mktemp -d)}
cleanup() { [[ -n "${redis_pid:-}" ]] && kill "$redis_pid" 2>/dev/null; [[ -z "${WORK:-}" ]] && rm -rf "$work"; true; }
trap cleanup EXIT

(cd "$root" && go build -o "$work/quiver" ./cmd/quiver && go build -o "$work/gendata" ./internal/cmd/gendata)
src="$work/src-$ROWS-$ENTITIES.parquet"
[[ -f "$src" ]] || "$work/gendata" -rows "$ROWS" -entities "$ENTITIES" -features 10 -days 30 -end 2026-11-01 -out "$src"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

repo="$work/repo"
rm -rf "$repo" && mkdir -p "$repo/features"
printf 'project: bench\nonline: redis://127.0.0.1:%s/0\ndefinitions: [features]\n' "$port" >"$repo/quiver.yaml"
{
	printf 'entities:\n  - name: entity\n    join_keys: [{ name: entity_id, type: int64 }]\n'
	printf 'sources:\n  - name: src\n    parquet: { path: %s }\n    timestamp_field: event_ts\n    created_timestamp_field: created_ts\n' "$src"
	printf 'feature_views:\n  - name: bench\n    entities: [entity]\n    source: src\n    features:\n'
	for i in $(seq 0 9); do
		if ((i % 2 == 0)); then t=float64; else t=int64; fi
		printf '      - { name: f%d, type: %s }\n' "$i" "$t"
	done
} >"$repo/features/bench.yaml"
"$work/quiver" -C "$repo" apply >/dev/null

echo "== quiver materialize: $ROWS rows x 10 features over $ENTITIES entities -> Iceberg + Redis"
/usr/bin/time -v "$work/quiver" -C "$repo" -o json materialize --start 2026-10-01 --end 2026-11-01 >"$work/out.json" 2>"$work/time.txt"
cat "$work/out.json"
grep -E "Maximum resident|Elapsed \(wall" "$work/time.txt"
echo "== redis-benchmark ceiling (same server): HSET, pipelined 64, 50 clients"
redis-cli -p "$port" flushall >/dev/null
redis-benchmark -p "$port" -c 50 -P 64 -r "$ENTITIES" -n 5000000 --csv HSET 'bench:h:__rand_int__' view_0 "$(head -c 100 /dev/zero | tr '\0' x)"
