#!/usr/bin/env bash
# `quiver dataset create` against DuckDB on scripts/bench.sh's shape (target 4): 2 views of 10
# features (10 M + 5 M offline rows over 1 M entities), 2 M entity rows, every CPU; DuckDB's
# ASOF LEFT JOIN of the same Iceberg data files written as zstd Parquet (scripts/duckdb/asof.mjs).
# The two alternate REPS times (default 3), wall time, CPU time (user + sys) and peak RSS from
# /usr/bin/time; on a loaded machine the CPU ratio is the steadier figure. With
# BASE=rev it builds `quiver` as of rev too and runs base, head and DuckDB in turn each rep, so
# a before/after is one run. The sources and the materialized repo are kept in $WORK (default
# .cache/bench, shared with scripts/bench.sh). Every build writes the same rows, so every
# dataset's content id is printed: they must all be the same. See docs/BENCHMARKS.md, "Issue 29".
#
#   scripts/bench-dataset.sh
#   BASE=b301d07 REPS=3 scripts/bench-dataset.sh
#   QUIVER=/path/to/older/quiver REPS=5 scripts/bench-dataset.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=${WORK:-$PWD/.cache/bench}
mkdir -p "$work/bin" "$work/ds/repo/features"
go build -o "$work/bin/gendata" ./internal/cmd/gendata
quiver=${QUIVER:-}
if [ -z "$quiver" ]; then
	go build -o "$work/bin/quiver" ./cmd/quiver
	quiver=$work/bin/quiver
fi
builds="head=$quiver"
if [ -n "${BASE:-}" ]; then
	src=$(mktemp -d)
	trap 'rm -rf "$src"' EXIT
	git archive "$BASE" | tar -x -C "$src"
	(cd "$src" && go build -o "$work/bin/quiver-base" ./cmd/quiver)
	builds="base=$work/bin/quiver-base $builds"
fi
[ -d scripts/duckdb/node_modules ] || (cd scripts/duckdb && npm ci --no-audit --no-fund --silent)
small=$work/src-5000000-1000000.parquet ds=$work/src-10000000-1000000-g.parquet ents=$work/entities-2000000-1000000.parquet
[ -f "$small" ] || "$work/bin/gendata" -rows 5000000 -entities 1000000 -features 10 -days 30 -end 2026-11-01 -seed 1 -feature-prefix f -out "$small"
[ -f "$ds" ] || "$work/bin/gendata" -rows 10000000 -entities 1000000 -features 10 -days 30 -end 2026-11-01 -seed 2 -feature-prefix g -out "$ds"
[ -f "$ents" ] || "$work/bin/gendata" -entity-rows 2000000 -entities 1000000 -days 30 -end 2026-11-01 -out "$ents"
repo=$work/ds/repo
if [ ! -d "$repo/.quiver" ]; then
	printf 'project: bench\ndefinitions: [features]\nallowed_paths: [%s]\n' "$work" >"$repo/quiver.yaml"
	{
		printf 'entities:\n  - name: entity\n    join_keys: [{ name: entity_id, type: int64 }]\nsources:\n'
		for s in small:"$small" ds:"$ds"; do
			printf '  - name: %s\n    parquet: { path: %s }\n    timestamp_field: event_ts\n    created_timestamp_field: created_ts\n' "${s%%:*}" "${s#*:}"
		done
		printf 'feature_views:\n'
		for v in m_small:small:f ds:ds:g; do
			IFS=: read -r name src prefix <<<"$v"
			printf '  - name: %s\n    entities: [entity]\n    source: %s\n    online: false\n    features:\n' "$name" "$src"
			for i in $(seq 0 9); do
				if ((i % 2 == 0)); then t=float64; else t=int64; fi
				printf '      - { name: %s%d, type: %s }\n' "$prefix" "$i" "$t"
			done
		done
		printf 'feature_services:\n  - name: train\n    features: ["ds:*", "m_small:*"]\n'
	} >"$repo/features/bench.yaml"
	"$quiver" -C "$repo" apply >/dev/null
	"$quiver" -C "$repo" materialize --start 2026-10-01 --end 2026-11-01 m_small ds >/dev/null
fi
wh=$repo/.quiver/warehouse/quiver_bench.db
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, $(go version | cut -d' ' -f3), head $(git rev-parse --short HEAD)"
echo "| run | build | Quiver s | Quiver CPU s | Quiver peak RSS MiB | DuckDB s (SQL s) | DuckDB CPU s | DuckDB peak RSS MiB | DuckDB ÷ Quiver | CPU ratio | load | content id |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for r in $(seq "${REPS:-3}"); do
	rows=()
	for b in $builds; do
		/usr/bin/time -f '%e %M %U %S' -o "$work/ds/q.time" "${b#*=}" -C "$repo" -o json dataset create "bench$r$RANDOM" --service train --entities "$ents" >"$work/ds/q.json"
		read -r qs qk qu qy <"$work/ds/q.time"
		id=$(python3 -c "import json; print(json.load(open('$work/ds/q.json'))['content_id'][7:19])")
		rows+=("${b%%=*} $qs $(python3 -c "print(round($qu + $qy, 2))") $((qk / 1024)) $(cut -d' ' -f1 /proc/loadavg) $id")
	done
	THREADS=$(nproc) /usr/bin/time -f '%e %M %U %S' -o "$work/ds/d.time" node scripts/duckdb/asof.mjs "$work/ds/duck.parquet" "$ents" \
		"ds=$wh/ds/data/**/*.parquet:g0,g1,g2,g3,g4,g5,g6,g7,g8,g9" "m_small=$wh/m_small/data/**/*.parquet:f0,f1,f2,f3,f4,f5,f6,f7,f8,f9" >"$work/ds/duck.json"
	read -r ds_ dk du dy <"$work/ds/d.time"
	dc=$(python3 -c "print(round($du + $dy, 2))")
	sql=$(python3 -c "import json; print(round(json.load(open('$work/ds/duck.json'))['seconds'], 2))")
	for row in "${rows[@]}"; do
		read -r b qs qc qm load id <<<"$row"
		echo "| $r | $b | $qs | $qc | $qm | $ds_ ($sql) | $dc | $((dk / 1024)) | $(python3 -c "print(round($ds_ / $qs, 3))") | $(python3 -c "print(round($dc / $qc, 3))") | $load | $id |"
	done
done
