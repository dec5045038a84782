#!/usr/bin/env bash
# Regenerates the Go code of Feast's registry protobuf definitions that `quiver import feast`
# reads (definitions/feast/internal/proto: the .proto files, copied unchanged from the Feast
# release, and the generated *.pb.go beside them, both committed).
#
#   scripts/feast-proto.sh            # regenerate the Go code from the committed .proto files
#   scripts/feast-proto.sh --update   # first copy the .proto files again from the Feast sdist
#                                     # on PyPI (feast==$FEAST_VERSION), then regenerate
#
# Only Registry.proto and what it imports are kept. Feast's own go_package options name
# github.com/feast-dev/feast; the M options below map each file to Quiver's package instead.
# Needs protoc and the well-known types (Debian: apt-get install -y protobuf-compiler
# libprotobuf-dev); protoc-gen-go is pinned in go.mod's tool directive. `make feast-proto-check`
# runs this and fails when the committed code differs.
set -euo pipefail
cd "$(dirname "$0")/.."

FEAST_VERSION=0.67.0
# sha256 of feast-0.67.0.tar.gz as published on PyPI.
FEAST_SDIST_SHA256=46f01aa649550e67b00fdf58f9f6dd3679925d908b9bfcac04e3050d49ff5523
dir=definitions/feast/internal/proto
gopkg=github.com/quiverfs/quiver/$dir

if [[ "${1:-}" == "--update" ]]; then
	venv="$(./scripts/feast.sh)"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	"$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
		"feast==$FEAST_VERSION" -d "$tmp" >&2
	sdist="$tmp/feast-$FEAST_VERSION.tar.gz"
	got=$(sha256sum "$sdist" | cut -c1-64)
	[[ "$got" == "$FEAST_SDIST_SHA256" ]] || { echo "feast-proto.sh: sha256 of $sdist is $got, want $FEAST_SDIST_SHA256" >&2; exit 1; }
	tar -xzf "$sdist" -C "$tmp"
	src="$tmp/feast-$FEAST_VERSION/protos"
	# The closure of feast/core/Registry.proto's imports.
	mapfile -t closure < <(cd "$src" && python3 - <<'PY'
import re
seen, todo = set(), ["feast/core/Registry.proto"]
while todo:
    f = todo.pop()
    if f in seen or f.startswith("google/"):
        continue
    seen.add(f)
    todo += re.findall(r'^import "([^"]+)";', open(f).read(), re.M)
print("\n".join(sorted(seen)))
PY
	)
	rm -rf "$dir/feast"
	for f in "${closure[@]}"; do
		install -D -m 0644 "$src/$f" "$dir/$f"
	done
	install -m 0644 "$tmp/feast-$FEAST_VERSION/LICENSE" "$dir/LICENSE"
fi

command -v protoc >/dev/null || { echo "feast-proto.sh: protoc not found; install it with: apt-get install -y protobuf-compiler libprotobuf-dev" >&2; exit 1; }
wkt=""
for d in /usr/include /usr/local/include; do
	[ -f "$d/google/protobuf/timestamp.proto" ] && wkt=$d && break
done
[ -n "$wkt" ] || { echo "feast-proto.sh: google/protobuf/timestamp.proto not found; install it with: apt-get install -y libprotobuf-dev" >&2; exit 1; }

bin=$(mktemp -d)
trap 'rm -rf "$bin" ${tmp:-}' EXIT
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go

mapfile -t files < <(cd "$dir" && find feast -name '*.proto' | sort)
[[ ${#files[@]} -gt 0 ]] || { echo "feast-proto.sh: no .proto files under $dir (run with --update)" >&2; exit 1; }
opts=()
for f in "${files[@]}"; do
	pkg=$(dirname "$f")
	opts+=("--go_opt=M$f=$gopkg/$pkg;$(basename "$pkg")")
done
find "$dir/feast" -name '*.pb.go' -delete
PATH="$bin:$PATH" protoc -I "$dir" -I "$wkt" --go_out="$dir" --go_opt=paths=source_relative "${opts[@]}" "${files[@]}"
echo "feast-proto.sh: generated Go for ${#files[@]} Feast $FEAST_VERSION .proto files under $dir"
