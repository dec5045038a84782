#!/usr/bin/env bash
# Scale-out benchmark (issue 24, docs/BENCHMARKS.md "Scale-out on Trino"): ROWS rows of an
# Iceberg source table (written by Trino into the catalog Quiver shares) materialized in
# process, through Trino 483 (one node) in one run, in 1-day chunks two at a time, the same
# backfill killed -9 halfway and resumed, and on two Trino nodes, with an order-independent
# checksum of each resulting table and of each Redis database (all must equal the in-process
# run's); then the online load into Redis with 1, 2 and 4 workers, each checked the same way.
# Prints rows/s (entities/s online).
#
#   ROWS=20000000 scripts/bench-scaleout.sh      # the 20 M-row run: long, not a CI test
#   TRINO_HEAP=4G ROWS=20000000 ...               # Trino's heap (default 1G is enough for 2 M)
#   CHUNK=1h ROWS=300000 ...                      # the backfills' --chunk (default 1d)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ROWS=${ROWS:-2000000}
mkdir -p bin
go build -o bin/testenv ./internal/testenv/cmd/testenv
dir=$(mktemp -d "${TMPDIR:-/tmp}/quiver-testenv-XXXXXX")
trap 'bin/testenv stop "$dir"' EXIT
trap 'exit 130' INT TERM
export QUIVER_TESTENV_DIR=$dir QUIVER_TRINO_HOME=$(./scripts/trino.sh) QUIVER_BENCH_ROWS=$ROWS
export QUIVER_BENCH_TRINO_HEAP=${TRINO_HEAP:-} QUIVER_BENCH_CHUNK=${CHUNK:-1d}
echo "== BenchmarkScaleOut: $ROWS rows, $(nproc) cores"
# The whole output goes to $LOG (default under the testenv directory's parent); the figures,
# and any failure's message, are printed.
log=${LOG:-$(dirname "$dir")/bench-scaleout-$ROWS.log}
echo "== full output: $log"
go test -count=1 -run '^$' -bench '^BenchmarkScaleOut$' -benchtime 1x -timeout 3h -v ./cmd/quiver 2>&1 | tee "$log" |
	grep -E -A3 'scaleout_bench_test|BenchmarkScaleOut|Error:|Messages:|^(ok|FAIL|PASS)'
