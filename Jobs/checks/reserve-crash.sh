#!/usr/bin/env bash
# Drill (issue "audit trail, reservations"): kill -9 the CLI between the database's commit and its
# reply, for `reserve` and for `reservation issue`, then retry with the same idempotency key: the
# retry must return the same reservation (same id, nothing held twice) and the same distribution
# records, with exactly one audit event each. Then the audit chain must verify, a superuser edit
# behind the triggers must make `audit verify` exit 7 and name the row, and `trace` must show the
# unit's whole history. Throwaway database on the embedded cluster; prints one JSON line.
#
#   Jobs/checks/reserve-crash.sh        env: BLOODMATCH_BIN
set -euo pipefail
cd "$(dirname "$0")/../.."
started_at=$(date +%s)
if [ -n "${DATABASE_URL:-}" ]; then
  echo '{"drill":"reserve-crash","skipped":"DATABASE_URL is set; the drill needs the embedded cluster (it creates and drops its own database)","pass":true}'
  exit 0
fi
bm=${BLOODMATCH_BIN:-.build/debug/bloodmatch}
[ -x "$bm" ] || { echo "no bloodmatch binary at $bm; run swift build first" >&2; exit 1; }
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env 2>/dev/null)"
sockdir=$(dirname "$BLOODMATCH_DB_SOCKET"); port=${BLOODMATCH_DB_SOCKET##*.}
db="bm_drill_reserve_$$"
export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
work=$(mktemp -d /tmp/bm-drill-reserve.XXXXXX)
pg() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U postgres "$@"; }
cleanup() {
  pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  pg -d postgres -c "DROP ROLE IF EXISTS drill_$$" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
failures=()
check() { if ! eval "$2"; then failures+=("$1"); echo "FAILED: $1" >&2; fi; }

pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner TEMPLATE template0"
"$bm" migrate >/dev/null
# Issuing needs a dispatcher login of its own.
"$bm" operator add "drill_$$" --role dispatcher --password-file "$work/drill.password" >/dev/null
export BLOODMATCH_OPERATOR="drill_$$" BLOODMATCH_OPERATOR_PASSWORD_FILE="$work/drill.password"
printf 'site_id,name,kind,latitude,longitude,region,address\nDRILL01,Drill Centre,distribution_centre,-33.895678,151.184272,AU-02,"Alexandria NSW 2015, Australia"\nH9001,Drill Hospital,hospital,-33.8688,151.2093,AU-02,"Sydney NSW 2000, Australia"\n' >"$work/sites.csv"
"$bm" sites import "$work/sites.csv" >/dev/null
"$bm" generate --seed 11 --sites-file "$work/sites.csv" --units 2000 --as-of "$(date -u -d '-10 minutes' +%Y-%m-%dT%H:%M:%SZ)" --out "$work/gen" >/dev/null
"$bm" import "$work"/gen/snapshots/*.csv >/dev/null
"$bm" index build --out "$work/index.bmidx" >/dev/null
"$bm" match --hospital H9001 --component RBC --abo O --rhd NEG --quantity 2 --index "$work/index.bmidx" \
  --request-id drill-match-1 --json >"$work/decision.json"
decision=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["decisionID"])' "$work/decision.json")

# --- reserve: killed after commit, then retried with the same key
set +e
BLOODMATCH_FAULT=kill-after-commit:reserve "$bm" reserve "$decision" --key drill-res-1 --json >"$work/killed.out" 2>&1
killed_rc=$?
set -e
check "reserve was killed (exit $killed_rc, expected 137)" '[ "$killed_rc" -eq 137 ]'
check "the killed reserve printed nothing" '[ ! -s "$work/killed.out" ]'
held_before=$(pg -d "$db" -c "SELECT count(*) FROM bm.reservation_units WHERE state = 'active'")
"$bm" reserve "$decision" --key drill-res-1 --json >"$work/retry.json"
res_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reservationID"].lower())' "$work/retry.json")
db_res=$(pg -d "$db" -c "SELECT reservation_id FROM bm.reservations WHERE idempotency_key = 'drill-res-1'")
check "retry returned the reservation the killed run committed" '[ "$res_id" = "$db_res" ]'
check "2 units held before and after the retry" '[ "$held_before" = 2 ] && [ "$(pg -d "$db" -c "SELECT count(*) FROM bm.reservation_units WHERE state = '"'"'active'"'"'")" = 2 ]'
check "one reservation.made event" '[ "$(pg -d "$db" -c "SELECT count(*) FROM bm.event_log WHERE action = '"'"'reservation.made'"'"'")" = 1 ]'
set +e; "$bm" reserve "$decision" --key drill-res-2 >"$work/second.out" 2>/dev/null; second_rc=$?; set -e
check "a second key for the same units is refused with exit 3 (got $second_rc)" '[ "$second_rc" -eq 3 ] && grep -q "held by another reservation" "$work/second.out"'

# --- issue: killed after commit, then retried with the same key
set +e
BLOODMATCH_FAULT=kill-after-commit:issue "$bm" reservation issue "$res_id" --key drill-issue-1 >/dev/null 2>&1
issue_rc=$?
set -e
check "issue was killed (exit $issue_rc)" '[ "$issue_rc" -eq 137 ]'
"$bm" reservation issue "$res_id" --key drill-issue-1 >"$work/issue.out"
check "retry returns the 2 issued units" 'grep -q "already issued under this key (nothing new written): 2 unit" "$work/issue.out"'
check "2 distribution records" '[ "$(pg -d "$db" -c "SELECT count(*) FROM bm.distributions")" = 2 ]'
check "one unit.issued event" '[ "$(pg -d "$db" -c "SELECT count(*) FROM bm.event_log WHERE action = '"'"'unit.issued'"'"'")" = 1 ]'
din=$(pg -d "$db" -c "SELECT din FROM bm.distributions ORDER BY din LIMIT 1")
"$bm" trace "$din" >"$work/trace.out"
check "trace shows snapshot, decision, reservation and distribution" \
  'grep -q "appeared" "$work/trace.out" && grep -q "CHOSEN" "$work/trace.out" && grep -q ": issued" "$work/trace.out" && grep -q "issued to H9001" "$work/trace.out"'
"$bm" distribution export --from "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)" --to "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" >"$work/dist.csv"
check "distribution export has 2 rows" '[ "$(tail -n +2 "$work/dist.csv" | wc -l)" = 2 ]'

# --- audit: intact, then a superuser edit behind the triggers is named
"$bm" audit checkpoint --out "$work/checkpoint.json" >/dev/null
check "audit verify passes" '"$bm" audit verify --checkpoint "$work/checkpoint.json" >/dev/null'
target=$(pg -d "$db" -c "SELECT c.chain_seq FROM bm.event_log e JOIN bm.event_chain c ON c.seq = e.seq WHERE e.action = 'reservation.made' ORDER BY 1 LIMIT 1")
pg -d "$db" -c "SET session_replication_role = replica; UPDATE bm.event_log SET payload = payload || '{\"hold_seconds\": 1}' WHERE seq = (SELECT seq FROM bm.event_chain WHERE chain_seq = $target)" >/dev/null
set +e; "$bm" audit verify >"$work/verify.out" 2>/dev/null; verify_rc=$?; set -e
check "audit verify exits 7 after tampering (got $verify_rc)" '[ "$verify_rc" -eq 7 ]'
check "audit verify names chain position $target" 'grep -q "chain position $target " "$work/verify.out"'

pass=true; [ ${#failures[@]} -eq 0 ] || pass=false
printf '{"drill":"reserve-crash","pass":%s,"reserve_killed_rc":%s,"issue_killed_rc":%s,"failures":%s,"seconds":%s}\n' \
  "$pass" "$killed_rc" "$issue_rc" "$(printf '%s\n' "${failures[@]:-}" | python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin if l.strip()]))')" \
  "$(( $(date +%s) - started_at ))"
$pass
