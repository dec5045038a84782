#!/usr/bin/env bash
# Installs SeaweedFS's `weed` binary, the S3-compatible object store the tests start, and prints
# its path.
#
#   scripts/seaweedfs.sh            # cache: ${QUIVER_CACHE:-$HOME/.cache/quiver}/seaweedfs
#
# SeaweedFS publishes no semver tags the Go module proxy can serve, so the module is pinned to a
# pseudo-version and checked against its go.sum hash (h1: is SHA-256 over the module's files).
# `go install module@version` refuses a module whose go.mod has replace directives (SeaweedFS has
# one), so the source is copied out of the module cache and built with `go build` there.
# Re-running is a no-op once installed.
set -euo pipefail

SEAWEEDFS_MODULE=github.com/seaweedfs/seaweedfs
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6 # master of 2026-11-09
SEAWEEDFS_SUM=h1:LOYZFToHq9F7pSR6lkPGfkM8RmHlVFrzndKdhmNZjrU=

cache="${QUIVER_CACHE:-$HOME/.cache/quiver}"
bin="$cache/seaweedfs/$SEAWEEDFS_VERSION/weed"
if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi
command -v go >/dev/null || { echo "seaweedfs.sh: go not found" >&2; exit 1; }
mkdir -p "$cache/seaweedfs"
exec 9>"$cache/seaweedfs/.lock" # one build at a time (parallel test binaries may call this script)
flock 9
if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

tmp="$(mktemp -d)"
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
# Outside any module, so the download touches no go.mod or go.sum.
info="$(cd "$tmp" && go mod download -json "$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION")" ||
	{ echo "seaweedfs.sh: go mod download $SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION failed:" >&2; echo "$info" >&2; exit 1; }
sum="$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",*$/\1/p' <<<"$info")"
src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' <<<"$info")"
[[ "$sum" == "$SEAWEEDFS_SUM" ]] || { echo "seaweedfs.sh: checksum mismatch: got $sum, want $SEAWEEDFS_SUM" >&2; exit 1; }

cp -r "$src" "$tmp/src"
chmod -R u+w "$tmp/src"
mkdir -p "$(dirname "$bin")"
(cd "$tmp/src" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/weed" ./weed) >&2 ||
	{ echo "seaweedfs.sh: go build ./weed failed" >&2; exit 1; }
install -m 0755 "$tmp/weed" "$bin.tmp"
mv "$bin.tmp" "$bin" # atomic: an interrupted install leaves no half-written binary behind
echo "$bin"
