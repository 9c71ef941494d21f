#!/usr/bin/env bash
# Who sends the running local broker which requests, over SECONDS (default 10): switches the broker's
# `kafka.request.logger` to DEBUG at run time (a dynamic broker-logger config, nothing restarted),
# waits, switches it back to WARN, then summarises the logged requests of that window by client and
# API — and, for fetches, per connection and topic, how many came back with records (an empty fetch
# is one that waited out its maxWaitTimeMs). Run while `npm run bench` drives a step (BENCHMARKS.md
# item 43). DEBUG request logging costs the broker CPU itself: use it for counts, not for timings.
set -euo pipefail
secs="${1:-10}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
pid="$(pgrep -f 'kafka\.Kafka ' | head -1 || true)"
if [ -z "$pid" ]; then
  echo "broker-request-log: no running Kafka broker (kafka.Kafka) found" >&2
  exit 1
fi
cp="$(tr '\0' '\n' < "/proc/$pid/cmdline" | grep -A1 '^-cp$' | tail -1)"
status="$(node "$repo/dist/cli/main.js" stack status 2>/dev/null)"
brokers="$(sed -n 's/^KAFKA_BROKERS=//p' <<< "$status")"
log="$(awk '$1 == "kafka" { print $NF }' <<< "$status")"
level() {
  # The tool has no log4j config of its own (it warns about that on stderr): its output is shown
  # only when it fails.
  local out
  if ! out="$(java -cp "$cp" kafka.admin.ConfigCommand --bootstrap-server "$brokers" --alter --entity-type broker-loggers \
    --entity-name 1 --add-config "kafka.request.logger=$1" 2>&1)"; then
    echo "broker-request-log: setting kafka.request.logger=$1 failed:" >&2
    echo "$out" >&2
    exit 1
  fi
}
from="$(date -u '+%Y-%m-%d %H:%M:%S')"
level DEBUG
sleep "$secs"
level WARN
to="$(date -u '+%Y-%m-%d %H:%M:%S')"
node "$here/broker-request-log-summary.js" "$log" "$from" "$to"
