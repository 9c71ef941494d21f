#!/usr/bin/env bash
# Requests per second the running local Kafka broker serves, by API, over SECONDS (default 15): one
# JSON line per broker process. Attaches to the broker's JVM (same user); needs the JDK's `java`.
# Used while `npm run bench` drives a step to see who loads the broker (BENCHMARKS.md).
set -euo pipefail
secs="${1:-15}"
here="$(cd "$(dirname "$0")" && pwd)"
pids="$(pgrep -f 'kafka\.Kafka ' || true)"
if [ -z "$pids" ]; then
  echo "broker-requests: no running Kafka broker (kafka.Kafka) found" >&2
  exit 1
fi
for pid in $pids; do
  java "$here/BrokerRequests.java" "$pid" "$secs"
done
