#!/usr/bin/env bash
# Drill (issue "no single point of failure", the single-node part run in CI): a dispatcher loop of
# match + reserve (each reservation with its own idempotency key) against a throwaway PostgreSQL
# cluster whose postmaster and backends are killed with SIGKILL mid-loop and restarted after 7 s
# (longer than the 5 s connect timeout, so the fail-safe answer is exercised, not raced).
# Measures the outage seen by clients (fault → first successful reservation); checks that every
# answer during the outage is UNABLE TO VERIFY (exit 5), that no acknowledged reservation is lost
# (acked_lost = 0), and that retrying every unacknowledged key with the same key holds nothing
# twice (duplicates = 0); the audit chain still verifies. Stops only the cluster it started.
# Prints one JSON line.
#
#   Jobs/checks/db-restart.sh        env: BLOODMATCH_BIN, ITERATIONS (24)
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
bm=$root/${BLOODMATCH_BIN:-.build/debug/bloodmatch}
[ -x "$bm" ] || { echo "no bloodmatch binary at $bm" >&2; exit 1; }
ITERATIONS=${ITERATIONS:-24}
tmp=$(mktemp -d /tmp/bm-drill-restart.XXXXXX); chmod 755 "$tmp"
port=$(( 57000 + RANDOM % 2000 ))
export BLOODMATCH_PGDATA_ROOT="$tmp/pg" BLOODMATCH_DB_PORT=$port BLOODMATCH_LOG_LEVEL=error
unset DATABASE_URL
cleanup() { Jobs/db.sh stop >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT
Jobs/db.sh start >/dev/null 2>&1 || { echo "throwaway cluster did not start" >&2; exit 1; }
eval "$(Jobs/db.sh env 2>/dev/null)"
sockdir=$(dirname "$BLOODMATCH_DB_SOCKET")
pg() { psql -X -q -At -h "$sockdir" -p "$port" -U postgres -d "$BLOODMATCH_DB_NAME" "$@"; }
"$bm" migrate >/dev/null
printf 'site_id,name,kind,latitude,longitude,region,address\nDRILL01,Drill Centre,distribution_centre,-33.895678,151.184272,AU-02,"Alexandria NSW 2015, Australia"\nH9001,Drill Hospital,hospital,-33.8688,151.2093,AU-02,"Sydney NSW 2000, Australia"\n' >"$tmp/sites.csv"
"$bm" sites import "$tmp/sites.csv" >/dev/null
"$bm" generate --seed 16 --sites-file "$tmp/sites.csv" --units 3000 --as-of "$(date -u -d '-10 minutes' +%Y-%m-%dT%H:%M:%SZ)" --out "$tmp/gen" >/dev/null
"$bm" import "$tmp"/gen/snapshots/*.csv >/dev/null
"$bm" index build --out "$tmp/index.bmidx" >/dev/null

kill_at=$(( ITERATIONS / 3 ))
fault_ns=0; first_ok_after_ns=0
log="$tmp/requests.log"   # key exit
wrong=0
now_ns() { date +%s%N; }
for i in $(seq 1 "$ITERATIONS"); do
  if [ "$i" -eq "$kill_at" ]; then
    pm=$(head -1 "$BLOODMATCH_PGDATA_ROOT/data/postmaster.pid")
    kids=$(ps -o pid= --ppid "$pm" | tr '\n' ' ')
    fault_ns=$(now_ns)
    kill -9 "$pm" $kids 2>/dev/null
    ( sleep 7; Jobs/db.sh start >/dev/null 2>&1 ) &
    restarter=$!
  fi
  key="drill-restart-$i"
  out=$(timeout 20 "$bm" match --hospital H9001 --component RBC --abo O --rhd NEG --quantity 1 --index "$tmp/index.bmidx" --request-id "m-$i" --json 2>/dev/null); mrc=$?
  if [ $mrc -eq 0 ]; then
    decision=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["decisionID"])' <<<"$out")
    rout=$(timeout 20 "$bm" reserve "$decision" --key "$key" 2>/dev/null); rc=$?
  else
    rc=$mrc; rout=$out
  fi
  echo "$key $rc" >>"$log"
  if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then wrong=$((wrong + 1)); echo "unexpected exit $rc at $key: $(head -c 300 <<<"$rout")" >&2; fi
  if [ $rc -eq 5 ] && ! grep -qiE "unable[ _]to[ _]verify|unableToVerify" <<<"$rout"; then wrong=$((wrong + 1)); echo "exit 5 without UNABLE TO VERIFY at $key" >&2; fi
  if [ $rc -eq 0 ] && [ "$fault_ns" -gt 0 ] && [ "$first_ok_after_ns" -eq 0 ]; then first_ok_after_ns=$(now_ns); fi
done
wait "${restarter:-}" 2>/dev/null
Jobs/db.sh start >/dev/null 2>&1
acked=$(awk '$2 == 0' "$log" | wc -l); unverified=$(awk '$2 == 5' "$log" | wc -l)
acked_lost=0
for key in $(awk '$2 == 0 {print $1}' "$log"); do
  [ "$(pg -c "SELECT count(*) FROM bm.reservations WHERE idempotency_key = '$key'")" = 1 ] || acked_lost=$((acked_lost + 1))
done
# Retry every key that got no acknowledgement, with the same key and a fresh decision.
for key in $(awk '$2 != 0 {print $1}' "$log"); do
  i=${key##*-}
  out=$(timeout 20 "$bm" match --hospital H9001 --component RBC --abo O --rhd NEG --quantity 1 --index "$tmp/index.bmidx" --request-id "m-retry-$i" --json 2>/dev/null) || true
  decision=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["decisionID"])' <<<"$out" 2>/dev/null) || continue
  timeout 20 "$bm" reserve "$decision" --key "$key" >/dev/null 2>&1 || true
done
duplicates=$(pg -c "SELECT count(*) FROM (SELECT idempotency_key FROM bm.reservations GROUP BY 1 HAVING count(*) > 1) x")
double_held=$(pg -c "SELECT count(*) FROM (SELECT din, product_code FROM bm.reservation_units WHERE state = 'active' GROUP BY din, product_code HAVING count(*) > 1) x")
verify_rc=0; "$bm" audit verify >/dev/null 2>&1 || verify_rc=$?
outage_ms=$(( first_ok_after_ns > 0 ? (first_ok_after_ns - fault_ns) / 1000000 : -1 ))
pass=true
{ [ "$acked_lost" -eq 0 ] && [ "$duplicates" = 0 ] && [ "$double_held" = 0 ] && [ $wrong -eq 0 ] && [ $verify_rc -eq 0 ] \
  && [ "$unverified" -ge 1 ] && [ "$outage_ms" -ge 0 ]; } || pass=false
printf '{"drill":"db-restart","pass":%s,"iterations":%s,"acknowledged":%s,"unable_to_verify":%s,"other_errors":%s,"outage_ms":%s,"acked_lost":%s,"duplicates":%s,"units_held_twice":%s,"audit_verify_exit":%s}\n' \
  "$pass" "$ITERATIONS" "$acked" "$unverified" "$wrong" "$outage_ms" "$acked_lost" "$duplicates" "$double_held" "$verify_rc"
$pass
