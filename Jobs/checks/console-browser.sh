#!/usr/bin/env bash
# The dispatcher console in a real browser (Debian's headless Chromium driven by Selenium), on a
# throwaway PostgreSQL cluster of its own (it is stopped mid-check): 12 centres of Data/sites.csv,
# one of them stale (its snapshot 3 h old) and one with no data. Steps (Jobs/checks/console_browser.py):
# log in as a supervisor; the map and the table show every centre; the stale and no-data centres
# are flagged; no WCAG 2 A/AA violation (axe-core) on the log-in page and the console; no sideways
# scrolling at 1280×800 nor on a tablet (768×1024); a match for 2 O RhD-negative red-cell units for a woman of 30 shows the units the
# CLI chooses for the same question, with no flag; reserve; issue (the database's distribution
# records name the supervisor); a viewer is not offered the match and is refused an issue; the
# database stopped → the "unable to verify" banner and no numbers; the database back → the page
# recovers; the orders panel lists the pending order, the last run's dispatch list and the order it
# could not fill with why; the stock-at-risk panel answers; the centre without data sends its first
# snapshot and the open page shows it current within seconds; a trace of an issued unit shows its hold
# and its issue. Screenshots of each step go to var/console-screens/ (ignored by git).
# Then, without a browser: a missing or wrong CSRF token, another operator's token, a cross-origin
# post, a hospital API key, and the console's cookie on the hospital API are all refused; every
# console request is in the audit chain under the operator who made it, and `audit verify` passes.
# Stops only the cluster and processes it started. Prints one JSON line; exits 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
started=$(date +%s)
bm=${BLOODMATCH_BIN:-}
if [ -z "$bm" ]; then
  bm=.build/release/bloodmatch
  { [ -x .build/debug/bloodmatch ] && { [ ! -x "$bm" ] || [ .build/debug/bloodmatch -nt "$bm" ]; }; } && bm=.build/debug/bloodmatch
fi
bm=$root/$bm
fail=0; results=()
ok() { results+=("\"$1\":\"ok\""); }
bad() { local m=${2//\\/\\\\}; m=${m//\"/\\\"}; m=${m//$'\n'/\\n}; m=${m//$'\t'/ }; results+=("\"$1\":\"FAILED: $m\""); fail=1; }
finish() {
  printf '{"check":"console-browser","seconds":%s,"pass":%s,%s}\n' "$(( $(date +%s) - started ))" "$([ "$fail" = 0 ] && echo true || echo false)" "$(IFS=,; echo "${results[*]}")"
  exit "$fail"
}
if [ -n "${DATABASE_URL:-}" ]; then echo '{"check":"console-browser","skipped":"DATABASE_URL is set","pass":true}'; exit 0; fi
command -v chromium >/dev/null && command -v chromedriver >/dev/null && python3 -c 'import selenium, axe_selenium_python' 2>/dev/null \
  || { bad tools "chromium, chromium-driver and selenium are needed (Jobs/setup.sh installs them)"; finish; }

tmp=$(mktemp -d /tmp/bm-console.XXXXXX); chmod 755 "$tmp"
pgport=$(( 57000 + RANDOM % 2000 ))
export BLOODMATCH_PGDATA_ROOT="$tmp/pg" BLOODMATCH_DB_PORT=$pgport BLOODMATCH_LOG_LEVEL=error HOME="$tmp/home"
mkdir -p "$HOME"
console=""; server=""
cleanup() {
  for p in $console $server; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  Jobs/db.sh stop >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
Jobs/db.sh start >/dev/null 2>&1 || { bad cluster "the throwaway cluster did not start"; finish; }
eval "$(Jobs/db.sh env 2>/dev/null)"
sockdir=$(dirname "$BLOODMATCH_DB_SOCKET")
pg() { psql -X -qAt -h "$sockdir" -p "$pgport" -U postgres -d "$BLOODMATCH_DB_NAME" "$@"; }

"$bm" migrate >/dev/null 2>&1 || bad migrate "migrate failed"
"$bm" sites import Data/sites.csv >/dev/null 2>&1 || bad sites "import failed"
fresh=$(date -u -d '-5 minutes' +%Y-%m-%dT%H:%M:%SZ); old=$(date -u -d '-3 hours' +%Y-%m-%dT%H:%M:%SZ)
"$bm" generate --seed 21 --sites-file Data/sites.csv --units 6000 --as-of "$fresh" --out "$tmp/fresh" >/dev/null 2>&1
"$bm" generate --seed 21 --sites-file Data/sites.csv --units 6000 --as-of "$old" --out "$tmp/old" >/dev/null 2>&1
stale_centre=DC011; nodata_centre=DC012
files=()
for f in "$tmp"/fresh/snapshots/*.csv; do
  case "$(basename "$f")" in "$stale_centre"-*|"$nodata_centre"-*) ;; *) files+=("$f") ;; esac
done
files+=("$tmp"/old/snapshots/"$stale_centre"-*.csv)
"$bm" import "${files[@]}" >"$tmp/import.out" 2>&1 || bad import "$(tail -3 "$tmp/import.out")"
"$bm" index build --out "$tmp/index.bmidx" >/dev/null 2>&1 || bad index "build failed"
for r in sup:supervisor view:viewer job:job; do
  "$bm" operator add "console_${r%%:*}" --role "${r##*:}" --password-file "$tmp/${r%%:*}.pw" >/dev/null 2>&1 || bad operator "could not add ${r##*:}"
done
hospital_key=$(BLOODMATCH_OPERATOR=console_sup BLOODMATCH_OPERATOR_PASSWORD_FILE="$tmp/sup.pw" "$bm" hospital key create H0001 --label console-check --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') \
  || bad key "no hospital key"
[ -n "$hospital_key" ] || bad key "no hospital key"

# Orders and a batch run for the orders panel: one order the run fills, one it cannot (HLA-matched
# platelets: the generated stock has none), and one placed after the run (still pending).
as_sup() { BLOODMATCH_OPERATOR=console_sup BLOODMATCH_OPERATOR_PASSWORD_FILE="$tmp/sup.pw" "$bm" "$@"; }
as_sup order add --order-id ORD-C1 --hospital H0002 --component RBC --abo A --rhd POS --quantity 2 --urgency routine >/dev/null 2>&1 || bad orders "ORD-C1"
as_sup order add --order-id ORD-C3 --hospital H0004 --component PLT --abo O --rhd POS --quantity 2 --require HLA_MATCHED --urgency routine >/dev/null 2>&1 || bad orders "ORD-C3"
BLOODMATCH_OPERATOR=console_job BLOODMATCH_OPERATOR_PASSWORD_FILE="$tmp/job.pw" "$bm" batch run --run-key console-check >"$tmp/batch.out" 2>&1
[ $? -le 3 ] || bad batch "$(tail -3 "$tmp/batch.out")"
as_sup order add --order-id ORD-C4 --hospital H0003 --component PLT --abo O --rhd POS --quantity 1 --urgency urgent >/dev/null 2>&1 || bad orders "ORD-C4"

free_port() { local p=$(( $1 + RANDOM % 100 )); while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$(( $1 + RANDOM % 100 )); done; echo "$p"; }
cport=$(free_port 18800)
"$bm" console --port "$cport" --index "$tmp/index.bmidx" 2>"$tmp/console.log" &
console=$!
aport=$(free_port 18900)
"$bm" serve --port "$aport" --index "$tmp/index.bmidx" 2>"$tmp/serve.log" &
server=$!
for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$cport/console/login" >/dev/null 2>&1 && curl -sf "http://127.0.0.1:$aport/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$cport/console/login" >/dev/null || bad console_start "$(tail -3 "$tmp/console.log")"
base="http://127.0.0.1:$cport"

# The CLI's answer to the same question, before anything is held: the console must show these units.
"$bm" match --hospital H0001 --component RBC --abo O --rhd NEG --quantity 2 --sex female --age 30 --urgency urgent \
  --request-id console-check-cli --json >"$tmp/cli.json" 2>"$tmp/cli.err"
cli_dins=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(",".join(sorted(u["din"] for u in d.get("units", d.get("chosen", [])))))' "$tmp/cli.json" 2>/dev/null)
[ -n "$cli_dins" ] || bad cli_match "$(tail -c 400 "$tmp/cli.err")"

mkdir -p var/console-screens && rm -f var/console-screens/*.png   # this run's screenshots only
stop_db="$tmp/stop-db"; start_db="$tmp/start-db"
printf '#!/bin/sh\ncd %q && BLOODMATCH_PGDATA_ROOT=%q BLOODMATCH_DB_PORT=%s Jobs/db.sh stop >/dev/null 2>&1\n' "$root" "$tmp/pg" "$pgport" >"$stop_db"
printf '#!/bin/sh\ncd %q && BLOODMATCH_PGDATA_ROOT=%q BLOODMATCH_DB_PORT=%s Jobs/db.sh start >/dev/null 2>&1\n' "$root" "$tmp/pg" "$pgport" >"$start_db"
import_late="$tmp/import-late"   # the centre without data sends its first snapshot while the page is open
printf '#!/bin/sh\ncd %q && BLOODMATCH_DB_SOCKET=%q BLOODMATCH_DB_NAME=%q BLOODMATCH_LOG_LEVEL=error %q import %q >/dev/null 2>&1\n' \
  "$root" "$BLOODMATCH_DB_SOCKET" "$BLOODMATCH_DB_NAME" "$bm" "$(ls "$tmp"/fresh/snapshots/"$nodata_centre"-*.csv)" >"$import_late"
chmod +x "$stop_db" "$start_db" "$import_late"
timeout 240 python3 Jobs/checks/console_browser.py --base "$base" --supervisor console_sup --supervisor-password-file "$tmp/sup.pw" \
  --viewer console_view --viewer-password-file "$tmp/view.pw" --stale "$stale_centre" --no-data "$nodata_centre" --centres 12 \
  --cli-dins "$cli_dins" --stop-db "$stop_db" --start-db "$start_db" --import-late "$import_late" --screens var/console-screens >"$tmp/browser.json" 2>"$tmp/browser.err"
rc=$?
if [ "$rc" -eq 0 ]; then
  ok "browser_$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["steps"])' "$tmp/browser.json")_steps"
else
  bad browser "exit $rc: $(tail -c 1500 "$tmp/browser.err")"
fi
decision=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("decision_id",""))' "$tmp/browser.json" 2>/dev/null)
if [ -n "$decision" ]; then
  shown=$(python3 -c 'import json,sys; print(",".join(sorted(json.load(open(sys.argv[1]))["dins"])))' "$tmp/browser.json")
  recorded=$(pg -c "SELECT string_agg(din, ',' ORDER BY din) FROM bm.decision_units WHERE decision_id = '$decision' AND chosen")
  [ "$shown" = "$recorded" ] && ok shown_units_are_recorded || bad shown_units_are_recorded "page $shown, database $recorded"
  issued=$(pg -c "SELECT count(*) || ' ' || string_agg(DISTINCT issued_by, ',') FROM bm.distributions")
  [ "$issued" = "2 operator:console_sup" ] && ok issued_by_supervisor || bad issued_by_supervisor "distributions: $issued"
fi

# Security, without a browser (curl sends what a hostile page or client would).
login() {  # name passwordfile jar
  curl -s -o /dev/null -X POST "$base/console/login" -H "Origin: $base" --data-urlencode "operator=$1" \
    --data-urlencode "password=$(cat "$2")" -c "$3"
}
csrf() { curl -s -b "$1" "$base/console/api/session" | python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])'; }
login console_sup "$tmp/sup.pw" "$tmp/sup.jar"; login console_view "$tmp/view.pw" "$tmp/view.jar"
sup_csrf=$(csrf "$tmp/sup.jar"); view_csrf=$(csrf "$tmp/view.jar")
body='{"hospital_id":"H0001","component":"RBC","recipient":{"abo":"O","rhd":"NEG"},"quantity":1}'
post() { curl -s -o /dev/null -w '%{http_code}' -X POST "$base/console/api/match" -H 'Content-Type: application/json' -d "$body" "$@"; }
code=$(post -b "$tmp/sup.jar" -H "Idempotency-Key: csrf-missing-01"); [ "$code" = 403 ] && ok csrf_missing_refused || bad csrf_missing_refused "HTTP $code"
code=$(post -b "$tmp/sup.jar" -H "X-CSRF-Token: wrong-token" -H "Idempotency-Key: csrf-wrong-001"); [ "$code" = 403 ] && ok csrf_wrong_refused || bad csrf_wrong_refused "HTTP $code"
code=$(post -b "$tmp/view.jar" -H "X-CSRF-Token: $sup_csrf" -H "Idempotency-Key: csrf-other-001"); [ "$code" = 403 ] && ok other_operators_token_refused || bad other_operators_token_refused "HTTP $code"
code=$(post -b "$tmp/sup.jar" -H "X-CSRF-Token: $sup_csrf" -H "Origin: http://evil.example" -H "Idempotency-Key: cross-origin-01"); [ "$code" = 403 ] && ok cross_origin_refused || bad cross_origin_refused "HTTP $code"
code=$(post -b "$tmp/view.jar" -H "X-CSRF-Token: $view_csrf" -H "Idempotency-Key: viewer-match-01"); [ "$code" = 403 ] && ok viewer_match_refused || bad viewer_match_refused "HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $hospital_key" "$base/console/api/overview"); [ "$code" = 401 ] && ok api_key_does_not_open_console || bad api_key_does_not_open_console "HTTP $code"
sup_cookie=$(awk '$6=="bm_console"{print $7}' "$tmp/sup.jar")
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: bm_console=$sup_cookie" "http://127.0.0.1:$aport/v1/availability?component=RBC&abo=O&rhd=NEG"); [ "$code" = 401 ] && ok console_cookie_does_not_open_api || bad console_cookie_does_not_open_api "HTTP $code"
viewer_db=$(psql -X -qAt "host=$sockdir port=$pgport dbname=$BLOODMATCH_DB_NAME user=console_view password=$(cat "$tmp/view.pw")" \
  -c "INSERT INTO bm.event_log (actor, action, subject) VALUES ('operator:console_sup', 'unit.issued', 'x')" 2>&1)
case "$viewer_db" in *"permission denied"*) ok viewer_cannot_write_events ;; *) bad viewer_cannot_write_events "$viewer_db" ;; esac
forged=$(psql -X -qAt "host=$sockdir port=$pgport dbname=$BLOODMATCH_DB_NAME user=console_view password=$(cat "$tmp/view.pw")" \
  -c "SELECT bm.console_record('unit.issued', 'x', 'r', '{}')" 2>&1)
case "$forged" in *"console.* events only"*) ok console_record_takes_console_events_only ;; *) bad console_record_takes_console_events_only "$forged" ;; esac
who=$(pg -c "SELECT string_agg(DISTINCT actor, ',' ORDER BY actor) FROM bm.event_log WHERE action = 'console.request'")
assets=$(pg -c "SELECT count(*) FROM bm.event_log WHERE action = 'console.request' AND subject = '/console/assets/{file}'")
pages=$(pg -c "SELECT count(*) FROM bm.event_log WHERE action = 'console.request' AND subject = '/console/api/overview'")
[ "$assets" = 0 ] && [ "$pages" -gt 0 ] && ok static_files_not_recorded_data_reads_are || bad static_files_not_recorded_data_reads_are "assets $assets, overview reads $pages"
[ "$who" = "operator:console_sup,operator:console_view" ] && ok requests_recorded_as_their_operators || bad requests_recorded_as_their_operators "actors: $who"
# SIGTERM with a page's live stream open: the stream is told to end, so the drain is not held for
# the stream's lifetime (120 s).
curl -s -N -b "$tmp/sup.jar" "$base/console/api/live" >/dev/null 2>&1 &
stream=$!
sleep 1
t0=$(date +%s%N)
kill -TERM "$console"; wait "$console" 2>/dev/null; console=""
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill "$stream" 2>/dev/null; wait "$stream" 2>/dev/null
[ "$stop_ms" -lt 10000 ] && ok "stopped_with_a_stream_open_in_${stop_ms}_ms" || bad stopped_with_a_stream_open "took $stop_ms ms"
kill -TERM "$server"; wait "$server" 2>/dev/null; server=""
"$bm" audit verify >"$tmp/verify.out" 2>&1 && ok audit_verify || bad audit_verify "$(tail -3 "$tmp/verify.out")"
finish
