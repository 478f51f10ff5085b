#!/usr/bin/env bash
# Check, end to end through the CLI on a throwaway database: what-ifs and deadlines.
# - `match --as-of` ten minutes back: answered, printed and recorded as a WHAT-IF; `reserve` of it
#   exits 3 naming the what-if, and the database holds nothing
# - `match --as-of` before the oldest snapshot in force: refused, exit 2
# - `match --needed-by` sooner than any unit can arrive: outcome late (exit 3), each unit LATE,
#   recorded as late; the same request without it: fulfilled (exit 0)
# - `batch run --as-of` ten minutes back: a dry run, nothing recorded or held, the order stays pending
# - audit verify passes
# Prints one JSON line; exits 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
scratch_db_check whatif what-if
export BLOODMATCH_LOG_LEVEL=error
started=$(date +%s)
pg() { psql_pg -d "$db" -c "$1"; }
iso() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$2" 2>/dev/null; }

"$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
scratch_operator check dispatcher >/dev/null || bad operator "could not add a dispatcher"
cat >"$work/sites.csv" <<'CSV'
site_id,name,kind,latitude,longitude,region,address
DCW1,What-if Centre,distribution_centre,-33.895678,151.184272,AU-02,"Alexandria NSW, Australia"
HW1,What-if Hospital,hospital,-33.868800,151.209300,AU-02,"Sydney NSW, Australia"
CSV
"$bm" sites import "$work/sites.csv" >/dev/null 2>&1 || bad sites "import failed"
col=$(iso '-2 days'); later=$(iso '+30 days')
rows=(); for n in 1 2 3 4; do rows+=("T00012600020$n,E0382V00,RBC,O,NEG,$col,$later,DCW1,AVAILABLE,"); done
snapshot s DCW1 "$(iso '-40 minutes')" "${rows[@]}"
"$bm" import "$work/s.csv" >/dev/null 2>&1 || bad import "exit $?"
"$bm" index build --out "$work/index.bmidx" >/dev/null 2>&1 || bad index "build failed"
m() { "$bm" match --hospital HW1 --component RBC --abo O --rhd NEG --index "$work/index.bmidx" "$@"; }

# A what-if: recorded, never reservable.
m --as-of "$(iso '-10 minutes')" --request-id wi-1 --json >"$work/wi.json" 2>/dev/null; rc=$?
{ [ "$rc" = 0 ] && [ "$(json 'd["whatIf"], d["outcome"], d["summary"].startswith("WHAT-IF")' "$work/wi.json")" = "True fulfilled True" ]; } \
  && ok what_if_answered || bad what_if_answered "exit $rc: $(head -c 300 "$work/wi.json")"
m --as-of "$(iso '-10 minutes')" --request-id wi-2 >"$work/wi.txt" 2>&1
grep -q "^WHAT-IF: evaluated at" "$work/wi.txt" && ok what_if_printed || bad what_if_printed "$(head -3 "$work/wi.txt")"
[ "$(pg "SELECT count(*) FROM bm.decisions WHERE request_id IN ('wi-1', 'wi-2') AND (rationale->>'whatIf')::boolean")" = 2 ] \
  && ok what_if_recorded || bad what_if_recorded "$(pg "SELECT request_id, rationale->>'whatIf' FROM bm.decisions")"
"$bm" reserve "$(json 'd["decisionID"]' "$work/wi.json")" --key wi-hold >"$work/wi-hold.out" 2>&1; rc=$?
{ [ "$rc" = 3 ] && grep -q "is a what-if" "$work/wi-hold.out" && [ "$(pg "SELECT count(*) FROM bm.reservations")" = 0 ]; } \
  && ok what_if_not_reservable || bad what_if_not_reservable "exit $rc: $(tail -1 "$work/wi-hold.out")"
m --as-of "$(iso '-2 hours')" --request-id wi-3 >"$work/wi-old.out" 2>&1; rc=$?
{ [ "$rc" = 2 ] && grep -q "before the oldest snapshot in force" "$work/wi-old.out"; } \
  && ok before_oldest_snapshot_refused || bad before_oldest_snapshot_refused "exit $rc: $(tail -1 "$work/wi-old.out")"

# Deadlines: needed by five minutes from now (the centre is about 30 min away).
m --needed-by "$(iso '+5 minutes')" --quantity 2 --request-id late-1 >"$work/late.out" 2>&1; rc=$?
{ [ "$rc" = 3 ] && grep -q "^Outcome: LATE" "$work/late.out" && [ "$(grep -c 'LATE: arrives after the deadline' "$work/late.out")" = 2 ] \
  && [ "$(pg "SELECT outcome FROM bm.decisions WHERE request_id = 'late-1'")" = late ]; } \
  && ok late_outcome || bad late_outcome "exit $rc: $(head -2 "$work/late.out")"
m --needed-by "$(iso '+3 hours')" --quantity 2 --request-id late-2 >"$work/ontime.out" 2>&1; rc=$?
{ [ "$rc" = 0 ] && grep -q "^Outcome: FULFILLED" "$work/ontime.out" && ! grep -q "LATE" "$work/ontime.out"; } \
  && ok on_time_fulfilled || bad on_time_fulfilled "exit $rc: $(head -2 "$work/ontime.out")"
"$bm" match --hospital HW1 --component RBC --abo O --rhd NEG --index "$work/index.bmidx" --needed-by tomorrow >"$work/bad.out" 2>&1; rc=$?
# A bad value is a usage error (argument parser's validation exit, 64).
{ [ "$rc" = 2 ] && grep -q "needed-by 'tomorrow' is not an ISO 8601 instant" "$work/bad.out"; } && ok needed_by_validated || bad needed_by_validated "exit $rc: $(tail -1 "$work/bad.out")"

# A batch at a past instant is a dry run.
"$bm" order add --order-id WI-ORD-1 --hospital HW1 --component RBC --abo O --rhd NEG --quantity 1 >/dev/null 2>&1 || bad order "add failed"
holds=$(pg "SELECT count(*) FROM bm.reservations")
"$bm" batch run --as-of "$(iso '-10 minutes')" >"$work/batch.out" 2>&1; rc=$?
{ [ "$rc" = 0 ] && grep -q "^WHAT-IF (dry run)" "$work/batch.out" && [ "$(pg "SELECT count(*) FROM bm.batch_runs")" = 0 ] \
  && [ "$(pg "SELECT count(*) FROM bm.reservations")" = "$holds" ] && [ "$(pg "SELECT status FROM bm.orders WHERE order_id = 'WI-ORD-1'")" = pending ]; } \
  && ok batch_as_of_dry_run || bad batch_as_of_dry_run "exit $rc: $(head -3 "$work/batch.out")"
"$bm" audit verify >/dev/null 2>&1 && ok audit_verify || bad audit_verify "exit $?"

printf '{"check":"what-if","results":{%s},"seconds":%d,"pass":%s}\n' "$(IFS=,; echo "${results[*]}")" \
  $(( $(date +%s) - started )) "$([ "$fail" = 0 ] && echo true || echo false)"
exit "$fail"
