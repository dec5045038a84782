#!/usr/bin/env bash
# scripts/release-check.sh — checks that the release is reproducible: builds it twice with
# scripts/release.sh, once from this checkout and once from a copy of it at another path
# (tracked and untracked, not ignored, files), into two different directories, and fails
# unless both SHA256SUMS verify and every file — binaries, SBOMs, SHA256SUMS — is identical
# byte for byte. Prints the sizes of the binaries.
#
# The two builds share the Go build cache, so this proves the link and the paths
# reproducible; RELEASE_CHECK_COLD=1 gives the second build an empty cache of its own, so every
# package is compiled again and compared too (a cold build of every target: slow).
#
# Environment: as scripts/release.sh (VERSION, TARGETS, GO, CC_LINUX_ARM64); KEEP=1 keeps
# the work directory.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
export VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
work=$(mktemp -d "${TMPDIR:-/tmp}/quiver-release-check.XXXXXX")
if [ -z "${KEEP:-}" ]; then
	trap 'rm -rf "$work"' EXIT
fi

echo "release-check: build 1 from $root into $work/a" >&2
scripts/release.sh "$work/a"

echo "release-check: copy the checkout to $work/src" >&2
mkdir -p "$work/src"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
	if [ -e "$f" ]; then printf '%s\0' "$f"; fi
done | (cd "$root" && xargs -0 cp --parents -t "$work/src")

cache_env=()
if [ -n "${RELEASE_CHECK_COLD:-}" ]; then
	mkdir -p "$work/gocache"
	cache_env=(GOCACHE="$work/gocache")
fi
echo "release-check: build 2 from $work/src into $work/b${cache_env:+ (empty build cache)}" >&2
(cd "$work/src" && env "${cache_env[@]}" scripts/release.sh "$work/b")

status=0
(cd "$work/a" && sha256sum -c --quiet SHA256SUMS) || status=1
(cd "$work/b" && sha256sum -c --quiet SHA256SUMS) || status=1
for f in "$work"/a/*; do
	name=$(basename "$f")
	if ! cmp -s "$f" "$work/b/$name"; then
		echo "release-check: $name differs between the two builds" >&2
		status=1
	fi
done
if [ "$(ls "$work/a")" != "$(ls "$work/b")" ]; then
	echo "release-check: the two builds made different files" >&2
	status=1
fi
if [ $status -eq 0 ]; then
	echo "release-check: OK, the two builds are identical ($VERSION):"
	(cd "$work/a" && for f in quiver-*; do case "$f" in *.cdx.json) ;; *) printf '  %-40s %11d bytes  %s\n' "$f" "$(stat -c %s "$f")" "$(file -b "$f" | cut -d, -f1-2)" ;; esac; done)
	cat "$work/a/SHA256SUMS"
fi
exit $status
