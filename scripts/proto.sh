#!/usr/bin/env bash
# Regenerates the Go code for every .proto file under proto/ (committed beside the .proto).
# Also generates the HTTP/JSON gateway of the serving API (grpc-gateway; bindings in
# proto/quiver/serving/v1/serving_http.yaml). Needs protoc and the well-known types (Debian:
# apt-get install -y protobuf-compiler libprotobuf-dev); the Go plugins are pinned in go.mod's
# tool directive.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v protoc >/dev/null || { echo "proto.sh: protoc not found; install it with: apt-get install -y protobuf-compiler libprotobuf-dev" >&2; exit 1; }
wkt=""
for d in /usr/include /usr/local/include; do
	[ -f "$d/google/protobuf/timestamp.proto" ] && wkt=$d && break
done
[ -n "$wkt" ] || { echo "proto.sh: google/protobuf/timestamp.proto not found; install it with: apt-get install -y libprotobuf-dev" >&2; exit 1; }

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc
go build -o "$bin/protoc-gen-grpc-gateway" github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway

mapfile -t files < <(cd proto && find . -name '*.proto' | sed 's|^\./||' | sort)
PATH="$bin:$PATH" protoc -I proto -I "$wkt" \
	--go_out=proto --go_opt=paths=source_relative \
	--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
	"${files[@]}"
PATH="$bin:$PATH" protoc -I proto -I "$wkt" \
	--grpc-gateway_out=proto \
	--grpc-gateway_opt=paths=source_relative,grpc_api_configuration=proto/quiver/serving/v1/serving_http.yaml \
	quiver/serving/v1/serving.proto
echo "proto.sh: generated Go for ${files[*]}"
