#!/usr/bin/env bash
# Check: `bloodmatch import --url` against loopback HTTPS servers (Jobs/checks/feed_server.py) with
# a throwaway CA.
#   certificates: unknown CA, a name mismatch and an expired certificate are refused (exit 3) naming
#     the problem, tried once, never reported as unreachable; a verified fetch loads
#   deadline: a server dripping one byte every 0.3 s is cut off at BLOODMATCH_FEED_DEADLINE
#     (exit 4, "no complete answer within 3 s")
#   size: a 600 MiB body without a length is refused while it streams (exit 3), the fetch's peak RSS
#     stays small; an announced one is refused before reading
#   retries: a 503 is tried again and loads; connection refused is tried 3 times (exit 4); a 404
#     is asked for once (exit 4)
#   credentials: a bearer token (option, and environment with an index) and a client certificate
#     (mutual TLS) load; without them the feed refuses (exit 3); the token appears in no output and
#     no record
#   FHIR: a centre's snapshot as a FHIR Bundle (NAME.fhir.json) loads by URL like its CSV
#   latest.json: an index document names the newest snapshot; polled again it is already imported,
#   and its CSV is not downloaded again (the control record names the snapshot in force)
#     (exit 0, nothing reloaded)
#   records: every failed fetch is a `fetch_failed` run with its URL and reason, counted by the
#     failed-import metric; nothing is left under var/feeds/, even by a fetch stopped with SIGTERM
#     (the next fetch removes its folder)
# Uses a throwaway database; stops only the server it started. Prints one JSON line; exits 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
server=""
on_cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; }
scratch_db_check check_feed feed-https
export BLOODMATCH_LOG_LEVEL=warning
unset BLOODMATCH_FEED_CA_FILE BLOODMATCH_FEED_DEADLINE BLOODMATCH_FEED_TOKEN_FILE BLOODMATCH_FEED_CLIENT_CERT BLOODMATCH_FEED_CLIENT_KEY
case $bm in /*) bm_abs=$bm ;; *) bm_abs=$PWD/$bm ;; esac
begun=$(date +%s.%N)

# Throwaway CA; server certificates for 127.0.0.1, for another name, and one past its end; a client's.
c="$work/certs"; mkdir -p "$c"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=BloodMatch test CA" -keyout "$c/ca.key" -out "$c/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$c/server.key" -out "$c/server.csr" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=bloodmatch importer" -keyout "$c/client.key" -out "$c/client.csr" 2>/dev/null
sign() {  # CSR NAME DAYS [SAN]
  local ext=()
  if [ -n "${4:-}" ]; then printf 'subjectAltName=%s\n' "$4" >"$c/$2.ext"; ext=(-extfile "$c/$2.ext"); fi
  openssl x509 -req -in "$c/$1" -CA "$c/ca.pem" -CAkey "$c/ca.key" -CAcreateserial -days "$3" "${ext[@]}" -out "$c/$2.pem" 2>/dev/null
}
sign server.csr server 1 IP:127.0.0.1
sign server.csr wrongname 1 DNS:feed.invalid
sign server.csr expired -1 IP:127.0.0.1
sign client.csr client 1
token="bm-canary-token-$RANDOM$RANDOM$RANDOM"
printf '%s\n' "$token" >"$work/token"

"$bm" migrate >/dev/null 2>&1
"$bm" generate --seed 5 --sites-file Data/sites.csv --units 300 --out "$work/gen" >/dev/null
"$bm" sites import Data/sites.csv >/dev/null 2>&1
mkdir -p "$work/www" "$work/cwd"
mapfile -t snaps < <(ls "$work/gen/snapshots/" | grep '\.csv$' | head -5)
for s in "${snaps[@]}"; do cp "$work/gen/snapshots/${s%.csv}".* "$work/www/"; done
centre_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["centre"])' "$work/www/${1%.csv}.ctl.json"; }
printf '{"snapshot": "%s"}\n' "${snaps[3]}" >"$work/www/latest.json"
# The fifth centre's snapshot also as a FHIR Bundle (with its own control record).
bundle=fhir-${snaps[4]%.csv}.fhir.json
python3 Jobs/checks/fhir_feed.py bundle "$work/gen/snapshots/${snaps[4]}" "$work/www/$bundle" >/dev/null || bad fhir_bundle "could not write the Bundle"

python3 Jobs/checks/feed_server.py "$work/www" "$c" "$work/ports" "$work/token" 2>"$work/server.log" &
server=$!
for _ in $(seq 50); do [ -s "$work/ports" ] && break; sleep 0.1; done
port() { awk -v n="$1" '$1 == n {print $2}' "$work/ports"; }
good="https://127.0.0.1:$(port good)"
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

# run NAME ARGS…: `import` from a folder of its own (so its var/feeds/ is the check's); sets rc, secs.
run() {
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  (cd "$work/cwd" && "$bm_abs" import "$@") >"$work/$name.out" 2>&1; rc=$?
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
}
has() { grep -q -- "$2" "$work/$1.out"; }
tries() { grep -c '"feed fetch failed"' "$work/$1.out"; }
expect() {  # KEY WANT_RC [CONDITION_TEXT CONDITION…]: rc and an optional extra test
  local key=$1 want=$2; shift 2
  if [ "$rc" != "$want" ]; then bad "$key" "exit $rc, expected $want: $(grep -v '^\s*$' "$work/$key.out" | tail -1 | tr -d '"\\' | cut -c1-160)"; return; fi
  if [ $# -gt 0 ] && ! eval "$1"; then bad "$key" "exit $rc but not: $1"; return; fi
  ok "$key"
}
sql() { psql_pg -d "$db" -c "$1"; }

# Certificates: refused (exit 3), named, tried once, not "unreachable".
run unknown_ca --url "$good/${snaps[0]}"
expect unknown_ca 3 'has unknown_ca "unknown CA" && [ "$(tries unknown_ca)" = 1 ] && ! has unknown_ca unreachable'
[ "$(sql 'SELECT count(*) FROM bm.centre_status')" = 0 ] && ok untrusted_loaded_nothing || bad untrusted_loaded_nothing "stock loaded"
export BLOODMATCH_FEED_CA_FILE="$c/ca.pem"
run name_mismatch --url "https://127.0.0.1:$(port wrongname)/${snaps[0]}"
expect name_mismatch 3 'has name_mismatch "name mismatch" && [ "$(tries name_mismatch)" = 1 ]'
run expired_certificate --url "https://127.0.0.1:$(port expired)/${snaps[0]}"
expect expired_certificate 3 'has expired_certificate "certificate expired" && [ "$(tries expired_certificate)" = 1 ]'

run verified_fetch --url "$good/${snaps[0]}"
expect verified_fetch 0 '[ "$(sql "SELECT outcome FROM bm.import_runs ORDER BY run_id DESC LIMIT 1")" = loaded ]'

# A fetch stopped by SIGTERM (a job's time limit) leaves its folder; the next fetch removes it.
(cd "$work/cwd" && exec "$bm_abs" import --url "$good/slow/${snaps[1]}") >"$work/killed.out" 2>&1 &
killed=$!
for _ in $(seq 50); do [ -n "$(ls -A "$work/cwd/var/feeds" 2>/dev/null)" ] && break; sleep 0.1; done
kill -TERM "$killed" 2>/dev/null; wait "$killed" 2>/dev/null
left_by_kill=$(ls -A "$work/cwd/var/feeds" 2>/dev/null | wc -l)

# Deadline: 1 byte every 0.3 s; the control record arrives, so the run names its centre.
BLOODMATCH_FEED_DEADLINE=3 run deadline --url "$good/slow/${snaps[1]}"
deadline_secs=$secs
expect deadline 4 'has deadline "no complete answer within 3 s" && awk -v s="$secs" "BEGIN {exit !(s < 8)}"'
[ "$left_by_kill" = 1 ] && has deadline "removed a fetch folder left by a run that did not finish" && ok killed_fetch_swept \
  || bad killed_fetch_swept "$left_by_kill folders after the kill, or not removed by the next fetch"
run bad_deadline --url "$good/${snaps[1]}" --fetch-deadline 0
expect bad_deadline 2

# Size: 600 MiB streamed without a length, refused at the 512 MiB cap; peak RSS of the fetch.
(cd "$work/cwd" && /usr/bin/time -f '%M' -o "$work/rss" "$bm_abs" import --url "$good/big/${snaps[1]}") >"$work/big_body.out" 2>&1; rc=$?
rss_kb=$(tail -1 "$work/rss")
expect big_body 3 'has big_body "over the limit" && [ "$rss_kb" -lt 200000 ]'
run announced_size --url "$good/announced/${snaps[1]}"
expect announced_size 3 'has announced_size "announces 629145600 bytes"'

# Retries: transient only.
run retried_503 --url "$good/flaky/${snaps[0]}"
stats=$(curl -s --cacert "$c/ca.pem" "$good/stats")
expect retried_503 0 'python3 -c "import json,sys; sys.exit(json.loads(sys.argv[1]).get(\"/flaky/${snaps[0]%.csv}.ctl.json\") != 2)" "$stats"'
run missing_file --url "$good/DC001-missing.csv"
stats=$(curl -s --cacert "$c/ca.pem" "$good/stats")
expect missing_file 4 'has missing_file "HTTP 404" && python3 -c "import json,sys; sys.exit(json.loads(sys.argv[1]).get(\"/DC001-missing.ctl.json\") != 1)" "$stats"'
run connection_refused --url "https://127.0.0.1:$closed/${snaps[0]}"
expect connection_refused 4 '[ "$(tries connection_refused)" = 3 ] && has connection_refused "after 3 tries"'

# Credentials: bearer token (option), client certificate (mutual TLS).
run bearer_missing --url "$good/auth/${snaps[1]}"
expect bearer_missing 3 'has bearer_missing "HTTP 401" && [ "$(tries bearer_missing)" = 1 ]'
run bearer_token --url "$good/auth/${snaps[1]}" --bearer-token-file "$work/token"
expect bearer_token 0 '[ "$(sql "SELECT outcome FROM bm.import_runs ORDER BY run_id DESC LIMIT 1")" = loaded ]'
mtls="https://127.0.0.1:$(port mtls)"
run client_cert_missing --url "$mtls/${snaps[2]}"
expect client_cert_missing 3 'has client_cert_missing "certificate" && ! has client_cert_missing unreachable'
run client_cert --url "$mtls/${snaps[2]}" --client-cert "$c/client.pem" --client-key "$c/client.key"
expect client_cert 0 '[ "$(sql "SELECT outcome FROM bm.import_runs ORDER BY run_id DESC LIMIT 1")" = loaded ]'

# latest.json (through the token from the environment): loads, then polled again changes nothing.
latest_centre=$(centre_of "${snaps[3]}")
BLOODMATCH_FEED_TOKEN_FILE="$work/token" run latest --url "$good/auth/latest.json"
expect latest 0 '[ "$(sql "SELECT outcome FROM bm.import_runs ORDER BY run_id DESC LIMIT 1")" = loaded ]'
in_force=$(sql "SELECT current_snapshot_id FROM bm.centre_status WHERE centre = '$latest_centre'")
BLOODMATCH_FEED_TOKEN_FILE="$work/token" run latest_again --url "$good/auth/latest.json"
expect latest_again 0 '[ "$(sql "SELECT outcome FROM bm.import_runs ORDER BY run_id DESC LIMIT 1")" = already_imported ] && [ "$(sql "SELECT current_snapshot_id FROM bm.centre_status WHERE centre = '"'$latest_centre'"'")" = "$in_force" ] && [ "$(sql "SELECT count(*) FROM bm.inventory_snapshots WHERE centre = '"'$latest_centre'"'")" = 1 ]'
# The second poll fetched the index and the control record, not the CSV again.
stats=$(curl -s --cacert "$c/ca.pem" "$good/stats")
expect latest_again_csv_not_fetched 0 'python3 -c "import json,sys; s=json.loads(sys.argv[1]); sys.exit(not (s.get(\"/auth/latest.json\") == 2 and s.get(\"/auth/${snaps[3]%.csv}.ctl.json\") == 2 and s.get(\"/auth/${snaps[3]}\") == 1))" "$stats"'

# A FHIR Bundle by URL: its control record, then the Bundle; loaded like a CSV.
run fhir_bundle --url "$good/$bundle"
expect fhir_bundle 0 '[ "$(sql "SELECT outcome || '"' '"' || rows_accepted FROM bm.import_runs ORDER BY run_id DESC LIMIT 1")" = "loaded $(($(wc -l <"$work/gen/snapshots/${snaps[4]}") - 1))" ]'

run plain_http --url "http://127.0.0.1:$(port good)/${snaps[0]}"
expect plain_http 2
run url_credentials --url "https://user:secret@127.0.0.1:$(port good)/${snaps[0]}"
expect url_credentials 2 '! has url_credentials secret'

# Records: each failed fetch a run (10 above), the deadline's with its centre; the metric counts them.
failed=$(sql "SELECT count(*) FROM bm.import_runs WHERE outcome = 'fetch_failed' AND source LIKE 'https://127.0.0.1:%' AND message <> ''")
[ "$failed" = 10 ] && ok fetch_failures_recorded || bad fetch_failures_recorded "$failed fetch_failed runs, expected 10"
deadline_centre=$(centre_of "${snaps[1]}")
row=$(sql "SELECT centre || ' ' || message FROM bm.import_runs WHERE outcome = 'fetch_failed' AND source = '$good/slow/${snaps[1]}'")
[[ "$row" == "$deadline_centre "*"no complete answer within 3 s"* ]] && ok deadline_recorded || bad deadline_recorded "$row"
row=$(sql "SELECT coalesce(centre, 'NULL') || ' ' || message FROM bm.import_runs WHERE outcome = 'fetch_failed' ORDER BY run_id LIMIT 1")
[[ "$row" == "NULL "*"unknown CA"* ]] && ok certificate_recorded || bad certificate_recorded "$row"
metrics=$("$bm" metrics 2>/dev/null)
metric() { awk -v k="bloodmatch_centre_failed_imports_last_hour{centre=\"$1\"}" '$1 == k {print $2 + 0}' <<<"$metrics"; }
[ "$(metric "$deadline_centre")" -ge 3 ] 2>/dev/null && [ "$(metric unknown)" -ge 1 ] 2>/dev/null && ok failed_import_metric \
  || bad failed_import_metric "$deadline_centre=$(metric "$deadline_centre") unknown=$(metric unknown)"
leaks=$(cat "$work"/*.out | grep -c -- "$token")
leaks_db=$(sql "SELECT count(*) FROM bm.import_runs WHERE source || message LIKE '%$token%'")$(sql "SELECT count(*) FROM bm.event_log WHERE payload::text LIKE '%$token%'")
[ "$leaks" = 0 ] && [ "$leaks_db" = 00 ] && ok token_never_shown || bad token_never_shown "$leaks output lines, $leaks_db records"
left=$(find "$work/cwd/var/feeds" -mindepth 1 2>/dev/null | wc -l)
[ "$left" = 0 ] && ok fetch_folder_empty || bad fetch_folder_empty "$left entries left under var/feeds"

total=$(awk -v a="$begun" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}')
pass=$([ $fail = 0 ] && echo true || echo false)
echo "{\"check\":\"feed-https\",$(IFS=,; echo "${results[*]}"),\"deadline_s\":$deadline_secs,\"big_body_peak_rss_kb\":${rss_kb:-0},\"seconds\":$total,\"pass\":$pass}"
exit $fail
