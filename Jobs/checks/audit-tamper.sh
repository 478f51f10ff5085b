#!/usr/bin/env bash
# Check, end to end through the CLI on a throwaway database: everything that matters is in the
# tamper-evident chain, and every actor is a named, authenticated login.
# - a scripted day (sites, an import, key creation, matches, holds, a release, issues, a receipt, a
#   fate, orders, a batch run, a policy change) run by a supervisor, a dispatcher and a job: every
#   event of the day names an operator or job and carries a request id; `audit verify` passes
# - an operator cannot record an event as someone else (the database records the login)
# - `trace` of a batch-held unit shows the order, the run, the hold and its end
# - tamper drill, as the superuser with triggers off: one field of each record type, the last 1 and
#   the last 100 events, two events reordered, the head rewritten, an actor forged, a row slipped in:
#   `audit verify` exits 7 and names each; after each repair it passes again
# Prints one JSON line; exits 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
scratch_db_check tamper audit-tamper
export BLOODMATCH_LOG_LEVEL=error BLOODMATCH_AUDIT_CHECKPOINT_DIR="$work/checkpoints"
started=$(date +%s)
pg() { psql_pg -d "$db" -c "$1"; }
iso() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
oneline() { head -c 700 "$1" | tr '\n\t"\\' '  _/'; }

"$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
day_start=$(pg "SELECT coalesce(max(seq), 0) FROM bm.event_log")
scratch_operator sup supervisor >/dev/null || bad operator_add "supervisor"
sup=$BLOODMATCH_OPERATOR; sup_pw=$BLOODMATCH_OPERATOR_PASSWORD_FILE
scratch_operator disp dispatcher >/dev/null || bad operator_add "dispatcher"
disp=$BLOODMATCH_OPERATOR; disp_pw=$BLOODMATCH_OPERATOR_PASSWORD_FILE
scratch_operator cron job >/dev/null || bad operator_add "job"
job=$BLOODMATCH_OPERATOR; job_pw=$BLOODMATCH_OPERATOR_PASSWORD_FILE
as() { local who=$1 pw=$2; shift 2; BLOODMATCH_OPERATOR=$who BLOODMATCH_OPERATOR_PASSWORD_FILE=$pw "$bm" "$@"; }
"$bm" operator list >"$work/operators.out" 2>&1
grep -q "^$disp	dispatcher	active" "$work/operators.out" && ok operator_list || bad operator_list "$(cat "$work/operators.out")"

# The scripted day.
cat >"$work/sites.csv" <<'CSV'
site_id,name,kind,latitude,longitude,region,address
DCT1,Tamper Centre,distribution_centre,-33.895678,151.184272,AU-02,"Alexandria NSW, Australia"
HT1,Tamper Hospital,hospital,-33.868800,151.209300,AU-02,"Sydney NSW, Australia"
CSV
as "$job" "$job_pw" sites import "$work/sites.csv" >/dev/null 2>&1 || bad sites "import failed"
col=$(iso '-2 days'); soon=$(iso '+20 days')
{ echo "din,product_code,component,abo,rhd,collected_at,expires_at,site_id,status,attributes"
  for i in 01 02 03 04 05 06 07 08; do echo "T0001260003$i,E0382V00,RBC,O,NEG,$col,$soon,DCT1,AVAILABLE,"; done; } >"$work/s.csv"
python3 - "$work/s.csv" "$(iso '-10 minutes')" <<'PY'
import hashlib, json, sys
path, asof = sys.argv[1:]
data = open(path, 'rb').read()
json.dump({"format": "bloodmatch-inventory/1", "centre": "DCT1", "as_of": asof, "row_count": data.count(b'\n') - 1,
           "sha256": hashlib.sha256(data).hexdigest(), "empty_stock": False}, open(path[:-4] + ".ctl.json", "w"))
PY
"$bm" import "$work/s.csv" >/dev/null 2>&1 || bad import "exit $?"
as "$job" "$job_pw" index build --out "$work/index.bmidx" >/dev/null 2>&1 || bad index "build failed"
as "$sup" "$sup_pw" hospital key create HT1 --label drill --json >"$work/key.json" 2>"$work/key.err" || bad key_create "$(tail -1 "$work/key.err")"
as "$disp" "$disp_pw" hospital key create HT1 --label not-allowed --json >/dev/null 2>"$work/key2.err" \
  && bad key_needs_supervisor "a dispatcher created a key" || ok key_needs_supervisor
decision() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["decisionID"])' "$1"; }
reservation() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reservationID"].lower())' "$1"; }
as "$disp" "$disp_pw" match --hospital HT1 --component RBC --abo O --rhd NEG --quantity 2 --index "$work/index.bmidx" \
  --request-id day-m1 --json >"$work/m1.json" 2>/dev/null || bad match "exit $?"
as "$disp" "$disp_pw" reserve "$(decision "$work/m1.json")" --key day-h1 --json >"$work/h1.json" 2>/dev/null || bad reserve "exit $?"
res1=$(reservation "$work/h1.json")
as "$disp" "$disp_pw" reservation issue "$res1" --key day-i1 >"$work/i1.out" 2>&1 || bad issue "$(tail -1 "$work/i1.out")"
"$bm" reservation issue "$res1" --key day-i1-anon >"$work/i1b.out" 2>&1
as "$disp" "$disp_pw" match --hospital HT1 --component RBC --abo O --rhd NEG --quantity 1 --index "$work/index.bmidx" \
  --request-id day-m2 --json >"$work/m2.json" 2>/dev/null || bad match2 "exit $?"
as "$disp" "$disp_pw" reserve "$(decision "$work/m2.json")" --key day-h2 --json >"$work/h2.json" 2>/dev/null || bad reserve2 "exit $?"
as "$disp" "$disp_pw" reservation release "$(reservation "$work/h2.json")" --reason "not needed" >/dev/null 2>&1 || bad release "exit $?"
unit=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["chosen"][0]; print(c["din"] + "/" + c["productCode"])' "$work/m1.json")
as "$disp" "$disp_pw" unit receive "$unit" --key day-r1 >/dev/null 2>&1 && as "$disp" "$disp_pw" unit transfuse "$unit" --key day-t1 >/dev/null 2>&1 \
  || bad receipt_fate "a step failed"
cat >"$work/orders.csv" <<'CSV'
order_id,hospital,component,abo,rhd,context,quantity,requirements,urgency,needed_by,max_age_days
DAY-1,HT1,RBC,O,NEG,,2,,routine,,
CSV
as "$disp" "$disp_pw" order import "$work/orders.csv" >"$work/orders.out" 2>&1 || bad orders "$(tail -1 "$work/orders.out")"
as "$job" "$job_pw" batch run --run-key day-batch >"$work/batch.out" 2>&1 || bad batch "$(tail -1 "$work/batch.out")"
# A policy change: refused to a dispatcher's match (nothing decided), put in force by a supervisor.
sed 's/"version": *"\([^"]*\)"/"version": "\1-drill"/' Data/policy.json >"$work/policy.json"
BLOODMATCH_POLICY="$work/policy.json" as "$disp" "$disp_pw" match --hospital HT1 --component RBC --abo O --rhd NEG --quantity 1 \
  --index "$work/index.bmidx" --request-id day-m3-refused >"$work/policy-refused.out" 2>&1 && bad policy_needs_supervisor "a dispatcher changed the policy" \
  || { grep -q "needs a supervisor" "$work/policy-refused.out" && [ "$(pg "SELECT count(*) FROM bm.decisions WHERE request_id = 'day-m3-refused'")" = 0 ] \
       && ok policy_needs_supervisor || bad policy_needs_supervisor "$(oneline "$work/policy-refused.out")"; }
BLOODMATCH_POLICY="$work/policy.json" as "$sup" "$sup_pw" configuration record >"$work/policy.out" 2>&1 || bad policy_change "$(oneline "$work/policy.out")"
BLOODMATCH_POLICY="$work/policy.json" as "$disp" "$disp_pw" match --hospital HT1 --component RBC --abo O --rhd NEG --quantity 1 \
  --index "$work/index.bmidx" --request-id day-m3 >/dev/null 2>&1 || bad policy_in_force "exit $?"
[ "$(pg "SELECT count(*) FROM bm.event_log WHERE action = 'configuration.changed' AND seq > $day_start AND payload->>'path' LIKE '%$work/policy.json'")" -ge 1 ] \
  && ok policy_change_recorded || bad policy_change_recorded "no configuration.changed for the changed policy"
[ "$(pg "SELECT count(*) FROM bm.distributions WHERE issued_by = 'operator:$disp'")" = 2 ] \
  && [ "$(pg "SELECT count(*) FROM bm.distributions WHERE issued_by <> 'operator:$disp'")" = 0 ] \
  && ok issue_needs_dispatcher || bad issue_needs_dispatcher "$(pg "SELECT issued_by, count(*) FROM bm.distributions GROUP BY 1")"

as "$job" "$job_pw" audit seal >/dev/null 2>&1 || bad seal "exit $?"
unnamed=$(pg "SELECT count(*) FROM bm.event_log WHERE seq > $day_start AND actor !~ '^(operator|job):' AND action NOT IN ('schema.migrated', 'operator.added')")
unkeyed=$(pg "SELECT count(*) FROM bm.event_log WHERE seq > $day_start AND request_id IS NULL AND action NOT IN ('schema.migrated', 'operator.added')")
[ "$unnamed" = 0 ] && ok day_actors_named || bad day_actors_named "$unnamed events: $(pg "SELECT string_agg(DISTINCT action || ' by ' || actor, '; ') FROM bm.event_log WHERE seq > $day_start AND actor !~ '^(operator|job):' AND action NOT IN ('schema.migrated', 'operator.added')")"
[ "$unkeyed" = 0 ] && ok day_request_ids || bad day_request_ids "$unkeyed events: $(pg "SELECT string_agg(DISTINCT action || ' ' || subject || ' by ' || actor, ', ') FROM bm.event_log WHERE seq > $day_start AND request_id IS NULL AND action NOT IN ('schema.migrated', 'operator.added')")"
missing=""
for action in configuration.changed sites.imported 'import.%' api_key.created decision.made reservation.made reservation.released \
    unit.issued unit.received unit.transfused order.created batch.run order.allocated record.written; do
  [ "$(pg "SELECT count(*) FROM bm.event_log WHERE seq > $day_start AND action LIKE '$action'")" -ge 1 ] || missing+=" $action"
done
[ -z "$missing" ] && ok day_actions_present || bad day_actions_present "none of:$missing"


# Someone else's name: the database records the login, whatever the client says.
PGPASSWORD=$(cat "$disp_pw") psql -X -qAt -h "$sockdir" -p "$pgport" -U "$disp" -d "$db" \
  -c "INSERT INTO bm.event_log (actor, action, subject, payload) VALUES ('operator:$sup', 'note', 'drill:impersonation', '{}')" >/dev/null 2>&1
[ "$(pg "SELECT actor || ' ' || actor_role FROM bm.event_log WHERE subject = 'drill:impersonation'")" = "operator:$disp $disp" ] \
  && ok cannot_act_as_another || bad cannot_act_as_another "$(pg "SELECT actor, actor_role FROM bm.event_log WHERE subject = 'drill:impersonation'")"

# A batch-held unit's trace: the order, the run, the hold and its end.
bunit=$(pg "SELECT din || '/' || product_code FROM bm.batch_allocations LIMIT 1")
bres=$(pg "SELECT reservation_id FROM bm.batch_shipments LIMIT 1")
as "$disp" "$disp_pw" reservation release "$bres" --reason "drill: batch hold ended" >/dev/null 2>&1 || bad batch_release "exit $?"
"$bm" trace "${bunit%%/*}" --product "${bunit##*/}" >"$work/trace.out" 2>&1
{ grep -q "order.allocated.*order:DAY-1" "$work/trace.out" && grep -q "reservation.made" "$work/trace.out" \
  && grep -q "batch" "$work/trace.out" && grep -q "reservation.released" "$work/trace.out"; } \
  && ok trace_batch_hold || bad trace_batch_hold "$(oneline "$work/trace.out")"

"$bm" audit checkpoint --dir "$work/checkpoints" >/dev/null 2>&1 || bad checkpoint "exit $?"
"$bm" audit verify >"$work/verify0.out" 2>&1 && ok verify_clean || bad verify_clean "$(oneline "$work/verify0.out")"

# The drill. tamper NAME EXPECT BREAK REPAIR: BREAK as the superuser (triggers off), verify must exit
# 7 with EXPECT (an extended regular expression) in its report; REPAIR, verify must pass.
su() { psql_pg -d "$db" -v ON_ERROR_STOP=1 -c "SET session_replication_role = replica; $1" >/dev/null; }
tamper() {
  local name=$1 expect=$2
  su "$3" || { bad "tamper_$name" "could not break: $3"; return; }
  "$bm" audit verify >"$work/v-$name.out" 2>&1; local rc=$?
  { [ "$rc" = 7 ] && grep -qE -- "$expect" "$work/v-$name.out"; } && ok "detects_$name" \
    || bad "detects_$name" "exit $rc, wanted '$expect': $(oneline "$work/v-$name.out")"
  su "$4" || { bad "repair_$name" "could not repair"; return; }
  "$bm" audit verify >"$work/r-$name.out" 2>&1 && ok "repaired_$name" || bad "repaired_$name" "exit $?: $(oneline "$work/r-$name.out")"
}
field() { pg "SELECT $1 FROM bm.$2 WHERE $3"; }
dec=$(decision "$work/m1.json"); dec=${dec,,}
dist=$(field distribution_id distributions "true ORDER BY issued_at LIMIT 1")
consignee=$(field consignee distributions "distribution_id = '$dist'")
tamper decision_hospital "decisions row $dec: field hospital changed" \
  "UPDATE bm.decisions SET hospital = 'H9999' WHERE decision_id = '$dec'" "UPDATE bm.decisions SET hospital = 'HT1' WHERE decision_id = '$dec'"
tamper decision_rationale "decisions row $dec: field rationale changed" \
  "UPDATE bm.decisions SET rationale = rationale || '{\"forged\": true}' WHERE decision_id = '$dec'" \
  "UPDATE bm.decisions SET rationale = rationale - 'forged' WHERE decision_id = '$dec'"
du_din=$(field din decision_units "decision_id = '$dec' AND rank = 1")
tamper decision_unit_din "decision_units row $dec/1: field din changed" \
  "UPDATE bm.decision_units SET din = 'T000126000399' WHERE decision_id = '$dec' AND rank = 1" \
  "UPDATE bm.decision_units SET din = '$du_din' WHERE decision_id = '$dec' AND rank = 1"
ru_din=$(field din reservation_units "reservation_id = '$res1' LIMIT 1")
tamper reservation_unit_din "reservation_units row $res1/$ru_din/E0382V00: row_deleted.*reservation_units row $res1/T000126000399/E0382V00: row_not_in_chain|reservation_units row $res1/T000126000399/E0382V00: row_not_in_chain" \
  "UPDATE bm.reservation_units SET din = 'T000126000399' WHERE reservation_id = '$res1' AND din = '$ru_din'" \
  "UPDATE bm.reservation_units SET din = '$ru_din' WHERE reservation_id = '$res1' AND din = 'T000126000399'"
tamper reservation_hospital "reservations row $res1: field hospital changed" \
  "UPDATE bm.reservations SET hospital = 'H9999' WHERE reservation_id = '$res1'" "UPDATE bm.reservations SET hospital = 'HT1' WHERE reservation_id = '$res1'"
tamper distribution_consignee "distributions row $dist: field consignee changed" \
  "UPDATE bm.distributions SET consignee = 'H9999' WHERE distribution_id = '$dist'" \
  "UPDATE bm.distributions SET consignee = '$consignee' WHERE distribution_id = '$dist'"
tamper distribution_expiry "distributions row $dist: field expires_at changed" \
  "UPDATE bm.distributions SET expires_at = expires_at + interval '30 days' WHERE distribution_id = '$dist'" \
  "UPDATE bm.distributions SET expires_at = expires_at - interval '30 days' WHERE distribution_id = '$dist'"
fate=$(field fate_id unit_fates "event = 'transfused' LIMIT 1")
tamper fate_event "unit_fates row $fate: field event changed" \
  "UPDATE bm.unit_fates SET event = 'discarded', reason = 'expired' WHERE fate_id = '$fate'" \
  "UPDATE bm.unit_fates SET event = 'transfused', reason = NULL WHERE fate_id = '$fate'"
tamper order_quantity "orders row DAY-1: field quantity changed" \
  "UPDATE bm.orders SET quantity = 9 WHERE order_id = 'DAY-1'" "UPDATE bm.orders SET quantity = 2 WHERE order_id = 'DAY-1'"
brun=$(field run_id batch_allocations "true LIMIT 1")
bcost=$(field cost_minutes batch_allocations "run_id = '$brun' AND din = '${bunit%%/*}'")
tamper allocation_cost "batch_allocations row $brun/${bunit%%/*}/${bunit##*/}: field cost_minutes changed" \
  "UPDATE bm.batch_allocations SET cost_minutes = cost_minutes + 100 WHERE run_id = '$brun' AND din = '${bunit%%/*}'" \
  "UPDATE bm.batch_allocations SET cost_minutes = $bcost WHERE run_id = '$brun' AND din = '${bunit%%/*}'"
kid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key_id"])' "$work/key.json")
tamper key_expiry "api_keys row $kid: field expires_at changed" \
  "UPDATE bm.api_keys SET expires_at = expires_at + interval '3 years' WHERE key_id = '$kid'" \
  "UPDATE bm.api_keys SET expires_at = expires_at - interval '3 years' WHERE key_id = '$kid'"
tamper forged_row "distributions row 00000000-0000-0000-0000-00000000f0f0: row_not_in_chain" \
  "INSERT INTO bm.distributions SELECT (jsonb_populate_record(d, '{\"distribution_id\": \"00000000-0000-0000-0000-00000000f0f0\", \"idempotency_key\": \"forged\"}')).* FROM bm.distributions d WHERE distribution_id = '$dist'" \
  "DELETE FROM bm.distributions WHERE distribution_id = '00000000-0000-0000-0000-00000000f0f0'"

# The chain itself, grown past 100 events by the dispatcher's own notes, with a checkpoint at its end.
# Saved copies let each repair put back exactly what was there.
PGPASSWORD=$(cat "$disp_pw") psql -X -qAt -h "$sockdir" -p "$pgport" -U "$disp" -d "$db" \
  -c "INSERT INTO bm.event_log (actor, action, subject, payload) SELECT 'x', 'note', 'drill:filler', jsonb_build_object('n', n) FROM generate_series(1, 150) n" >/dev/null
"$bm" audit checkpoint --dir "$work/checkpoints" >/dev/null 2>&1 || bad checkpoint2 "exit $?"
su "CREATE TABLE public.saved_events AS SELECT * FROM bm.event_log; CREATE TABLE public.saved_chain AS SELECT * FROM bm.event_chain; CREATE TABLE public.saved_head AS SELECT * FROM bm.audit_head; CREATE TABLE public.saved_gaps AS SELECT * FROM bm.audit_gaps"
restore="DELETE FROM bm.event_chain; DELETE FROM bm.event_log; INSERT INTO bm.event_log SELECT * FROM public.saved_events; INSERT INTO bm.event_chain SELECT * FROM public.saved_chain; UPDATE bm.audit_head h SET chain_seq = s.chain_seq, row_hash = s.row_hash, next_seq = s.next_seq FROM public.saved_head s; DELETE FROM bm.audit_gaps; INSERT INTO bm.audit_gaps SELECT * FROM public.saved_gaps"
resave="DROP TABLE public.saved_events, public.saved_chain, public.saved_head, public.saved_gaps; CREATE TABLE public.saved_events AS SELECT * FROM bm.event_log; CREATE TABLE public.saved_chain AS SELECT * FROM bm.event_chain; CREATE TABLE public.saved_head AS SELECT * FROM bm.audit_head; CREATE TABLE public.saved_gaps AS SELECT * FROM bm.audit_gaps"
last=$(pg "SELECT max(seq) FROM bm.event_chain")
tamper last_event_deleted "event_missing" "DELETE FROM bm.event_log WHERE seq = $last" "$restore"
su "$resave"
tamper last_event_and_entry_deleted "head_mismatch.*the last row is position" \
  "DELETE FROM bm.event_log WHERE seq = (SELECT seq FROM bm.event_chain ORDER BY chain_seq DESC LIMIT 1); DELETE FROM bm.event_chain WHERE chain_seq = (SELECT max(chain_seq) FROM bm.event_chain)" "$restore"
su "$resave"
tamper last_100_deleted_head_rewound "checkpoint_beyond_chain" \
  "DELETE FROM bm.event_log WHERE seq IN (SELECT seq FROM bm.event_chain ORDER BY chain_seq DESC LIMIT 100); DELETE FROM bm.event_chain WHERE chain_seq > (SELECT max(chain_seq) - 100 FROM bm.event_chain); UPDATE bm.audit_head SET chain_seq = c.chain_seq, row_hash = c.row_hash FROM (SELECT chain_seq, row_hash FROM bm.event_chain ORDER BY chain_seq DESC LIMIT 1) c" "$restore"
su "$resave"
tamper reordered "content_changed" \
  "UPDATE bm.event_chain SET seq = -seq WHERE chain_seq IN (10, 11); UPDATE bm.event_chain c SET seq = (SELECT -o.seq FROM bm.event_chain o WHERE o.chain_seq = 21 - c.chain_seq) WHERE chain_seq IN (10, 11)" "$restore"
su "$resave"
tamper head_rewritten "head_mismatch" "UPDATE bm.audit_head SET row_hash = sha256('forged'::bytea)" "$restore"
su "$resave"
forged=$(pg "SELECT seq FROM bm.event_log WHERE action = 'unit.issued' LIMIT 1")
tamper actor_forged "content_changed" "UPDATE bm.event_log SET actor = 'operator:$sup' WHERE seq = $forged" "$restore"
su "$resave"
tamper event_slipped_in "unchained_row" \
  "INSERT INTO bm.event_log (seq, occurred_at, actor_role, actor, action, subject, payload) VALUES (-5, now(), 'postgres', 'operator:$sup', 'unit.issued', 'drill', '{}')" \
  "DELETE FROM bm.event_log WHERE seq = -5"
su "DROP TABLE public.saved_events, public.saved_chain, public.saved_head"

printf '{"check":"audit-tamper","results":{%s},"seconds":%d,"pass":%s}\n' "$(IFS=,; echo "${results[*]}")" \
  $(( $(date +%s) - started )) "$([ "$fail" = 0 ] && echo true || echo false)"
exit "$fail"
