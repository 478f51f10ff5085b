#!/usr/bin/env bash
# HA drills 1 and 2: the primary PostgreSQL node fails under a mixed load of lookups, matches and
# reservations (each with its own Idempotency-Key) sent through HAProxy to both serve instances.
#
#   Jobs/ha/primary.sh kill     kill -9 the primary node: its Patroni, its postmaster and every
#                               backend at once (the machine dies); then start its Patroni again
#   Jobs/ha/primary.sh freeze   SIGSTOP the same processes (the machine hangs) for FREEZE_S (25 s),
#                               then SIGCONT them
#
# Measures the takeover time (fault → end of the first successful reservation started after it),
# answers by class, acknowledged-but-lost decisions (0 required), duplicates after retrying every
# indeterminate reservation with its same key (0 required); checks that the old primary comes back
# as a streaming replica and that no write sent straight to it (not through HAProxy) is ever
# acknowledged while it comes back. Prints one JSON line; exit 1 on failure. Bounded: the load runs
# LOAD_S (45 s), the whole drill at most about 4 minutes.
#   env: BLOODMATCH_BIN, LOAD_S, FAULT_AT_S (8), FREEZE_S (25), WORKERS (4)
mode=${1:-}
case "$mode" in kill|freeze) ;; *) echo "usage: $0 kill|freeze" >&2; exit 2 ;; esac
source "$(dirname "$0")/common.sh"
trap cleanup_common EXIT
LOAD_S=${LOAD_S:-45} FAULT_AT_S=${FAULT_AT_S:-8} FREEZE_S=${FREEZE_S:-25} WORKERS=${WORKERS:-4}
seed_data

old=$(Jobs/ha.sh leader) || { echo "no primary before the drill" >&2; exit 1; }
python3 Jobs/ha/load.py --api "$API" --token "$token" --run "$run_id" --seconds "$LOAD_S" --workers "$WORKERS" --out "$work/load.jsonl" &
load=$!
sleep "$FAULT_AT_S"
pids=$(node_pids "$old")
fault_ns=$(now_ns)
if [ "$mode" = kill ]; then
  kill -KILL $pids 2>/dev/null
else
  kill -STOP $pids 2>/dev/null
fi
# The new primary: another node answering 200 on /primary.
new=""; for _ in $(seq 120); do
  for n in 1 2 3; do [ "$n" != "$old" ] && [ "$(rest "$n" /primary)" = 200 ] && new=$n; done
  [ -n "$new" ] && break; sleep 0.5
done
promoted_ns=$(now_ns)
if [ "$mode" = kill ]; then
  sleep 5
  Jobs/ha.sh start-node "$old" 2>>"$work/ha-start.log"
  heal_ns=$(now_ns)
else
  sleep_left=$(( FREEZE_S - (promoted_ns - fault_ns) / 1000000000 )); [ $sleep_left -gt 0 ] && sleep $sleep_left
  heal_ns=$(now_ns)
  kill -CONT $pids 2>/dev/null
fi
# Straight after the heal, the old primary must not acknowledge a write while it rejoins.
read -r probe_acked probe_tries rejoin_s < <(probe_writes "$old" 150)
wait "$load"
python3 Jobs/ha/load.py --api "$API" --token "$token" --run "$run_id" --retry "$work/load.jsonl" >"$work/retry.json"
# Every serve instance must come back by itself (its pool reconnects): /ready 200 within 60 s of
# the heal, without a restart. One that does not is reported, then restarted for the next drills.
ready_s=""; wedged=""
for i in 1 2; do
  ok=""
  for t in $(seq 0 60); do
    [ "$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:${SERVE_PORT[$((i - 1))]}/ready")" = 200 ] && { ok=$t; break; }
    sleep 1
  done
  if [ -n "$ok" ]; then ready_s+="\"serve$i\":$(( ( $(now_ns) - heal_ns ) / 1000000000 )),"
  else
    wedged+="serve$i "
    curl -s -m 5 "http://127.0.0.1:${SERVE_PORT[$((i - 1))]}/ready" >"$work/wedged-serve$i.json" 2>/dev/null
    echo "serve$i not ready 60 s after the heal: $(head -c 300 "$work/wedged-serve$i.json"); restarting it" >&2
    Jobs/ha.sh stop-serve "$i" >/dev/null 2>&1; Jobs/ha.sh start-serve "$i" >/dev/null 2>&1
  fi
done
old_in_recovery=$(psql_node "$old" -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)
probe_rows=$(psql_primary -d postgres -c "SELECT count(*) FROM ha_probe WHERE note LIKE '$run_id-%'")
timeline=$(Jobs/ha.sh patronictl list -f json 2>/dev/null | python3 -c 'import json,sys; print(json.dumps({m["Member"]: [m["Role"], m.get("TL")] for m in json.load(sys.stdin)}))' 2>/dev/null || echo null)
HA_PGPW=$pgpw python3 Jobs/ha/report.py --drill "primary-$mode" --log "$work/load.jsonl" --fault-ns "$fault_ns" --retry "$work/retry.json" --run "$run_id" \
  --extra "old_primary=\"node$old\"" "new_primary=\"node${new:-none}\"" "promotion_s=$(( (promoted_ns - fault_ns) / 1000000 ))e-3" \
          "old_primary_rejoined_as_replica_s=$rejoin_s" "old_primary_in_recovery=\"$old_in_recovery\"" \
          "old_primary_write_probes=$probe_tries" "old_primary_writes_acknowledged=$probe_acked" "probe_rows_on_new_primary=$probe_rows" \
          "members=$timeline" "instances_ready_s_after_heal={${ready_s%,}}" "instances_not_recovered=\"${wedged% }\"" \
  --require "old_primary_in_recovery=t" "old_primary_writes_acknowledged=0" "probe_rows_on_new_primary=0" "instances_not_recovered="
