#!/usr/bin/env bash
# Check: `bloodmatch serve` over TLS on loopback against a throwaway database.
# - TLS with a throwaway CA: verified request ok; without the CA refused; plain http refused.
# - keys: created with `hospital key create`, a request with it is answered, without it 401,
#   after `hospital key revoke` 401 (within the 5 s key cache).
# - schemathesis against the served /openapi.json (responses match the document, no 5xx,
#   schema-invalid input refused with 4xx).
# - a short bounded wrk run (no non-2xx), then SIGTERM: the server exits 0 and every request
#   wrk made is in bm.event_log (access records flushed at shutdown).
# Prints one JSON line; exits 1 on failure. Stops only the server it started.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
server=""
on_cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; }
scratch_db_check check_http http-api
export BLOODMATCH_LOG_LEVEL=error

# Data: the sample sites and a small generated stock.
"$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
scratch_operator check supervisor >/dev/null || bad operator "could not add a supervisor"
"$bm" sites import Data/sites.csv >/dev/null 2>&1
"$bm" generate --seed 7 --sites-file Data/sites.csv --units 2000 --out "$work/gen" >/dev/null 2>&1
"$bm" import "$work"/gen/snapshots/*.csv >/dev/null 2>&1
key=$("$bm" hospital key create H0001 --label check --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
[ -n "$key" ] && ok key_created || bad key_created "no token"

# Throwaway CA and a server certificate for 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=BloodMatch test CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 1 -extfile "$work/san.ext" -out "$work/server.pem" 2>/dev/null

port=$(( 18080 + RANDOM % 20 ))
while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$(( 18080 + RANDOM % 20 )); done
# schemathesis sends requests without a key to every operation on purpose: the throttle on an
# address's failed authentications (Jobs/checks/api-isolation.sh checks it) is raised here, as the
# rate limit is, so its answers are the operations' own.
"$bm" serve --port "$port" --tls-cert "$work/server.pem" --tls-key "$work/server.key" \
  --rate-limit 100000 --rate-burst 100000 --failed-auth-rate 100000 --failed-auth-burst 100000 --max-concurrent 256 2>"$work/serve.log" &
server=$!
base="https://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -sf --cacert "$work/ca.pem" "$base/health" >/dev/null 2>&1 && break; sleep 0.2; done

code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.pem" "$base/health"); [ "$code" = 200 ] && ok tls_verified || bad tls_verified "$code"
curl -s -o /dev/null "$base/health" 2>/dev/null; rc=$?; [ "$rc" = 60 ] && ok tls_untrusted_refused || bad tls_untrusted_refused "curl exit $rc"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/health"); [ "$code" = 000 ] && ok plain_http_refused || bad plain_http_refused "$code"
code=$(curl -s -o "$work/ready.json" -w '%{http_code}' --cacert "$work/ca.pem" "$base/ready"); [ "$code" = 200 ] && ok ready || bad ready "$code $(head -c 300 "$work/ready.json")"
q="$base/v1/availability?component=RBC&abo=O&rhd=NEG"
code=$(curl -s -o "$work/avail.json" -w '%{http_code}' --cacert "$work/ca.pem" -H "Authorization: Bearer $key" "$q")
[ "$code" = 200 ] && grep -q '"centres"' "$work/avail.json" && ok availability || bad availability "$code $(head -c 300 "$work/avail.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.pem" "$q"); [ "$code" = 401 ] && ok no_key_401 || bad no_key_401 "$code"
code=$(curl -s -o "$work/match.json" -w '%{http_code}' --cacert "$work/ca.pem" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -H 'Idempotency-Key: check-1' -d '{"component":"RBC","recipient":{"abo":"A","rhd":"POS","sex":"male","age":60},"quantity":2}' "$base/v1/matches")
[ "$code" = 201 ] && ok match_created || bad match_created "$code $(head -c 300 "$work/match.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.pem" "$base/openapi.json"); [ "$code" = 200 ] && ok openapi_served || bad openapi_served "$code"

# schemathesis against the served document (bounded examples per operation).
if command -v schemathesis >/dev/null 2>&1; then
  if NO_COLOR=1 timeout 300 schemathesis run "$base/openapi.json" --tls-verify "$work/ca.pem" -H "Authorization: Bearer $key" \
      --checks all --exclude-checks positive_data_acceptance \
      --max-examples 40 >"$work/schemathesis.log" 2>&1; then
    ok schemathesis
  else
    bad schemathesis "see output below"; tail -40 "$work/schemathesis.log" >&2
  fi
else
  bad schemathesis "not installed (Jobs/setup.sh installs it)"
fi

# A short bounded load run: every response must be 2xx.
if command -v wrk >/dev/null 2>&1; then
  wrk -t1 -c8 -d5s -H "Authorization: Bearer $key" "$q" >"$work/wrk.txt" 2>&1
  requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  if grep -q 'Non-2xx' "$work/wrk.txt" || [ -z "$requests" ]; then bad wrk "$(tr '\n' ' ' <"$work/wrk.txt" | head -c 300)"; else results+=("\"wrk_requests_per_s\":\"$rps\""); fi
else
  bad wrk "not installed (Jobs/setup.sh installs it)"; requests=0
fi

# Revocation takes effect (after the 5 s key cache).
keyid=${key#bmk_}; keyid=${keyid%%.*}
"$bm" hospital key revoke "$keyid" --reason check >/dev/null 2>&1
sleep 5.5
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.pem" -H "Authorization: Bearer $key" "$q"); [ "$code" = 401 ] && ok revoked_401 || bad revoked_401 "$code"

# SIGTERM: graceful exit, every access record written.
kill -TERM "$server"; waited=0
while kill -0 "$server" 2>/dev/null && [ $waited -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
# A server still running is left for on_cleanup to stop, after SIGQUIT has made it print its
# threads' backtraces into .run/http-api-shutdown.log; one that exited is forgotten.
if kill -0 "$server" 2>/dev/null; then
  bad sigterm "still running after 10 s (backtraces: .run/http-api-shutdown.log)"
  kill -QUIT "$server" 2>/dev/null; sleep 15; mkdir -p .run; cp "$work/serve.log" .run/http-api-shutdown.log
else wait "$server"; rc=$?; server=""; [ "$rc" = 0 ] && ok sigterm_exit_0 || bad sigterm_exit_0 "exit $rc"; fi
recorded=$(psql_pg -d "$db" -c "SELECT count(*) FROM bm.event_log WHERE action = 'api.request' AND subject = '/v1/availability'")
[ "${recorded:-0}" -ge "${requests:-0}" ] && results+=("\"access_records\":\"$recorded >= $requests\"") || bad access_records "$recorded < $requests"
created=$(psql_pg -d "$db" -c "SELECT count(*) FROM bm.event_log WHERE action IN ('api_key.created','api_key.revoked')")
[ "$created" = 2 ] && ok key_events || bad key_events "$created"

pass=$([ $fail = 0 ] && echo true || echo false)
echo "{\"check\":\"http-api\",$(IFS=,; echo "${results[*]}"),\"pass\":$pass}"
[ $fail = 0 ] || tail -20 "$work/serve.log" >&2
exit $fail
