#!/usr/bin/env bash
# Check, end to end through the CLI on a throwaway database: a unit is its DIN and product code,
# and every step of its life re-checks the truth.
# - one donation's RBC, plasma and platelets at one centre import as three units; each is matched,
#   held and issued on its own; `trace` and `recall` show all three, with the consignee's address
# - quarantine drill: two held units, a newer snapshot quarantines one and drops the other:
#   `reservation show` says BLOCKED, `reservation issue` exits 3 naming both, nothing is written
# - an issue key used for another reservation: exit 3, the other hold stays active
# - A-B-A resend: C (the bytes of A, a newer as_of) is loaded; the quarantined unit is never proposed
# - a centre re-sending unchanged stock every 15 min is loaded each time and never shown stale
# - receipt, then fate, through `bloodmatch unit`; out of order exits 3; audit verify passes
# Prints one JSON line; exits 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
scratch_db_check unitlife unit-lifecycle
export BLOODMATCH_LOG_LEVEL=error
started=$(date +%s)
pg() { psql_pg -d "$db" -c "$1"; }
iso() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }

"$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
scratch_operator check dispatcher >/dev/null || bad operator "could not add a dispatcher"
cat >"$work/sites.csv" <<'CSV'
site_id,name,kind,latitude,longitude,region,address
DCL1,Life Centre One,distribution_centre,-33.895678,151.184272,AU-02,"Alexandria NSW, Australia"
DCL2,Life Centre Two,distribution_centre,-32.926700,151.778900,AU-02,"Newcastle NSW, Australia"
HL1,Life Hospital,hospital,-33.868800,151.209300,AU-02,"Sydney NSW, Australia"
CSV
"$bm" sites import "$work/sites.csv" >/dev/null 2>&1 || bad sites "import failed"

col=$(iso '-2 days'); soon=$(iso '+10 days'); later=$(iso '+30 days'); plt=$(iso '+3 days'); frozen=$(iso '+300 days')
D=T000126000101
a_rows=("$D,E0336V00,RBC,O,NEG,$col,$soon,DCL1,AVAILABLE,"
        "$D,E2555V00,PLASMA,O,NEG,$col,$frozen,DCL1,AVAILABLE,"
        "$D,E3085V00,PLT,O,NEG,$col,$plt,DCL1,AVAILABLE,"
        "T000126000102,E0382V00,RBC,O,NEG,$col,$later,DCL1,AVAILABLE,"
        "T000126000103,E0382V00,RBC,O,NEG,$col,$later,DCL1,AVAILABLE,")
snapshot a DCL1 "$(iso '-40 minutes')" "${a_rows[@]}"
"$bm" import "$work/a.csv" >"$work/import-a.out" 2>&1 || bad import_components "exit $?: $(tail -1 "$work/import-a.out")"
[ "$(pg "SELECT count(*) FROM bm.inventory_units WHERE din = '$D'")" = 3 ] && ok three_components_loaded || bad three_components_loaded "$(pg "SELECT count(*) FROM bm.inventory_units WHERE din = '$D'")"
"$bm" index build --out "$work/index.bmidx" >/dev/null 2>&1 || bad index "build failed"

# Each component matched, held and issued on its own.
n=0
for component in RBC PLASMA PLT; do
  n=$((n + 1))
  "$bm" match --hospital HL1 --component $component --abo O --rhd NEG --quantity 1 --index "$work/index.bmidx" \
    --request-id "life-$component" --json >"$work/m$n.json" 2>/dev/null
  read -r decision unit < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["chosen"][0]; print(d["decisionID"], c["din"] + "/" + c["productCode"])' "$work/m$n.json" 2>/dev/null)
  [ "${unit%%/*}" = "$D" ] && ok "match_$component" || bad "match_$component" "chose ${unit:-nothing}"
  "$bm" reserve "$decision" --key "life-hold-$n" --json >"$work/r$n.json" 2>/dev/null || bad "reserve_$component" "exit $?"
  res=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reservationID"].lower())' "$work/r$n.json" 2>/dev/null)
  "$bm" reservation issue "$res" --key "life-issue-$n" >"$work/i$n.out" 2>&1 && grep -q "issued 1 unit" "$work/i$n.out" \
    && ok "issue_$component" || bad "issue_$component" "$(tail -1 "$work/i$n.out")"
done
"$bm" trace "$D" >"$work/trace.out" 2>&1
grep -q "units: $D/E0336V00, $D/E2555V00, $D/E3085V00" "$work/trace.out" && [ "$(grep -c 'issued to HL1 Life Hospital, Sydney NSW, Australia' "$work/trace.out")" = 3 ] \
  && ok trace_three || bad trace_three "$(head -1 "$work/trace.out")"
"$bm" recall "$D" --format csv >"$work/recall.csv" 2>&1
[ "$(grep -c ",issued,DCL1,.*,HL1,Life Hospital,\"Sydney NSW, Australia\"" "$work/recall.csv")" = 3 ] && ok recall_three || bad recall_three "$(cat "$work/recall.csv")"

# Quarantine drill.
"$bm" match --hospital HL1 --component RBC --abo O --rhd NEG --quantity 2 --index "$work/index.bmidx" --request-id life-q --json >"$work/q.json" 2>/dev/null
qdec=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["decisionID"])' "$work/q.json")
"$bm" reserve "$qdec" --key life-q-hold --json >"$work/q-hold.json" 2>/dev/null || bad quarantine_hold "exit $?"
qres=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reservationID"].lower())' "$work/q-hold.json")
snapshot b DCL1 "$(iso '-30 minutes')" "$D,E2555V00,PLASMA,O,NEG,$col,$frozen,DCL1,AVAILABLE," \
  "T000126000102,E0382V00,RBC,O,NEG,$col,$later,DCL1,QUARANTINED,"
"$bm" import "$work/b.csv" >/dev/null 2>&1 || bad import_b "exit $?"
"$bm" reservation show "$qres" >"$work/q-show.out" 2>&1
[ "$(grep -c 'BLOCKED' "$work/q-show.out")" = 2 ] && ok hold_shown_blocked || bad hold_shown_blocked "$(cat "$work/q-show.out")"
before=$(pg "SELECT count(*) FROM bm.distributions")
"$bm" reservation issue "$qres" --key life-q-issue >"$work/q-issue.out" 2>&1; rc=$?
{ [ "$rc" = 3 ] && grep -q "T000126000102/E0382V00: QUARANTINED at DCL1" "$work/q-issue.out" \
  && grep -q "T000126000103/E0382V00: no longer in the stock of DCL1" "$work/q-issue.out"; } \
  && ok issue_refused_naming_units || bad issue_refused_naming_units "exit $rc: $(cat "$work/q-issue.out")"
[ "$(pg "SELECT count(*) FROM bm.distributions")" = "$before" ] && [ "$(pg "SELECT count(*) FROM bm.reservation_units WHERE reservation_id = '$qres' AND state = 'active'")" = 2 ] \
  && ok nothing_written || bad nothing_written "distributions $before → $(pg "SELECT count(*) FROM bm.distributions")"

# An issue key belongs to one reservation.
first_res=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reservationID"].lower())' "$work/r1.json")
"$bm" reservation issue "$qres" --key life-issue-1 >"$work/reuse.out" 2>&1; rc=$?
{ [ "$rc" = 3 ] && grep -q "already used for a different operation" "$work/reuse.out"; } && ok key_reuse_refused || bad key_reuse_refused "exit $rc: $(cat "$work/reuse.out")"

# A-B-A at the second centre: C is A's bytes with a newer as_of, and is loaded.
X=T000126000201
aba_a=("$X,E0382V00,RBC,O,NEG,$col,$later,DCL2,QUARANTINED," "T000126000202,E0382V00,RBC,O,NEG,$col,$later,DCL2,AVAILABLE,")
snapshot aba-a DCL2 "$(iso '-50 minutes')" "${aba_a[@]}"
snapshot aba-b DCL2 "$(iso '-35 minutes')" "$X,E0382V00,RBC,O,NEG,$col,$later,DCL2,AVAILABLE," "T000126000202,E0382V00,RBC,O,NEG,$col,$later,DCL2,AVAILABLE,"
snapshot aba-c DCL2 "$(iso '-20 minutes')" "${aba_a[@]}"
cmp -s "$work/aba-a.csv" "$work/aba-c.csv" || bad aba_bytes "A and C differ"
for s in aba-a aba-b aba-c; do "$bm" import "$work/$s.csv" >"$work/$s.out" 2>&1 || bad "import_$s" "exit $?: $(tail -1 "$work/$s.out")"; done
[ "$(pg "SELECT u.status FROM bm.inventory_units u JOIN bm.centre_status c ON c.current_snapshot_id = u.snapshot_id WHERE c.centre = 'DCL2' AND u.din = '$X'")" = QUARANTINED ] \
  && ok aba_c_in_force || bad aba_c_in_force "$(cat "$work/aba-c.out")"
"$bm" index build --out "$work/index2.bmidx" >/dev/null 2>&1
"$bm" match --hospital HL1 --component RBC --abo O --rhd NEG --quantity 10 --index "$work/index2.bmidx" --request-id life-aba --json >"$work/aba.json" 2>/dev/null
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if sys.argv[2] not in [c["din"] for c in d["chosen"]] and len(d["chosen"]) > 0 else 1)' "$work/aba.json" "$X" \
  && ok aba_quarantined_never_proposed || bad aba_quarantined_never_proposed "$(head -c 300 "$work/aba.json")"

# Heartbeats: the same bytes every 15 minutes, each with a newer as_of, keep the centre fresh.
for m in 15 0; do
  snapshot "hb-$m" DCL2 "$(iso "-$m minutes")" "${aba_a[@]}"
  "$bm" import "$work/hb-$m.csv" >"$work/hb-$m.out" 2>&1 || bad "heartbeat_$m" "exit $?: $(tail -1 "$work/hb-$m.out")"
done
[ "$(pg "SELECT count(*) FROM bm.inventory_snapshots WHERE centre = 'DCL2'")" = 5 ] && ok heartbeats_loaded || bad heartbeats_loaded "$(pg "SELECT count(*) FROM bm.inventory_snapshots WHERE centre = 'DCL2'")"
"$bm" stock --near HL1 --component RBC >"$work/stock.out" 2>&1
grep DCL2 "$work/stock.out" | grep -qv STALE && ok heartbeat_not_stale || bad heartbeat_not_stale "$(grep DCL2 "$work/stock.out")"

# Receipt and fate.
"$bm" unit transfuse "$D/E0336V00" --key life-t0 >/dev/null 2>&1; rc=$?
[ "$rc" = 3 ] && ok fate_before_receipt_refused || bad fate_before_receipt_refused "exit $rc"
"$bm" unit receive "$D/E0336V00" --key life-r1 >/dev/null 2>&1 && "$bm" unit transfuse "$D/E0336V00" --key life-t1 >/dev/null 2>&1 \
  && "$bm" unit receive "$D/E3085V00" --key life-r3 >/dev/null 2>&1 && "$bm" unit return "$D/E3085V00" --reason no_longer_required --key life-ret3 >/dev/null 2>&1 \
  && ok receipt_and_fate || bad receipt_and_fate "a step failed"
"$bm" recall "$D" --format csv >"$work/recall2.csv" 2>&1
{ grep -q "^$D,E0336V00,RBC,transfused," "$work/recall2.csv" && grep -q "^$D,E3085V00,PLT,returned," "$work/recall2.csv"; } \
  && ok recall_after_fate || bad recall_after_fate "$(cat "$work/recall2.csv")"
"$bm" audit verify >/dev/null 2>&1 && ok audit_verify || bad audit_verify "exit $?"

printf '{"check":"unit-lifecycle","results":{%s},"seconds":%d,"pass":%s}\n' "$(IFS=,; echo "${results[*]}")" \
  $(( $(date +%s) - started )) "$([ "$fail" = 0 ] && echo true || echo false)"
exit "$fail"
