#!/usr/bin/env bash
# Installs Feast (PyPI `feast`, pinned below) into a cached Python virtual environment and prints
# the environment's path. `quiver import feast`'s acceptance test and scripts/bench-feast.sh run
# Feast from it.
#
#   scripts/feast.sh        # the venv: ${QUIVER_CACHE:-$HOME/.cache/quiver}/venv-feast
#
# Every package is pinned by scripts/feast/constraints.txt (`pip freeze` of feast==0.67.0 and
# its dependencies on Python 3.11; pip checks each download against PyPI's published hashes).
# Re-running is a no-op (milliseconds) once the environment holds the same pins; a changed
# constraints file or an interrupted install rebuilds it. Needs python3 (3.10 to 3.12) with venv.
set -euo pipefail

FEAST_VERSION=0.67.0

root="$(cd "$(dirname "$0")/.." && pwd)"
constraints="$root/scripts/feast/constraints.txt"
venv="${QUIVER_CACHE:-$HOME/.cache/quiver}/venv-feast"
python="${PYTHON:-python3}"

[[ -f "$constraints" ]] || { echo "feast.sh: $constraints missing" >&2; exit 1; }
want="feast==$FEAST_VERSION $(sha256sum <"$constraints" | cut -c1-64)"
# The stamp is written last: an environment without it (an install killed half-way) is rebuilt.
if [[ -x "$venv/bin/feast" && "$(cat "$venv/.quiver-stamp" 2>/dev/null)" == "$want" ]]; then
	echo "$venv"
	exit 0
fi
command -v "$python" >/dev/null || { echo "feast.sh: $python not found (Debian: apt-get install -y python3 python3-venv)" >&2; exit 1; }

# One install at a time (test binaries and scripts may call this together): the second waits,
# then finds the environment ready.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [[ -x "$venv/bin/feast" && "$(cat "$venv/.quiver-stamp" 2>/dev/null)" == "$want" ]]; then
	echo "$venv"
	exit 0
fi
rm -rf "$venv"
"$python" -m venv "$venv" >&2 || { echo "feast.sh: $python -m venv failed (Debian: apt-get install -y python3-venv)" >&2; exit 1; }
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
	-c "$constraints" "feast==$FEAST_VERSION" >&2 ||
	{ echo "feast.sh: pip install feast==$FEAST_VERSION failed (is PyPI reachable?)" >&2; exit 1; }
echo "$want" >"$venv/.quiver-stamp"
echo "$venv"
