#!/usr/bin/env bash
# Installs the Trino server the tests start (internal/testenv), and prints its directory.
#
#   scripts/trino.sh                # cache: ${QUIVER_CACHE:-$HOME/.cache/quiver}/trino
#   QUIVER_WRITE_SUMS=1 scripts/trino.sh   # after a version bump: rewrite scripts/trino/SHA256SUMS
#
# Maven Central does not serve the io.trino:trino-server:483 tarball (nor trino-server-main, nor
# the plugins' .zip archives, nor trino-postgresql 483), so the server is assembled from the
# parts it does serve, the way Trino's own packaging lays them out:
#   lib/              trino-main 483 and its runtime dependencies
#   plugin/iceberg/   trino-iceberg 483 and its runtime dependencies
#   plugin/memory/    trino-memory 483 and its runtime dependencies
#   launcher/         QuiverTrinoServer.class, the main class (see scripts/trino/QuiverTrinoServer.java)
# Maven resolves each part with scripts/trino/pom.xml (trino-root imported as a BOM, so every
# version is the one Trino manages), checking Maven Central's checksums; every resulting file is
# then checked against the SHA-256 sums in scripts/trino/SHA256SUMS, so a different resolution
# fails the install. Downloads stay in Maven's local repository (~/.m2), so a reinstall is offline.
# The server needs Java 25: QUIVER_TRINO_JAVA_HOME, default /usr/lib/jvm/temurin-25-jdk-amd64.
# Re-running is a no-op once installed.
set -euo pipefail

TRINO_VERSION=483
# Plugin directory -> the class its META-INF/services/io.trino.spi.Plugin names. Trino's plugin
# packaging writes that descriptor into the plugin's .zip, not into the published jar, so the
# install writes it too (into plugin/NAME/quiver-plugin-descriptor.jar).
declare -A TRINO_PLUGINS=(
	[iceberg]=io.trino.plugin.iceberg.IcebergPlugin
	[memory]=io.trino.plugin.memory.MemoryPlugin
)
# Provided to plugins by the server (Trino's plugin class loader takes them from its parent), so a
# plugin directory must not carry its own copy; Trino's plugin packaging leaves them out the same way.
TRINO_SPI_ARTIFACTS=trino-spi,slice,jackson-annotations,opentelemetry-api,opentelemetry-context,jol-core

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${QUIVER_CACHE:-$HOME/.cache/quiver}"
dir="$cache/trino/$TRINO_VERSION"
if [[ -f "$dir/.installed" && -z "${QUIVER_WRITE_SUMS:-}" ]]; then
	echo "$dir"
	exit 0
fi
java_home="${QUIVER_TRINO_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
[[ -x "$java_home/bin/javac" ]] || { echo "trino.sh: no JDK at $java_home (Trino $TRINO_VERSION needs Java 25; set QUIVER_TRINO_JAVA_HOME)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "trino.sh: mvn not found (Debian: apt-get install -y maven)" >&2; exit 1; }

source "$root/scripts/lib/maven.sh"
mkdir -p "$cache/trino"
exec 9>"$cache/trino/.lock" # one install at a time (parallel test binaries may call this script)
flock 9
if [[ -f "$dir/.installed" && -z "${QUIVER_WRITE_SUMS:-}" ]]; then
	echo "$dir"
	exit 0
fi
stage="$(mktemp -d "$cache/trino/.stage-XXXXXX")"
trap 'rm -rf "$stage"' EXIT

pom="$root/scripts/trino/pom.xml"
maven_copy "$pom" "$stage/lib" -Dtrino.version="$TRINO_VERSION" -Dtrino.artifact=trino-main
for p in "${!TRINO_PLUGINS[@]}"; do
	maven_copy "$pom" "$stage/plugin/$p" -Dtrino.version="$TRINO_VERSION" -Dtrino.artifact="trino-$p" \
		-DexcludeArtifactIds="$TRINO_SPI_ARTIFACTS"
	mkdir -p "$stage/descriptor-$p/META-INF/services"
	echo "${TRINO_PLUGINS[$p]}" >"$stage/descriptor-$p/META-INF/services/io.trino.spi.Plugin"
	"$java_home/bin/jar" --create --date=2000-01-01T00:00:00Z --no-manifest \
		--file "$stage/plugin/$p/quiver-plugin-descriptor.jar" -C "$stage/descriptor-$p" META-INF
	rm -rf "$stage/descriptor-$p"
done
check_sums "$stage" "$root/scripts/trino/SHA256SUMS" "the Trino $TRINO_VERSION server"

mkdir -p "$stage/launcher"
"$java_home/bin/javac" -nowarn -d "$stage/launcher" -cp "$stage/lib/trino-main-$TRINO_VERSION.jar" \
	"$root/scripts/trino/QuiverTrinoServer.java"
echo "$TRINO_VERSION" >"$stage/.installed"
chmod 755 "$stage" # mktemp made it 0700
rm -rf "$dir"
mv "$stage" "$dir"
trap - EXIT
echo "$dir"
