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
# On a failure the pipeline's and the gateway's own logs say why (CI keeps only this script's output).
show_logs() {
  echo "--- pipeline WARN/ERROR lines"; grep -E '"level":(40|50)' "$work/run.log" | tail -20 || true
  echo "--- pipeline log (tail)"; tail -30 "$work/run.log"
  echo "--- gateway log (tail)"; tail -20 "$work/gateway.log"
}
fail() { echo "schemathesis-gateway: $*" >&2; show_logs; exit 1; }
# Both processes up: fail at once when either exits, after 180 s when they have not said so.
for i in $(seq 1 900); do
  kill -0 "$run_pid" 2>/dev/null || fail "the pipeline (tributary run) exited before it was running"
  kill -0 "$gw_pid" 2>/dev/null || fail "the gateway exited before it was listening"
  grep -q url "$work/gateway.out" 2>/dev/null && grep -q 'pipeline running' "$work/run.log" && break
  [ "$i" = 900 ] && fail "pipeline or gateway not up within 180 s"
  sleep 0.2
done
url="$(node -e "console.log(JSON.parse(require('fs').readFileSync('$work/gateway.out','utf8').split('\n')[0]).url)")"
# Readiness: one valid transaction predicted end to end (consumer groups assigned, a first
# transaction committed) before fuzzing, so a slow start is told apart from a request the pipeline
# cannot answer; fuzzing then checks every response within Schemathesis' time limit.
probe_ok=0
for attempt in 1 2 3 4 5 6; do
  if URL="$url" TOKEN="$token" N="$attempt" node -e "
    const body={transactionId:'probe-'+process.env.N,cardId:'card-probe',merchantId:'m-probe',amount:12.5,currency:'EUR',merchantCategory:'grocery',country:'DE',eventTime:Date.now()};
    fetch(process.env.URL+'/v1/predict?timeoutMs=20000',{method:'POST',headers:{authorization:'Bearer '+process.env.TOKEN,'content-type':'application/json'},body:JSON.stringify(body)})
      .then(async(r)=>{const t=(await r.text()).slice(0,400);console.log('readiness probe attempt '+process.env.N+': HTTP '+r.status+' '+t);process.exit(r.status===200?0:1);})
      .catch((e)=>{console.log('readiness probe attempt '+process.env.N+': '+e.message);process.exit(1);});"; then probe_ok=1; break; fi
  kill -0 "$run_pid" 2>/dev/null || fail "the pipeline exited"
  sleep 1
done
[ "$probe_ok" = 1 ] || fail "no prediction for a valid transaction in 6 attempts of 20 s"
status=0
(cd "$work" && "$OLDPWD/$venv/bin/st" run "$url/openapi.json" -n "$examples" --checks all --exclude-checks not_a_server_error \
  -H "Authorization: Bearer $token" --request-timeout 30 --report har --report-har-path "$work/run.har") || status=$?
node -e "
const h=JSON.parse(require('fs').readFileSync('$work/run.har','utf8'));const by={};
for(const e of h.log.entries){const k=e.response.status;by[k]=(by[k]||0)+1;}
console.log('responses by status:',JSON.stringify(by));
if(by[500]){console.error('a request got 500');process.exit(1);}" || status=1
grep -E '\"level\":(40|50)' "$work/gateway.log" && { echo 'gateway logged WARN/ERROR'; status=1; }
kill -0 "$run_pid" 2>/dev/null || { echo 'the pipeline exited during fuzzing'; status=1; }
[ "$status" = 0 ] || show_logs
exit $status
