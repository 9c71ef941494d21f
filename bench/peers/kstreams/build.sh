#!/usr/bin/env bash
# Builds the Kafka Streams reference peer's runnable jar, target/tributary-kstreams-peer.jar, when it
# is missing or older than pom.xml, the Java sources or the two schemas it packs. Offline when the
# local Maven repository already holds every dependency, online (Maven Central) otherwise.
# Prints the jar's path on success. Exit status 3, with one line on stderr, when java or mvn is
# missing, so callers can skip the peer; any other failure is the build's own.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
jar="$here/target/tributary-kstreams-peer.jar"

for tool in java mvn; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "kstreams peer not built: '$tool' is not on PATH (needs JDK 17+ and Maven)" >&2
    exit 3
  fi
done

inputs=("$here/pom.xml" "$here/src" "$repo/examples/fraud/schemas/transaction.avsc" "$repo/schemas/prediction.avsc")
if [[ -f "$jar" ]] && [[ -z "$(find "${inputs[@]}" -newer "$jar" -print -quit)" ]]; then
  echo "$jar"
  exit 0
fi

cd "$here"
mvn_args=(-q -B -Dstyle.color=never package)
offline_log="$(mktemp)"
trap 'rm -f "$offline_log"' EXIT
if ! mvn -o "${mvn_args[@]}" >"$offline_log" 2>&1; then
  # Offline failed: most likely a dependency not yet in the local repository. One online try, its
  # output on stderr: stdout's last line is the jar's path for the callers (Maven 3.8 writes colour
  # codes even with style.color=never, which glued onto that line broke the path on a fresh machine).
  mvn "${mvn_args[@]}" >&2
fi
# mvn leaves the jar's mtime at packaging time; touch so a no-op rebuild is never mistaken for stale.
touch "$jar"
echo "$jar"
