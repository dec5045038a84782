# Shared by scripts/trino.sh, scripts/kafka.sh and scripts/s3proxy.sh, which assemble Java servers
# from Maven Central artifacts. Source it; it defines two functions.

# maven_copy POM OUTDIR [MAVEN_ARGS...]: copies the runtime dependencies POM resolves into OUTDIR.
# Maven checks each download against Maven Central's checksums (--strict-checksums) and keeps it
# in its local repository (~/.m2), so a second resolution needs no network.
maven_copy() {
	local pom="$1" out="$2"
	shift 2
	local log
	log="$(mktemp)"
	if ! mvn -B -q --strict-checksums -f "$pom" "$@" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out" >"$log" 2>&1; then
		echo "$(basename "$0"): mvn could not resolve $pom $*:" >&2
		grep -E 'ERROR|Could not|refused|status code' "$log" | head -20 >&2
		rm -f "$log"
		return 1
	fi
	rm -f "$log"
}

# check_sums DIR SUMS NAME: compares the SHA-256 of every jar under DIR with the file SUMS (lines
# "<sha256>  <path relative to DIR>", '#' comments). With QUIVER_WRITE_SUMS set it first rewrites
# SUMS from DIR (after a deliberate version bump; review the diff). Any difference fails.
check_sums() {
	local dir="$1" sums="$2" name="$3" got
	got="$(cd "$dir" && find . -type f -name '*.jar' | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum)"
	if [[ -n "${QUIVER_WRITE_SUMS:-}" ]]; then
		{
			echo "# SHA-256 of every jar of $name as $(basename "$0") assembles it (QUIVER_WRITE_SUMS=1 rewrites this file)."
			echo "$got"
		} >"$sums"
		echo "$(basename "$0"): wrote $sums" >&2
	fi
	local diff
	if ! diff="$(diff <(grep -v '^#' "$sums") <(echo "$got"))"; then
		echo "$(basename "$0"): the jars of $name differ from $sums (< expected, > got):" >&2
		head -40 <<<"$diff" >&2
		return 1
	fi
}
