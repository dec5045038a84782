#!/usr/bin/env bash
# Makes the virtual env of the Python client's tools and tests (grpcio-tools, pytest, ... at
# the exact versions of python/requirements-dev.txt) and prints its path. It is cached under
# ${QUIVER_CACHE:-$HOME/.cache/quiver}/venv-client and made again only when the requirements
# or the interpreter change. PYTHON picks the interpreter (default python3; 3.10 or later).
#
#   venv=$(scripts/python-venv.sh) && "$venv/bin/python" -m pytest python/tests
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/python/requirements-dev.txt"
cache="${QUIVER_CACHE:-$HOME/.cache/quiver}"
venv="$cache/venv-client"
python=${PYTHON:-python3}

command -v "$python" >/dev/null || { echo "python-venv.sh: $python not found; install Python 3.10 or later (Debian: apt-get install -y python3 python3-venv)" >&2; exit 1; }
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
	{ echo "python-venv.sh: $python is Python $("$python" -c 'import platform; print(platform.python_version())'); the client needs 3.10 or later (set PYTHON)" >&2; exit 1; }

mkdir -p "$cache"
exec 9>"$cache/venv-client.lock" # one maker at a time (make -j runs python-proto-check and python-test together)
flock 9
want=$({ "$python" -c 'import sys; print(sys.executable, sys.version)'; cat "$req"; } | sha256sum | cut -d' ' -f1)
stamp="$venv/.quiver-requirements-sha256"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
	echo "$venv"
	exit 0
fi
rm -rf "$venv"
"$python" -m venv "$venv" >&2 || { echo "python-venv.sh: $python -m venv failed (Debian: apt-get install -y python3-venv)" >&2; exit 1; }
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2
echo "$want" >"$stamp"
echo "$venv"
