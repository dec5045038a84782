#!/usr/bin/env bash
# The whole Quiver loop on embedded defaults (SQLite registry, embedded online store, local
# warehouse), no server needed: init -> apply -> materialize -> dataset -> train -> register and
# alias the model -> serve -> Predict -> the web UI. Set QUIVER_REGISTRY / QUIVER_ONLINE to run the same
# script against Postgres / Redis, and QUIVER_WAREHOUSE=s3://bucket/prefix with the AWS environment
# (AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; docs/deploy.md) to keep
# the warehouse on S3 (cmd/quiver's TestRealS3Warehouse runs that loop against S3Proxy).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
export PATH="$bin:$PATH"
# ONNX Runtime for the onnx model runtime (scripts/onnxruntime.sh installs a pinned release).
export QUIVER_ONNXRUNTIME_LIB=${QUIVER_ONNXRUNTIME_LIB:-$("$root/scripts/onnxruntime.sh")}
work=$(mktemp -d)
server_pid=""
ui_pid=""
cleanup() {
	if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	if [[ -n "$ui_pid" ]]; then kill "$ui_pid" 2>/dev/null || true; wait "$ui_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
repo="$work/shop"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "quiver init: a feature repo with sample activity data and churn labels"
quiver init "$repo" --project shop

step "quiver validate && quiver apply"
quiver -C "$repo" validate
quiver -C "$repo" apply

step "quiver materialize: the source's 30 days into the offline (Iceberg) and online stores"
quiver -C "$repo" materialize --start "$(date -u -d '30 days ago' +%Y-%m-%d)" --end "$(date -u -d tomorrow +%Y-%m-%d)"
quiver -C "$repo" materialize-incremental

step "quiver dataset create: point-in-time-correct training data for the labels"
(cd "$repo" && quiver dataset create churn_train --service churn_v1 --entities data/labels.parquet)
quiver -C "$repo" dataset verify churn_train@v1

step "quiver train churn_train: the Go trainer (no Python), metrics tracked, model registered"
quiver -C "$repo" train churn_train --param epochs=40
run_id=$(quiver -C "$repo" -o json runs list --job churn_train --limit 1 | sed -n 's/.*"id": "\([^"]*\)".*/\1/p' | head -1)
quiver -C "$repo" runs show "$run_id"

step "a second train reuses the dataset (same inputs)"
quiver -C "$repo" train churn_train --param epochs=40 >/dev/null

step "quiver models alias churn 1 production && quiver lineage churn@production"
quiver -C "$repo" models alias churn 1 production
quiver -C "$repo" lineage churn@production

step "on-demand features: checkout_v1 = user_stats:* + cart_features:* (CEL over the request's cart_value and stored spend)"
(cd "$repo" && quiver dataset create checkout_train --service checkout_v1 --entities data/checkouts.parquet)
quiver -C "$repo" -o json dataset show checkout_train@v1 | grep -E '"(name|role|feature)"' | paste - - - | grep feature || true
quiver -C "$repo" train checkout_train --param epochs=40
quiver -C "$repo" models alias churn_checkout 1 production

step "quiver serve, then a Predict call for users 7 and 8"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 16566)
mport=$((port + 1))
quiver -C "$repo" serve --addr "127.0.0.1:$port" --metrics-addr "127.0.0.1:$mport" >"$work/serve.log" 2>&1 &
server_pid=$!
quiver health --server "127.0.0.1:$port" --wait 30s || { cat "$work/serve.log"; exit 1; }
quiver -C "$repo" get-online --server "127.0.0.1:$port" --service churn_v1 --entity user_id=7
quiver -C "$repo" predict --server "127.0.0.1:$port" --model churn@production --entity user_id=7 --entity user_id=8

step "request-time features over gRPC: the same CEL programs as the dataset, with request_context"
quiver -C "$repo" get-online --server "127.0.0.1:$port" --service checkout_v1 --entity user_id=7 --request cart_value=120
quiver -C "$repo" predict --server "127.0.0.1:$port" --model churn_checkout@production --entity user_id=7 --entity user_id=8 --request cart_value=120 --request cart_value=15 --include-features

step "quiver ui: the web UI over the same registry (checked, then stopped; nothing interactive)"
uport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18484)
quiver -C "$repo" ui --addr "127.0.0.1:$uport" >"$work/ui.log" 2>&1 &
ui_pid=$!
for _ in $(seq 1 50); do
	curl -fsS "http://127.0.0.1:$uport/healthz" >/dev/null 2>&1 && break
	sleep 0.2
done
curl -fsS "http://127.0.0.1:$uport/models/churn/v/1" | grep -q 'class="graph"' || { cat "$work/ui.log"; echo "quiver ui did not serve the lineage graph"; exit 1; }
echo "Browse it: quiver -C $repo ui  → http://127.0.0.1:$uport/"
echo "  (in your own feature repo: quiver ui, then open http://127.0.0.1:8484/)"
kill "$ui_pid"; wait "$ui_pid" 2>/dev/null || true; ui_pid=""

step "stop the server"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
echo "demo finished: the whole loop ran in $repo (removed on exit)"
