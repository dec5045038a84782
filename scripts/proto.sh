#!/usr/bin/env bash
# Regenerates the Go code for every .proto file under proto/ (committed beside the .proto).
# Needs protoc (Debian: apt-get install -y protobuf-compiler); the Go plugins are pinned in
# go.mod's tool directive and run through `go tool`.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v protoc >/dev/null || { echo "proto.sh: protoc not found; install it with: apt-get install -y protobuf-compiler" >&2; exit 1; }

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc

mapfile -t files < <(cd proto && find . -name '*.proto' | sed 's|^\./||' | sort)
PATH="$bin:$PATH" protoc -I proto \
	--go_out=proto --go_opt=paths=source_relative \
	--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
	"${files[@]}"
echo "proto.sh: generated Go for ${files[*]}"
