#!/usr/bin/env bash
# Installs the Kafka broker the tests start (internal/testenv), and prints its directory.
#
#   scripts/kafka.sh                # cache: ${QUIVER_CACHE:-$HOME/.cache/quiver}/kafka
#   QUIVER_WRITE_SUMS=1 scripts/kafka.sh   # after a version bump: rewrite scripts/kafka/SHA256SUMS
#
# The broker is org.apache.kafka:kafka_2.13 and its runtime dependencies (plus the slf4j → log4j2
# binding Kafka's own distribution ships), resolved by Maven with scripts/kafka/pom.xml into
# DIR/libs, the class path of `kafka.Kafka` (the broker, KRaft mode) and `kafka.tools.StorageTool`
# (kafka-storage format). Maven checks Maven Central's checksums and keeps the downloads in ~/.m2;
# every jar is then checked against the SHA-256 sums in scripts/kafka/SHA256SUMS. It runs on
# Java 17 or newer. Re-running is a no-op once installed.
set -euo pipefail

KAFKA_VERSION=4.4.0

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${QUIVER_CACHE:-$HOME/.cache/quiver}"
dir="$cache/kafka/$KAFKA_VERSION"
if [[ -f "$dir/.installed" && -z "${QUIVER_WRITE_SUMS:-}" ]]; then
	echo "$dir"
	exit 0
fi
command -v mvn >/dev/null || { echo "kafka.sh: mvn not found (Debian: apt-get install -y maven)" >&2; exit 1; }

source "$root/scripts/lib/maven.sh"
mkdir -p "$cache/kafka"
exec 9>"$cache/kafka/.lock" # one install at a time (parallel test binaries may call this script)
flock 9
if [[ -f "$dir/.installed" && -z "${QUIVER_WRITE_SUMS:-}" ]]; then
	echo "$dir"
	exit 0
fi
stage="$(mktemp -d "$cache/kafka/.stage-XXXXXX")"
trap 'rm -rf "$stage"' EXIT

maven_copy "$root/scripts/kafka/pom.xml" "$stage/libs" -Dkafka.version="$KAFKA_VERSION"
check_sums "$stage" "$root/scripts/kafka/SHA256SUMS" "Kafka $KAFKA_VERSION"
echo "$KAFKA_VERSION" >"$stage/.installed"
chmod 755 "$stage" # mktemp made it 0700
rm -rf "$dir"
mv "$stage" "$dir"
trap - EXIT
echo "$dir"
