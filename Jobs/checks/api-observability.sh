#!/usr/bin/env bash
# Check: tracing and secrets through `bloodmatch serve` on loopback, against a throwaway database.
# - OTLP export: a loopback OTLP/HTTP receiver (Python stdlib) counts POSTs to /v1/traces while
#   serve, with OTEL_EXPORTER_OTLP_ENDPOINT pointed at it, answers a few requests; SIGTERM flushes.
# - W3C trace context: a request's traceparent comes back with the same trace id and a new span
#   id; the decision row, the access record and the "match decision" log line carry that trace id;
#   the exported spans contain it; a malformed traceparent is answered 200 under a new trace.
# - API-key canary: a key used valid, revoked, with a wrong secret, and in malformed Authorization
#   headers (and smuggled into traceparent/tracestate); patient-like canaries in a request body.
#   Neither secret nor canary may appear in any serve output (stdout and the JSON log at debug
#   level), in the exported spans, or in the access records.
# Prints one JSON line; exits 1 on failure. Stops only the processes it started, by pid.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
server="" receiver=""
on_cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "$receiver" ] && kill "$receiver" 2>/dev/null && wait "$receiver" 2>/dev/null
}
scratch_db_check check_obs api-observability
free_port() { local p=$(( $1 + RANDOM % 200 )); while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$(( $1 + RANDOM % 200 )); done; echo $p; }

BLOODMATCH_LOG_LEVEL=error "$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
scratch_operator check supervisor >/dev/null || bad operator "could not add a supervisor"
BLOODMATCH_LOG_LEVEL=error "$bm" sites import Data/sites.csv >/dev/null 2>&1
BLOODMATCH_LOG_LEVEL=error "$bm" generate --seed 11 --sites-file Data/sites.csv --units 1500 --out "$work/gen" >/dev/null 2>&1
BLOODMATCH_LOG_LEVEL=error "$bm" import "$work"/gen/snapshots/*.csv >/dev/null 2>&1
token() { "$bm" hospital key create H0001 --label "$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
key=$(token obs-check); revoked=$(token obs-revoked)
[ -n "$key" ] && [ -n "$revoked" ] && ok keys_created || bad keys_created "no token"
secret=${key#*.}; revoked_secret=${revoked#*.}
revoked_id=${revoked#bmk_}; revoked_id=${revoked_id%%.*}
"$bm" hospital key revoke "$revoked_id" --reason check >/dev/null 2>&1
canary="PatientCanary$RANDOM$RANDOM"

# The OTLP/HTTP receiver: stores each body, answers 200 with an empty (valid) protobuf response.
otlp_port=$(free_port 19300)
mkdir -p "$work/otlp"
python3 - "$otlp_port" "$work/otlp" <<'PY' 2>"$work/receiver.log" &
import http.server, sys, os
port, out = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    n = 0
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        H.n += 1
        name = self.path.strip("/").replace("/", "_")
        with open(os.path.join(out, f"{H.n:04d}-{name}.bin"), "wb") as f: f.write(body)
        self.send_response(200); self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
receiver=$!

port=$(free_port 18300)
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$otlp_port" OTEL_BSP_SCHEDULE_DELAY=500 BLOODMATCH_LOG_LEVEL=debug \
  "$bm" serve --port "$port" >"$work/serve.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 150); do curl -sf "$base/health" >/dev/null 2>&1 && break; sleep 0.2; done

trace1=4bf92f3577b34da6a3ce929d0e0e4736 trace2=0af7651916cd43dd8448eb211c80319c parent=00f067aa0ba902b7
q="$base/v1/availability?component=RBC&abo=O&rhd=NEG"
hdr() { tr -d '\r' <"$1" | awk -v h="$2" 'tolower($1) == tolower(h)":" {print $2}'; }
code=$(curl -s -D "$work/h1" -o "$work/b1" -w '%{http_code}' -H "Authorization: Bearer $key" -H "traceparent: 00-$trace1-$parent-01" "$q")
tp=$(hdr "$work/h1" traceparent)
if [ "$code" = 200 ] && [ "$(cut -d- -f2 <<<"$tp")" = "$trace1" ] && [ "$(cut -d- -f3 <<<"$tp")" != "$parent" ] && [ ${#tp} = 55 ]; then
  ok traceparent_continued; else bad traceparent_continued "$code $tp"; fi
code=$(curl -s -D "$work/h2" -o "$work/b2" -w '%{http_code}' -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -H 'Idempotency-Key: obs-1' -H "traceparent: 00-$trace2-$parent-01" -H 'X-Request-ID: obs-match' \
  -d '{"component":"RBC","recipient":{"abo":"A","rhd":"POS","sex":"male","age":60},"quantity":1}' "$base/v1/matches")
decision=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("decision_id",""))' "$work/b2" 2>/dev/null)
[ "$code" = 201 ] && [ -n "$decision" ] && ok match_created || bad match_created "$code $(head -c 200 "$work/b2")"
code=$(curl -s -D "$work/h3" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" -H "traceparent: 00-zz-$parent-01" "$q")
tp=$(hdr "$work/h3" traceparent)
[ "$code" = 200 ] && [ ${#tp} = 55 ] && ok malformed_traceparent_new_trace || bad malformed_traceparent_new_trace "$code $tp"

# Keys that must be refused, and a key smuggled where it does not belong.
refused=0
for auth in "Bearer $revoked" "Bearer ${key%%.*}.${revoked_secret}" "Bearer $secret" "Basic $key" "Bearer $key extra" \
            "Bearer  $key$secret" "bearer: $key" "$key"; do
  c=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $auth" "$q"); [ "$c" = 401 ] && refused=$((refused + 1))
done
[ $refused = 8 ] && ok bad_keys_401 || bad bad_keys_401 "$refused of 8 refused"
curl -s -o /dev/null -H "Authorization: Bearer $key" -H "traceparent: 00-$secret-01" -H "tracestate: k=$secret" "$q"
curl -s -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -H 'Idempotency-Key: obs-2' \
  -d "{\"component\":\"RBC\",\"recipient\":{\"abo\":\"O\",\"rhd\":\"NEG\",\"context\":[\"$canary\"]},\"quantity\":1}" "$base/v1/matches"
curl -s -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -H 'Idempotency-Key: obs-3' \
  -d "{\"component\":\"RBC\",\"recipient\":{\"abo\":\"O\",\"rhd\":\"NEG\"},\"quantity\":1,\"patient_name\":\"$canary\"}" "$base/v1/matches"
curl -s -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -H 'Idempotency-Key: obs-4' \
  -d "{\"component\":\"RBC\",\"recipient\":{\"abo\":\"O\",\"rhd\":\"NEG\",\"sex\":\"$canary\"},\"quantity\":1}" "$base/v1/matches"

# SIGTERM: graceful exit; the span exporter flushes after the server drains.
kill -TERM "$server"; waited=0
while kill -0 "$server" 2>/dev/null && [ $waited -lt 150 ]; do sleep 0.1; waited=$((waited + 1)); done
if kill -0 "$server" 2>/dev/null; then bad sigterm "still running after 15 s"; else wait "$server"; rc=$?; [ "$rc" = 0 ] && ok sigterm_exit_0 || bad sigterm_exit_0 "exit $rc"; fi
server=""

posts=$(find "$work/otlp" -name '*-v1_traces.bin' | wc -l)
[ "$posts" -ge 1 ] && results+=("\"otlp_trace_posts\":$posts") || bad otlp_trace_posts "no POST to /v1/traces"
exported=$(python3 - "$work/otlp" "$trace1" "$trace2" <<'PY'
import glob, sys
blob = b"".join(open(f, "rb").read() for f in glob.glob(sys.argv[1] + "/*-v1_traces.bin"))
print(sum(bytes.fromhex(t) in blob for t in sys.argv[2:]))
PY
)
[ "$exported" = 2 ] && ok spans_exported_with_trace_ids || bad spans_exported_with_trace_ids "$exported of 2 trace ids in the export"
row=$(psql_pg -d "$db" -c "SELECT trace_id FROM bm.decisions WHERE decision_id = '$decision'")
[ "$row" = "$trace2" ] && ok decision_row_trace_id || bad decision_row_trace_id "'$row'"
row=$(psql_pg -d "$db" -c "SELECT trace_id FROM bm.event_log WHERE action = 'api.request' AND request_id = 'obs-match'")
[ "$row" = "$trace2" ] && ok access_row_trace_id || bad access_row_trace_id "'$row'"
line=$(grep '"msg":"match decision"' "$work/serve.log" | grep -c "\"trace_id\":\"$trace2\"")
[ "$line" -ge 1 ] && ok log_line_trace_id || bad log_line_trace_id "no match decision line with trace_id $trace2"

# The canaries: nowhere in serve's output, the exported spans, or the access records.
psql_pg -d "$db" -c "SELECT row_to_json(e)::text FROM bm.event_log e" >"$work/events.txt"
lines=$(wc -l <"$work/serve.log")
leaks=0
for needle in "$secret" "$revoked_secret" "$canary"; do
  n=$(cat "$work/serve.log" "$work/events.txt" | grep -c -- "$needle")
  n2=$(grep -rlc -- "$needle" "$work/otlp" 2>/dev/null | wc -l)
  leaks=$((leaks + n + n2))
  [ $((n + n2)) -gt 0 ] && grep -n -- "$needle" "$work/serve.log" | head -3 | cut -c1-300 >&2
done
[ "$leaks" = 0 ] && [ "$lines" -gt 5 ] && results+=("\"canary_leaks\":0,\"serve_log_lines\":$lines") || bad canary "$leaks leak(s) in $lines lines"

pass=$([ $fail = 0 ] && echo true || echo false)
echo "{\"check\":\"api-observability\",$(IFS=,; echo "${results[*]}"),\"pass\":$pass}"
[ $fail = 0 ] || tail -20 "$work/serve.log" >&2
exit $fail
