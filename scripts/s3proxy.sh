#!/usr/bin/env bash
# Installs S3Proxy, the S3-compatible object store the tests start (internal/testenv), and prints
# its directory.
#
#   scripts/s3proxy.sh                # cache: ${QUIVER_CACHE:-$HOME/.cache/quiver}/s3proxy
#   QUIVER_WRITE_SUMS=1 scripts/s3proxy.sh   # after a version bump: rewrite scripts/s3proxy/SHA256SUMS
#
# S3Proxy (github.com/gaul/s3proxy, Apache-2.0) serves the S3 API over a jclouds blob store; the
# tests use its filesystem store. It ships as one self-contained jar on Maven Central,
# org.gaul:s3proxy:VERSION:jar-with-dependencies, which Maven resolves with scripts/s3proxy/pom.xml
# into DIR/lib, checking Maven Central's checksum and keeping the download in ~/.m2; the jar is
# then checked against the SHA-256 in scripts/s3proxy/SHA256SUMS. It runs on Java 17 or newer.
# Re-running is a no-op once installed.
set -euo pipefail

S3PROXY_VERSION=4.1.0

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${QUIVER_CACHE:-$HOME/.cache/quiver}"
dir="$cache/s3proxy/$S3PROXY_VERSION"
if [[ -f "$dir/.installed" && -z "${QUIVER_WRITE_SUMS:-}" ]]; then
	echo "$dir"
	exit 0
fi
command -v mvn >/dev/null || { echo "s3proxy.sh: mvn not found (Debian: apt-get install -y maven)" >&2; exit 1; }

source "$root/scripts/lib/maven.sh"
mkdir -p "$cache/s3proxy"
exec 9>"$cache/s3proxy/.lock" # one install at a time (parallel test binaries may call this script)
flock 9
if [[ -f "$dir/.installed" && -z "${QUIVER_WRITE_SUMS:-}" ]]; then
	echo "$dir"
	exit 0
fi
stage="$(mktemp -d "$cache/s3proxy/.stage-XXXXXX")"
trap 'rm -rf "$stage"' EXIT

maven_copy "$root/scripts/s3proxy/pom.xml" "$stage/lib" -Ds3proxy.version="$S3PROXY_VERSION"
check_sums "$stage" "$root/scripts/s3proxy/SHA256SUMS" "S3Proxy $S3PROXY_VERSION"
echo "$S3PROXY_VERSION" >"$stage/.installed"
chmod 755 "$stage" # mktemp made it 0700
rm -rf "$dir"
mv "$stage" "$dir"
trap - EXIT
echo "$dir"
