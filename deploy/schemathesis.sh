#!/usr/bin/env bash
# Runs schemathesis (PyPI) against both HTTP APIs, started here from a debug build on their own
# ports, database and log stream, with a bounded number of examples per operation. It fails on any
# 5xx, any answer that violates its documented schema, status, content type or headers.
# Expects the local stack (deploy/local-stack.sh) to be up. Prints one closing line
# `schemathesis: N passed, N failed` per API.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-50}
SESSIONS_PORT=18080
REPORTING_PORT=18081
run_id="st$(date +%s)$$"
database="claimledger_$run_id"
work=$(mktemp -d)

say() { printf 'schemathesis: %s\n' "$*"; }

python3 -m pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" nats-py

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null 2>&1 || true
  python3 - "$run_id" <<'PY' || true
import asyncio, sys
import nats
async def main():
    client = await nats.connect("nats://127.0.0.1:4222")
    stream = sys.argv[1].upper()
    for name in (stream, stream + "_PARKED"):
        try:
            await client.jetstream().delete_stream(name)
        except Exception:
            pass
    await client.close()
asyncio.run(main())
PY
  rm -rf "$work"
}
trap cleanup EXIT

psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE \"$database\" OWNER claimledger" >/dev/null
export DATABASE_URL="postgres://claimledger:claimledger@127.0.0.1:5432/$database"
export NATS_URL=nats://127.0.0.1:4222
export CLAIMLEDGER_LOG_STREAM="${run_id^^}"
export CLAIMLEDGER_LOG_SUBJECT_PREFIX="$run_id"
export CLAIMLEDGER_SESSIONS_PORT=$SESSIONS_PORT
export CLAIMLEDGER_REPORTING_PORT=$REPORTING_PORT
export RUST_LOG=warn
# The formats, ranges and rules the documents state in words (see the module's docstring).
export PYTHONPATH="$PWD/deploy${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=schemathesis_hooks

cargo build -q -p claimledger --locked
bin=target/debug/claimledger
key=$("$bin" keys create --chain-name "schemathesis" | awk '/^key \(/ { print $NF }')

"$bin" serve sessions >"$work/sessions.log" 2>&1 &
pids+=($!)
"$bin" serve reporting >"$work/reporting.log" 2>&1 &
pids+=($!)
for port in $SESSIONS_PORT $REPORTING_PORT; do
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$port/ready" >/dev/null && break
    sleep 0.2
  done
  curl -fs "http://127.0.0.1:$port/ready" >/dev/null || { say "the API on $port is not ready"; cat "$work"/*.log; exit 1; }
done

# A few resources, so that operations on ids also meet ids that exist.
api() { curl -fs -X POST "http://127.0.0.1:$SESSIONS_PORT$1" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$2"; }
api /v1/clinics '{"name":"Fuzz Clinic","npi":"1234567893","tax_id":"12-3456789","address_line":"1 Main St","city":"Seattle","state":"WA","postal_code":"98101","time_zone":"America/Los_Angeles","place_of_service":"11"}' >/dev/null
api /v1/payers '{"name":"Fuzz Payer","rules_key":"medicare-like"}' >/dev/null

# One worker: CPython 3.11's AST compiler is not safe across threads, and schemathesis compiles
# patterns while it generates (seen: "AST constructor recursion depth mismatch" with two workers).
# Two runs per API. The first, in every phase, checks that nothing answers 5xx and that every
# answer is as documented (status, media type, headers, body). The second generates only data the
# documents call valid (fuzzing: the phase that honours the formats taught in the hooks) and checks
# that the server accepts it; 404 (a random id) and 409 (a state the command does not fit) are
# acceptable answers to valid data.
conformance=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
status=0
run() {
  local api_name=$1 port=$2 label=$3 checks=$4 phases=$5 mode=$6
  local out="$work/$api_name-$label"
  local result=0
  schemathesis run "http://127.0.0.1:$port/openapi.json" \
      --header "Authorization: Bearer $key" \
      --checks "$checks" \
      --mode "$mode" \
      --max-examples "$EXAMPLES" \
      --seed 20261205 \
      --phases "$phases" \
      --suppress-health-check all \
      --workers 1 \
      --no-color \
      --report junit --report-dir "$out" >"$out.out" 2>&1 || result=$?
  if [ "$result" -ne 0 ]; then
    cat "$out.out"
    status=1
    say "$api_name API, $label: schemathesis found problems (exit $result)"
  else
    grep -E "generated|No issues|warnings? in" "$out.out" || true
  fi
  local operations failures errors
  operations=$(grep -o 'tests="[0-9]*"' "$out"/*.xml 2>/dev/null | head -1 | grep -o '[0-9]*' || echo 0)
  failures=$(grep -o 'failures="[0-9]*"' "$out"/*.xml 2>/dev/null | head -1 | grep -o '[0-9]*' || echo 0)
  errors=$(grep -o 'errors="[0-9]*"' "$out"/*.xml 2>/dev/null | head -1 | grep -o '[0-9]*' || echo 0)
  printf 'schemathesis %s API, %s: %d operations, %d failed, %d errors\n' "$api_name" "$label" "$operations" "$failures" "$errors"
}
for api_name in sessions reporting; do
  port=$SESSIONS_PORT
  [ "$api_name" = reporting ] && port=$REPORTING_PORT
  run "$api_name" "$port" conformance "${SCHEMATHESIS_CHECKS:-$conformance}" examples,coverage,fuzzing all
  run "$api_name" "$port" "valid data accepted" positive_data_acceptance fuzzing positive
done
exit $status
