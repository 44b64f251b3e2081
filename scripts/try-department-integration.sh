#!/usr/bin/env bash
# A department integration, end to end, on your machine: the recipe of
# docs/department-integration.md ("Testing a new department integration locally") as one script.
# It starts the server on the embedded database in a fresh data directory, a receiver standing
# in for the department's work-order system, registers the department, routes potholes to it,
# files a pothole, waits for the signed work_order.created delivery, answers with a signed
# callback, and shows the request's public status moving. CI runs it (test/process/), so it
# cannot rot. Needs curl and node.
#
#   bash scripts/try-department-integration.sh            # ports 8080 and 9999
#   PORT=18080 RECEIVER_PORT=19999 bash scripts/try-department-integration.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-8080}
RECEIVER_PORT=${RECEIVER_PORT:-9999}
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
export DATA_DIR=${DATA_DIR:-$WORK/data}
unset DATABASE_URL
pids=()
# Each background process leads its own process group (setsid), so stopping it stops npm and the node under it.
cleanup() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
  # Until every process of each group is gone (up to 10 s each): npm may exit before the server
  # it started has closed its embedded database, which would still be writing to DATA_DIR.
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }
# json KEY… < document: the value at that path (strings bare, anything else as JSON).
json() { node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv.slice(1))v=v[k];console.log(typeof v==="string"?v:JSON.stringify(v))})' "$@"; }

say "a receiver on 127.0.0.1:$RECEIVER_PORT that prints each delivery as one JSON line"
setsid node -e '
  require("http").createServer((q, s) => {
    let b = ""; q.on("data", (c) => (b += c)); q.on("end", () => {
      console.log(JSON.stringify({ headers: q.headers, body: JSON.parse(b) })); s.end()
    })
  }).listen(Number(process.argv[1]), "127.0.0.1")' "$RECEIVER_PORT" >"$WORK/deliveries.jsonl" &
pids+=($!)

say "the server; loopback, plain http and the receiver's port are refused by default, so allow them"
OUTBOUND_ALLOWLIST=127.0.0.1/32 OUTBOUND_ALLOW_HTTP=true OUTBOUND_ALLOWED_PORTS=$RECEIVER_PORT \
  PORT=$PORT HOST=127.0.0.1 setsid npm start >"$WORK/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.5; done
curl -sf "$BASE/readyz" >/dev/null || { cat "$WORK/server.log"; exit 1; }
# The first start on an empty data directory seeds the demo city and prints its keys once (stderr),
# just after it starts answering.
for _ in $(seq 1 50); do grep -q 'client key (requests:write' "$WORK/server.log" && break; sleep 0.1; done
DEMO_KEY=$(sed -n 's/^ *client key (requests:write[^:]*: *\(o311_[A-Za-z0-9_-]*\)$/\1/p' "$WORK/server.log")
[ -n "$DEMO_KEY" ] || { echo "no demo client key in the server's banner"; cat "$WORK/server.log"; exit 1; }

say "an admin key of our own (the running server runs the CLI's command on its embedded database)"
ADMIN=$(npm run -s cli -- keys create --name ops --scope admin | tail -1)

say "register the department (its signing secret and inbound key are shown once)"
DEPT=$(curl -sf -X POST "$BASE/admin/v1/departments" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  -d "{\"code\":\"streets\",\"name\":\"Streets\",\"webhook_url\":\"http://127.0.0.1:$RECEIVER_PORT/\"}")
SECRET=$(json signing_secret <<<"$DEPT")

say "route potholes to it"
curl -sf -X PUT "$BASE/admin/v1/services/pothole/routes" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  -d '[{"department":"streets"}]'
echo

say "a citizen reports a pothole"
ID=$(curl -sf -X POST "$BASE/open311/v2/requests.json" \
  -d "api_key=$DEMO_KEY&service_code=pothole&lat=41.88&long=-87.63&attribute[size]=LARGE&description=deep" | json 0 service_request_id)
echo "service_request_id $ID"

say "the department's system receives work_order.created, signed"
for _ in $(seq 1 100); do grep -q '"work_order.created"' "$WORK/deliveries.jsonl" && break; sleep 0.1; done
DELIVERY=$(grep -m1 '"work_order.created"' "$WORK/deliveries.jsonl")
WORK_ORDER=$(json body data work_order id <<<"$DELIVERY")
echo "work order $WORK_ORDER; webhook-signature $(json headers webhook-signature <<<"$DELIVERY")"

say "it answers with a signed callback (Standard Webhooks: HMAC-SHA256 of id.timestamp.body)"
BODY="{\"type\":\"work_order.status_changed\",\"data\":{\"work_order_id\":\"$WORK_ORDER\",\"status\":\"in_progress\",\"public_note\":\"Crew on site\"}}"
MSG_ID=msg_$(date +%s%N)
TS=$(date +%s)
SIG=$(node -e '
  const [secret, id, ts, body] = process.argv.slice(1)
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64")
  console.log("v1," + require("crypto").createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest("base64"))' "$SECRET" "$MSG_ID" "$TS" "$BODY")
curl -sf -X POST "$BASE/departments/v1/streets/events" -H 'content-type: application/json' \
  -H "webhook-id: $MSG_ID" -H "webhook-timestamp: $TS" -H "webhook-signature: $SIG" -d "$BODY"
echo

say "the public status moved"
REQUEST=$(curl -sf "$BASE/open311/v2/requests/$ID.json?extensions=true")
echo "$REQUEST"
[ "$(json 0 status_notes <<<"$REQUEST")" = "Crew on site" ]
echo
echo "department integration: OK"
