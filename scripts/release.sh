#!/usr/bin/env bash
# scripts/release.sh [DIST] — the release binaries of quiver, built reproducibly into DIST
# (default dist/):
#
#   quiver-VERSION-linux-amd64         cgo on: ONNX Runtime models (dlopen of libonnxruntime);
#                                      needs glibc >= 2.34 (Debian 12, Ubuntu 22.04, RHEL 9)
#   quiver-VERSION-linux-arm64         pure Go, static: every feature but ONNX Runtime models
#   quiver-VERSION-darwin-arm64        pure Go: the same
#   quiver-VERSION-OS-ARCH.cdx.json    the CycloneDX 1.6 SBOM of each binary (modules linked
#                                      into it, the Go toolchain, detected licenses)
#   SHA256SUMS                         sha256sum of every file above
#
# Reproducible: the same commit, Go toolchain and C compiler give the same bytes in any
# checkout directory (-trimpath, -buildvcs=false, the version stamped with -X, every variable
# that changes the output pinned here). scripts/release-check.sh builds twice and compares.
#
# Environment: VERSION (default: git describe --tags --always --dirty), GO (default go),
# TARGETS (default "linux/amd64 linux/arm64 darwin/arm64"), CC_LINUX_ARM64 (a C
# cross-compiler, e.g. aarch64-linux-gnu-gcc: builds linux/arm64 with cgo, and so with ONNX
# Runtime, instead of pure Go).
set -euo pipefail

cd "$(dirname "$0")/.."
DIST=${1:-dist}
GO=${GO:-go}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
TARGETS=${TARGETS:-linux/amd64 linux/arm64 darwin/arm64}
# The SBOM generator, pinned; installed once into a tools directory (go install pkg@version:
# the module proxy, checked against the checksum database).
CYCLONEDX_GOMOD=github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0
TOOLS=${QUIVER_CACHE:-$HOME/.cache/quiver}/tools

case "$VERSION" in
*[!A-Za-z0-9._+-]*) echo "release: VERSION $VERSION: use letters, digits and . _ + - only" >&2; exit 2 ;;
esac

mkdir -p "$DIST" "$TOOLS"
if [ ! -x "$TOOLS/cyclonedx-gomod" ]; then
	(unset GOOS GOARCH; GOBIN="$(cd "$TOOLS" && pwd)" CGO_ENABLED=0 "$GO" install "$CYCLONEDX_GOMOD")
fi

# Everything that reaches the output is set here, not inherited.
export GOFLAGS=-mod=readonly GOAMD64=v1 GOARM64=v8.0 GOEXPERIMENT= CGO_CFLAGS="-O2 -g" CGO_LDFLAGS="-O2 -g" CGO_CPPFLAGS= CGO_CXXFLAGS=
unset CC

files=()
for target in $TARGETS; do
	goos=${target%/*} goarch=${target#*/}
	cgo=0 cc=
	case "$target" in
	linux/amd64) cgo=1 cc=gcc ;;
	linux/arm64) if [ -n "${CC_LINUX_ARM64:-}" ]; then cgo=1 cc=$CC_LINUX_ARM64; fi ;;
	linux/* | darwin/*) ;;
	*) echo "release: target $target is not one this script builds" >&2; exit 2 ;;
	esac
	out="quiver-$VERSION-$goos-$goarch"
	echo "release: $out (cgo=$cgo)" >&2
	env GOOS="$goos" GOARCH="$goarch" CGO_ENABLED=$cgo ${cc:+CC=$cc} "$GO" build -trimpath -buildvcs=false \
		-ldflags "-s -w -X main.Version=$VERSION" -o "$DIST/$out" ./cmd/quiver
	# The SBOM of the binary itself: what `go version -m` says it links, nothing else.
	"$TOOLS/cyclonedx-gomod" bin -json -licenses -std -noserial -notimestamp -version "$VERSION" \
		-output "$DIST/$out.cdx.json" "$DIST/$out" 2>/dev/null
	files+=("$out" "$out.cdx.json")
done
(cd "$DIST" && sha256sum "${files[@]}" >SHA256SUMS && sha256sum -c --quiet SHA256SUMS)
ls -l "$DIST" >&2
