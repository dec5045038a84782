#!/usr/bin/env bash
# Regenerates the Python stubs of the serving API (proto/quiver/serving/v1/serving.proto) into
# python/src/quiver/serving/v1/ (committed): messages (serving_pb2.py), type stubs
# (serving_pb2.pyi) and the gRPC client (serving_pb2_grpc.py). protoc and the well-known types
# come from grpcio-tools, pinned in python/requirements-dev.txt together with the protobuf
# runtime its generated code checks for (python/pyproject.toml's protobuf range follows it).
# The proto package quiver.serving.v1 lands inside the client's own `quiver` package, so the
# generated imports (`from quiver.serving.v1 import serving_pb2`) resolve as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(./scripts/python-venv.sh)
out=python/src
dir=$out/quiver/serving/v1
rm -f "$dir"/serving_pb2.py "$dir"/serving_pb2.pyi "$dir"/serving_pb2_grpc.py
wkt=$("$venv/bin/python" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
"$venv/bin/python" -m grpc_tools.protoc -I proto -I "$wkt" \
	--python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
	quiver/serving/v1/serving.proto
echo "python-proto.sh: generated $dir/serving_pb2{.py,.pyi,_grpc.py} with grpcio-tools $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))')"
