#!/usr/bin/env bash
# The Quiver loop on embedded defaults (SQLite registry, embedded online store, local
# warehouse): no server needed. Set QUIVER_REGISTRY / QUIVER_ONLINE to run it against
# Postgres / Redis instead.
set -euo pipefail
QUIVER=${QUIVER:-$(pwd)/bin/quiver}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
repo="$work/shop"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "quiver init: scaffold a feature repo with sample data"
"$QUIVER" init "$repo" --project shop

step "quiver validate"
"$QUIVER" -C "$repo" validate

step "quiver plan"
"$QUIVER" -C "$repo" plan

step "quiver apply"
"$QUIVER" -C "$repo" apply

step "change a feature's type, plan shows the field-level diff, apply makes version 2"
sed -i 's/{ name: sessions_7d, type: int32 }/{ name: sessions_7d, type: int64 }/' "$repo/features/user_activity.yaml"
"$QUIVER" -C "$repo" plan
"$QUIVER" -C "$repo" apply

step "quiver list views / describe view user_stats --version 1"
"$QUIVER" -C "$repo" list views
"$QUIVER" -C "$repo" describe view user_stats --version 1

echo
echo "demo finished: definitions validated, applied and versioned in $repo/.quiver (removed on exit)"
