#!/usr/bin/env bash
# Drill (Data/SOURCES.md §S19): kill -9 the import at random moments and prove that a centre's
# stock is always the old snapshot or the new one, never a mix, with nothing left holding locks.
#
# In a throwaway database on the embedded cluster: load an old snapshot of one centre, then
# KILLS times start importing a newer one and kill -9 that process after 0.05–3 s; after each
# kill, psql checks that exactly one snapshot is in force and that its units (count and an MD5
# over every field of every row) equal the old or the new file's, that no session is left idle
# in a transaction and that no advisory lock is held. One more run is ended from the server side
# (pg_terminate_backend during COPY). Finally the new snapshot is imported (loaded) and again
# (the snapshot in force, same as_of and bytes: already imported), and no unit (DIN and product
# code) is in force twice. Prints one JSON line; exits 1 when any check fails.
#
#   Jobs/checks/kill-import.sh        env: KILLS (20), ROWS (150000), DRILL_SEED (random), BLOODMATCH_BIN
set -euo pipefail
cd "$(dirname "$0")/../.."
started_at=$(date +%s)
KILLS=${KILLS:-20}
ROWS=${ROWS:-150000}
seed=${DRILL_SEED:-$(( $(date +%s) % 32768 ))}
RANDOM=$seed

say() { printf '{"ts":"%s","level":"info","logger":"drill.kill-import","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$1" >&2; }
if [ -n "${DATABASE_URL:-}" ]; then
  echo '{"drill":"kill-import","skipped":"DATABASE_URL is set; the drill needs the embedded cluster (it creates and drops its own database)","pass":true}'
  exit 0
fi

# The newest build (a release build imports 150k rows in about 2 s, so kills land in every phase:
# decoding, COPY, conflict check, pointer swap, DELETE, COMMIT; a debug build takes about 25 s).
bm=${BLOODMATCH_BIN:-}
if [ -z "$bm" ]; then
  for candidate in .build/release/bloodmatch .build/debug/bloodmatch; do
    [ -x "$candidate" ] && { [ -z "$bm" ] || [ "$candidate" -nt "$bm" ]; } && bm=$candidate
  done
fi
[ -n "$bm" ] && [ -x "$bm" ] || { echo "no bloodmatch binary; run swift build first" >&2; exit 1; }
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env 2>/dev/null)"
sockdir=$(dirname "$BLOODMATCH_DB_SOCKET"); port=${BLOODMATCH_DB_SOCKET##*.}
db="bm_drill_kill_$$"
export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
work=$(mktemp -d /tmp/bm-drill-kill.XXXXXX)
child=""

pg() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U postgres "$@"; }
cleanup() {
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then kill -9 "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP DATABASE IF EXISTS ${db}_base WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- a throwaway database with one centre and two snapshots of ROWS units each
pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner TEMPLATE template0"
"$bm" migrate >/dev/null
printf 'site_id,name,kind,latitude,longitude,region,address\nDRILL01,Drill Centre,distribution_centre,-33.895678,151.184272,AU-02,"Alexandria NSW 2015, Australia"\nH9001,Drill Hospital,hospital,-33.8688,151.2093,AU-02,"Sydney NSW 2000, Australia"\n' >"$work/sites.csv"
"$bm" sites import "$work/sites.csv" >/dev/null
old_as_of=$(date -u -d '-2 hours' +%Y-%m-%dT%H:%M:%SZ)
new_as_of=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
"$bm" generate --seed 7 --sites-file "$work/sites.csv" --units "$ROWS" --as-of "$old_as_of" --out "$work/old" >/dev/null
"$bm" generate --seed 8 --sites-file "$work/sites.csv" --units "$ROWS" --as-of "$new_as_of" --out "$work/new" >/dev/null
old_csv=$(ls "$work"/old/snapshots/*.csv); new_csv=$(ls "$work"/new/snapshots/*.csv)

# Every field of a unit as one line of text, the same expression over the files and the table.
row_text="din||','||product_code||','||component||','||abo||','||rhd||','||collected||','||expires||','||site_id||','||status||','||attributes"
fingerprint() {  # count|md5 of the rows of a relation with text columns named as in row_text
  echo "SELECT count(*) || '|' || coalesce(md5(string_agg($row_text, E'\\n' ORDER BY din, product_code)), '') FROM $1"
}
pg -d "$db" <<SQL
CREATE TABLE public.drill_file (which text, din text, product_code text, component text, abo text, rhd text,
  collected text, expires text, site_id text, status text, attributes text);
CREATE TEMP TABLE f (din text, product_code text, component text, abo text, rhd text, collected text, expires text,
  site_id text, status text, attributes text);
\copy f FROM '$old_csv' WITH (FORMAT csv, HEADER true, FORCE_NOT_NULL (attributes))
INSERT INTO public.drill_file SELECT 'old', * FROM f; TRUNCATE f;
\copy f FROM '$new_csv' WITH (FORMAT csv, HEADER true, FORCE_NOT_NULL (attributes))
INSERT INTO public.drill_file SELECT 'new', * FROM f;
SQL
expect_old=$(pg -d "$db" -c "$(fingerprint "public.drill_file WHERE which = 'old'")")
expect_new=$(pg -d "$db" -c "$(fingerprint "public.drill_file WHERE which = 'new'")")
[ "$expect_old" != "$expect_new" ] || { echo "the two generated snapshots are identical; the drill would prove nothing" >&2; exit 1; }

in_force="(SELECT u.din, u.product_code, u.component, u.abo, u.rhd,
    to_char(u.collected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS collected,
    to_char(u.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS expires, u.site_id, u.status, u.attributes
  FROM bm.inventory_units u JOIN bm.centre_status c ON c.current_snapshot_id = u.snapshot_id WHERE c.centre = 'DRILL01') AS cur"
# state: pointers|snapshot groups with rows|count|md5|last_as_of|idle-in-transaction|advisory locks|loads without a run record
state() {
  pg -d "$db" -c "SELECT (SELECT count(*) FROM bm.centre_status WHERE centre = 'DRILL01')
    || '|' || (SELECT count(DISTINCT u.snapshot_id) FROM bm.inventory_units u JOIN bm.inventory_snapshots s USING (snapshot_id) WHERE s.centre = 'DRILL01')
    || '|' || ($(fingerprint "$in_force"))
    || '|' || (SELECT to_char(last_as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM bm.centre_status WHERE centre = 'DRILL01')
    || '|' || (SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND state LIKE 'idle in transaction%')
    || '|' || (SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = '$db' AND l.locktype = 'advisory')
    || '|' || (SELECT count(*) FROM bm.inventory_snapshots s WHERE NOT EXISTS (SELECT 1 FROM bm.import_runs r
                 WHERE r.snapshot_id = s.snapshot_id AND r.outcome IN ('loaded', 'loaded_with_rejections')))"
}
classify() {  # old | new | mixed (and the failure reason on stderr)
  local s=$1 pointers groups fp as_of idle locks unrecorded
  IFS='|' read -r pointers groups count md5 as_of idle locks unrecorded <<<"$s"
  fp="$count|$md5"
  if [ "$pointers" != 1 ] || [ "$groups" != 1 ]; then echo "mixed"; echo "pointers=$pointers snapshot groups=$groups" >&2; return; fi
  if [ "$idle" != 0 ] || [ "$locks" != 0 ] || [ "$unrecorded" != 0 ]; then echo "dirty"; echo "idle_in_tx=$idle advisory_locks=$locks unrecorded=$unrecorded" >&2; return; fi
  if [ "$fp" = "$expect_old" ] && [ "$as_of" = "$old_as_of" ]; then echo old
  elif [ "$fp" = "$expect_new" ] && [ "$as_of" = "$new_as_of" ]; then echo new
  else echo mixed; echo "in force: $fp as of $as_of" >&2; fi
}
backends() { pg -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND application_name = 'bloodmatch'"; }
wait_backends_gone() {  # prints milliseconds until the killed client's backend has exited (or 10000)
  local t0; t0=$(date +%s%N)
  while [ "$(backends)" != 0 ]; do
    if [ $(( ($(date +%s%N) - t0) / 1000000 )) -ge 10000 ]; then echo 10000; return; fi
    sleep 0.02
  done
  echo $(( ($(date +%s%N) - t0) / 1000000 ))
}

t0=$(date +%s%N)
"$bm" import "$old_csv" >/dev/null
import_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(classify "$(state)")" = old ] || { echo "the old snapshot did not load as expected" >&2; exit 1; }
# A copy to return to when an import finishes before its kill lands.
pg -d postgres -c "CREATE DATABASE ${db}_base TEMPLATE $db OWNER bloodmatch_owner"
reset_to_old() {
  pg -d postgres -c "DROP DATABASE $db WITH (FORCE)" -c "CREATE DATABASE $db TEMPLATE ${db}_base OWNER bloodmatch_owner"
}
say "old snapshot loaded ($ROWS rows); killing $KILLS imports of the new one (seed $seed)"

kills=0 finished_first=0 mixed=0 dirty=0 as_old=0 as_new=0 max_exit_ms=0 delays=()
for i in $(seq 1 "$KILLS"); do
  delay_ms=$(( 50 + RANDOM % 2951 ))
  delays+=("$delay_ms")
  "$bm" import "$new_csv" >"$work/run-$i.log" 2>&1 &
  child=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  if kill -9 "$child" 2>/dev/null; then kills=$((kills + 1)); else finished_first=$((finished_first + 1)); fi
  wait "$child" 2>/dev/null || true
  child=""
  exit_ms=$(wait_backends_gone); [ "$exit_ms" -gt "$max_exit_ms" ] && max_exit_ms=$exit_ms
  verdict=$(classify "$(state)" 2>>"$work/problems.log")
  case $verdict in
    old) as_old=$((as_old + 1)) ;;
    new) as_new=$((as_new + 1)); reset_to_old ;;
    dirty) dirty=$((dirty + 1)) ;;
    *) mixed=$((mixed + 1)) ;;
  esac
done

# Server side: terminate the import's backend while it is in COPY.
"$bm" import "$new_csv" >"$work/terminate.log" 2>&1 &
child=$!
terminated=0
for _ in $(seq 1 1000); do
  n=$(pg -d postgres -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '$db' AND state = 'active' AND query ILIKE 'copy%'")
  [ "$n" -gt 0 ] && { terminated=1; break; }
  kill -0 "$child" 2>/dev/null || break
  sleep 0.01
done
# The client must notice and exit (5: database unavailable) on its own; it is never left hanging.
terminate_exit_ms=0; t0=$(date +%s%N)
while kill -0 "$child" 2>/dev/null && [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 30000 ]; do sleep 0.05; done
terminate_exit_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
hung=false
if kill -0 "$child" 2>/dev/null; then hung=true; kill -9 "$child" 2>/dev/null || true; fi
terminate_rc=0; wait "$child" 2>/dev/null || terminate_rc=$?
child=""
wait_backends_gone >/dev/null
terminate_state=$(classify "$(state)" 2>>"$work/problems.log")

# The new snapshot loads, and a second run changes nothing.
final_rc=0; "$bm" import "$new_csv" >"$work/final.log" 2>&1 || final_rc=$?
rerun_rc=0; "$bm" import "$new_csv" >"$work/rerun.log" 2>&1 || rerun_rc=$?
final_state=$(classify "$(state)" 2>>"$work/problems.log")
grep -q '^LOADED:' "$work/final.log" && final=loaded || final=$(head -c 200 "$work/final.log" | tr -d '"\n')
grep -q 'already imported sha256=' "$work/rerun.log" && rerun=already_imported || rerun=$(head -c 200 "$work/rerun.log" | tr -d '"\n')
duplicates=$(pg -d "$db" -c "SELECT count(*) - count(DISTINCT (din, product_code)) FROM $in_force")

pass=true
[ "$kills" -ge 20 ] || [ "$KILLS" -lt 20 ] || pass=false
[ $((kills + finished_first)) -eq "$KILLS" ] || pass=false
[ "$mixed" -eq 0 ] && [ "$dirty" -eq 0 ] || pass=false
[ "$terminated" -eq 1 ] && [ "$hung" = false ] && [ "$terminate_rc" -eq 5 ] && [ "$terminate_state" = old ] || pass=false
[ "$final_rc" -eq 0 ] && [ "$final" = loaded ] && [ "$rerun_rc" -eq 0 ] && [ "$rerun" = already_imported ] || pass=false
[ "$final_state" = new ] && [ "$duplicates" -eq 0 ] || pass=false
[ "$max_exit_ms" -lt 10000 ] || pass=false

printf '{"drill":"kill-import","binary":"%s","rows":%d,"import_ms":%d,"seed":%d,"kills":%d,"finished_before_kill":%d,"mixed":%d,"dirty":%d,"in_force_old":%d,"in_force_new":%d,"max_backend_exit_ms":%d,"kill_delays_ms":[%s],"terminate_mid_copy":{"terminated":%s,"client_hung":%s,"client_exit_ms":%d,"exit_code":%d,"in_force":"%s"},"final_import":"%s","final_exit_code":%d,"rerun":"%s","rerun_exit_code":%d,"duplicate_units":%d,"seconds":%d,"pass":%s}\n' \
  "$bm" "$ROWS" "$import_ms" "$seed" "$kills" "$finished_first" "$mixed" "$dirty" "$as_old" "$as_new" "$max_exit_ms" "$(IFS=,; echo "${delays[*]}")" \
  "$([ $terminated = 1 ] && echo true || echo false)" "$hung" "$terminate_exit_ms" "$terminate_rc" "$terminate_state" "$final" "$final_rc" "$rerun" "$rerun_rc" \
  "$duplicates" $(( $(date +%s) - started_at )) "$pass"
if [ "$pass" != true ]; then
  [ -s "$work/problems.log" ] && sed 's/^/problem: /' "$work/problems.log" >&2
  exit 1
fi
