#!/usr/bin/env bash
# Instructions redis-server executes per row written through online/redis's Store.Write
# (internal/cmd/writebench, materialize's shape), counted with callgrind: unlike CPU time on
# the shared 2-core machine, they do not move with its load. Four builds of the store, each
# writing N rows of N new entities (a first load), then 2N rows over N other entities (a first
# load and one rewrite of every entity with rows one minute newer), with and without TTL:
#   base    the store as of $BASE (default fb30979: main before issue 29's write work)
#   script  this tree with the scriptless first load switched off (every row through the script)
#   hsetnx  this tree without RESTORE: a first load of a view without TTL by MULTI of EXISTS and
#           HSETNX (writeNew), every other row through the script (the head of issue 29's first round)
#   head    this tree (a first load by RESTORE)
# Each measured write is bracketed by callgrind_control -z / -d on the server. Prints one line
# per dump: the dump's name and the instructions executed, then per build the instructions a
# row: "first" = first-load dump ÷ N, "rewrite" = (both − first) ÷ N. See docs/BENCHMARKS.md,
# "Issue 29". KEEP=1 keeps the dumps (for callgrind_annotate) and prints their folder.
#
#   online/redis/bench-write-callgrind.sh            # N=20000: ~5 minutes
set -euo pipefail
cd "$(dirname "$0")/../.."
base=${BASE:-fb30979}
n=${N:-20000}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
vg=
cleanup() {
	[ -n "$vg" ] && kill "$vg" 2>/dev/null && wait "$vg" 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "# dumps kept in $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
build() { # build NAME TREE: writebench of this tree against TREE's store
	rm -rf "$2/internal/cmd/writebench"
	cp -r internal/cmd/writebench "$2/internal/cmd/writebench"
	(cd "$2" && go build -o "$dir/wb-$1" ./internal/cmd/writebench)
}
mkdir "$dir/base" "$dir/script" "$dir/hsetnx"
git archive "$base" | tar -x -C "$dir/base"
git ls-files -z | xargs -0 tar -c | tar -x -C "$dir/script"
sed -i 's/(restore || v.TTL == 0) \&\& s.firstLoads.try(c.field) {/false \&\& (restore || v.TTL == 0) \&\& s.firstLoads.try(c.field) {/' "$dir/script/online/redis/write.go"
grep -q 'false && (restore || v.TTL == 0)' "$dir/script/online/redis/write.go"
git ls-files -z | xargs -0 tar -c | tar -x -C "$dir/hsetnx"
sed -i 's/if restore := !s.noRestore.Load(); /if restore := false; /' "$dir/hsetnx/online/redis/write.go"
grep -q 'if restore := false; ' "$dir/hsetnx/online/redis/write.go"
build base "$dir/base"
build script "$dir/script"
build hsetnx "$dir/hsetnx"
go build -o "$dir/wb-head" ./internal/cmd/writebench

valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" redis-server --port "$port" --bind 127.0.0.1 --save '' \
	--appendonly no --dir "$dir" >"$dir/vg.log" 2>&1 &
vg=$!
for _ in $(seq 600); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
pid=$(redis-cli -p "$port" info server | grep process_id | cut -d: -f2 | tr -d '\r')
echo "# $(date -u +%FT%TZ) redis $(redis-server --version | cut -d' ' -f3 | cut -d= -f2), head $(git rev-parse --short HEAD), base $(git rev-parse --short "$base"); N=$n rows"
for ttl in 0 168h; do
	for rev in base script hsetnx head; do
		# Each measured write starts from an empty server, so no run pays for growing (rehashing)
		# a keyspace the runs before it filled.
		redis-cli -p "$port" flushall >/dev/null
		callgrind_control -z "$pid" >/dev/null
		"$dir/wb-$rev" -addr "127.0.0.1:$port" -shape materialize -rows "$n" -entities "$n" -ttl "$ttl" -project "p$rev$ttl" >/dev/null
		callgrind_control -d "first-$rev-ttl=$ttl" "$pid" >/dev/null
		redis-cli -p "$port" flushall >/dev/null
		callgrind_control -z "$pid" >/dev/null
		"$dir/wb-$rev" -addr "127.0.0.1:$port" -shape materialize -rows $((2 * n)) -entities "$n" -ttl "$ttl" -project "q$rev$ttl" >/dev/null
		callgrind_control -d "both-$rev-ttl=$ttl" "$pid" >/dev/null
	done
done
for f in "$dir"/cg.out.*; do
	echo "$(grep -m1 '^desc: Trigger' "$f" | sed 's/.*dump //') $(grep -m1 '^summary:' "$f" | awk '{print $2}')"
done | sort | tee "$dir/summary"
awk -v n="$n" '{split($1, a, "-"); v[a[1] " " a[2] " " a[3]] = $2}
	END {for (k in v) {split(k, a, " "); if (a[1] == "first") printf "%s %s first %.0f rewrite %.0f\n", a[2], a[3], v[k] / n, (v["both " a[2] " " a[3]] - v[k]) / n}}' "$dir/summary" | sort
