#!/usr/bin/env bash
# HA drill 4: kill -9 one `bloodmatch serve` instance under the mixed load (lookups, matches,
# reservations with their own Idempotency-Keys) sent through HAProxy. HAProxy must route around
# it: every request ends with a real answer (2xx, or 409 when another request won the unit); a
# request cut off on the dying instance is retried once by the client with its same key, and no
# decision is lost or made twice. The instance is started again afterwards.
# Prints one JSON line; exit 1 on failure. Bounded: LOAD_S (30 s) of load, about a minute in all.
#   env: BLOODMATCH_BIN, LOAD_S, FAULT_AT_S (8), WORKERS (4), VICTIM (1)
source "$(dirname "$0")/common.sh"
trap cleanup_common EXIT
LOAD_S=${LOAD_S:-30} FAULT_AT_S=${FAULT_AT_S:-8} WORKERS=${WORKERS:-4} VICTIM=${VICTIM:-1}
seed_data
python3 Jobs/ha/load.py --api "$API" --token "$token" --run "$run_id" --seconds "$LOAD_S" --workers "$WORKERS" --out "$work/load.jsonl" &
load=$!
sleep "$FAULT_AT_S"
victim_pid=$(cat "$HA/run/serve$VICTIM.pid")
fault_ns=$(now_ns)
kill -KILL "$victim_pid"
# HAProxy's view: the victim marked down within its check interval (inter 1 s, fall 2).
down_ms=-1
for _ in $(seq 100); do
  if curl -s -m 1 "http://127.0.0.1:55450/;csv" | grep -q "^bm_ready,bm$VICTIM,.*,DOWN"; then down_ms=$(( ($(now_ns) - fault_ns) / 1000000 )); break; fi
  sleep 0.1
done
wait "$load"
Jobs/ha.sh start-serve "$VICTIM" 2>>"$work/ha-start.log"
python3 Jobs/ha/load.py --api "$API" --token "$token" --run "$run_id" --retry "$work/load.jsonl" >"$work/retry.json"
HA_PGPW=$pgpw python3 Jobs/ha/report.py --drill kill-serve --log "$work/load.jsonl" --retry "$work/retry.json" --run "$run_id" \
  --accept ok conflict \
  --extra "killed=\"serve$VICTIM\"" "marked_down_ms=$down_ms" "fault_offset_s=$FAULT_AT_S"
