#!/usr/bin/env bash
# A bounded API fuzz (docs/testing.md, "API fuzzing"): schemathesis generates requests from
# /openapi.json for every operation (examples, coverage and fuzzing phases) against a real proofpod
# (API only, embedded Postgres) signed in with the admin token, with a fixed seed and a case budget
# per operation. Any 5xx fails the run (check not_a_server_error); so does a crash of proofpod or an
# error it logs. The request timeout is above the API's longest wait (GET /v1/jobs/{id}?waitSeconds=30).
# Usage: smoke/fuzz/api-fuzz.sh [max examples per operation, default 40]
set -euo pipefail
cd "$(dirname "$0")/../.."
examples=${1:-40}
version=4.32.5
venv=${PROOFPOD_CACHE:-$HOME/.cache/proofpod}/schemathesis-$version
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$version"
fi

work=$(mktemp -d)
log=$work/proofpod.log
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
PROOFPOD_HOME=$work/home PORT=$port LOG_LEVEL=warn node dist/scheduler/main.js --api-only >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "proofpod exited before /readyz:"; tail -20 "$log"; exit 1; }
  sleep 0.5
done
token=$(cat "$work/home/admin-token")

set +e
# From the scratch directory: schemathesis keeps a cache (.schemathesis/) in its working directory,
# which must not land in the checkout the tests then lint.
(cd "$work" && exec "$venv/bin/st" run "http://127.0.0.1:$port/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error \
  --seed 20261201 --max-examples "$examples" --workers 1 \
  --request-timeout 35 --generation-database none \
  --report junit --report-junit-path "$work/junit.xml" \
  --no-color) >"$work/st.out" 2>&1
status=$?
set -e
cp "$work/st.out" "${PROOFPOD_FUZZ_OUTPUT:-/dev/null}" 2>/dev/null || true
# schemathesis's own summary only when it failed; otherwise one line of ours.
if ((status != 0)); then tail -40 "$work/st.out"; fi
operations=$(grep -o 'tests="[0-9]*"' "$work/junit.xml" | head -1 | grep -o '[0-9]*' || echo '?')
cases=$(grep -oE '[0-9]+ generated' "$work/st.out" | tail -1 | grep -oE '[0-9]+' || echo '?')
if ! kill -0 "$pid" 2>/dev/null; then echo "proofpod died during the fuzz run:"; tail -20 "$log"; exit 1; fi
if grep -q '"level":50' "$log"; then echo "proofpod logged errors during the fuzz run:"; grep '"level":50' "$log" | head -5; exit 1; fi
echo "api fuzz: schemathesis exit $status, $cases cases over $operations operations, seed 20261201"
exit "$status"
