#!/usr/bin/env bash
# Installs the ONNX Runtime shared library Quiver's onnx model runtime loads, and prints its path.
#
#   scripts/onnxruntime.sh [DIR]      # default DIR: .cache/onnxruntime
#
# The library comes from the npm package onnxruntime-node, which ships the official linux
# x64/arm64 CPU build of libonnxruntime.so (npm verifies the tarball's sha512 integrity).
# Version 1.24.x provides the ONNX Runtime C API version 24 that github.com/yalue/onnxruntime_go
# v1.27.0 requests. Re-running is a no-op once installed.
set -euo pipefail

ORT_VERSION=1.24.3
# sha512 integrity of onnxruntime-node-1.24.3.tgz as published on registry.npmjs.org.
ORT_INTEGRITY="${ORT_INTEGRITY:-sha512-JH7+czbc8ALA819vlTgcV+Q214/+VjGeBHDjX81+ZCD0PCVCIFGFNtT0V4sXG/1JXypKPgScQcB3ij/hk3YnTg==}"

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/.cache/onnxruntime}"
case "$(uname -m)" in
x86_64 | amd64) arch=x64 ;;
aarch64 | arm64) arch=arm64 ;;
*) echo "onnxruntime.sh: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
lib="$dir/$ORT_VERSION/linux-$arch/libonnxruntime.so.1"
if [[ -f "$lib" ]]; then
	echo "$lib"
	exit 0
fi
command -v npm >/dev/null || { echo "onnxruntime.sh: npm not found (Debian: apt-get install -y npm)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null 2>&1) ||
	{ echo "onnxruntime.sh: npm pack onnxruntime-node@$ORT_VERSION failed" >&2; exit 1; }
tgz="$tmp/onnxruntime-node-$ORT_VERSION.tgz"
if [[ -n "$ORT_INTEGRITY" ]]; then
	got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
	[[ "$got" == "$ORT_INTEGRITY" ]] || { echo "onnxruntime.sh: integrity mismatch: $got" >&2; exit 1; }
fi
tar -xzf "$tgz" -C "$tmp" "package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
mkdir -p "$(dirname "$lib")"
install -m 0644 "$tmp/package/bin/napi-v6/linux/$arch/libonnxruntime.so.1" "$lib"
echo "$lib"
