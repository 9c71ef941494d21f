#!/usr/bin/env bash
# Fuzzes a live gateway from its own /openapi.json with Schemathesis (PyPI), on the local stack:
# a fresh copy of topologies/fraud-detection.yaml (suffixed topics), its pipeline and a gateway with
# a bearer token. Passes when Schemathesis finds no failure (every check except not_a_server_error,
# because the designed 503/504 are documented in the spec) and no response at all was a 500.
#   scripts/schemathesis-gateway.sh [MAX_EXAMPLES]      (needs npm ci; python3 with venv)
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-60}"
venv=".tributary/schemathesis-venv"
[ -x "$venv/bin/st" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q schemathesis; }
work="$(mktemp -d)"
suffix="st$(date +%s)"
node -e "
const fs=require('fs'),y=require('yaml');const d=y.parse(fs.readFileSync('topologies/fraud-detection.yaml','utf8'));
d.name+='-$suffix';for(const t of d.topics)t.name+='.$suffix';d.deadLetter.topic+='.$suffix';
for(const s of d.stages){s.input.topic+='.$suffix';s.output.topic+='.$suffix';}
fs.writeFileSync('$work/topology.yaml',y.stringify(d));"
token="st-$RANDOM$RANDOM"
node dist/cli/main.js run --topology "$work/topology.yaml" --metrics-port 0 2>"$work/run.log" & run_pid=$!
TRIBUTARY_GATEWAY_TOKEN="$token" node dist/cli/main.js gateway --topology "$work/topology.yaml" --port 0 >"$work/gateway.out" 2>"$work/gateway.log" & gw_pid=$!
trap 'kill $gw_pid $run_pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do grep -q url "$work/gateway.out" 2>/dev/null && grep -q 'pipeline running' "$work/run.log" && break; sleep 0.2; done
url="$(node -e "console.log(JSON.parse(require('fs').readFileSync('$work/gateway.out','utf8').split('\n')[0]).url)")"
status=0
(cd "$work" && "$OLDPWD/$venv/bin/st" run "$url/openapi.json" -n "$examples" --checks all --exclude-checks not_a_server_error \
  -H "Authorization: Bearer $token" --request-timeout 30 --report har --report-har-path "$work/run.har") || status=$?
node -e "
const h=JSON.parse(require('fs').readFileSync('$work/run.har','utf8'));const by={};
for(const e of h.log.entries){const k=e.response.status;by[k]=(by[k]||0)+1;}
console.log('responses by status:',JSON.stringify(by));
if(by[500]){console.error('a request got 500');process.exit(1);}" || status=1
grep -E '\"level\":(40|50)' "$work/gateway.log" && { echo 'gateway logged WARN/ERROR'; status=1; }
exit $status
