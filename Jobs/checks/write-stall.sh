#!/usr/bin/env bash
# Check: lookups do not queue behind a stalled write path. `bloodmatch serve` (write pool 8,
# lookup pool 4, budgets of 64 for lookups and for writes) on a throwaway database; four hospitals
# send 15 decisions per second each throughout. One hospital's paced availability lookups (20 per
# second) are measured under that load for the baseline, then while the event log is locked for
# 5 s (every decision and access record waits, as behind a slow WAL flush or a lock taken by hand;
# 300 decisions pile up, far past the write budget of 64):
# - every lookup made while the lock is held is answered 200, p99 within 2x the baseline or 25 ms
#   above it, whichever is larger (queueing behind the stall shows as seconds: it lasts 5 s; the
#   margin absorbs the CPU of 300 decisions released at once on 2 cores)
# - /health answers 200 throughout (it needs no database)
# - the decisions acknowledged during the stall are all stored once the lock is gone
# Bounded: about 40 s. Prints one JSON line; exits 1 on failure. Stops only the processes it started.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
server=""; pids=()
on_cleanup() {
  local p; for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
}
scratch_db_check check_stall write-stall
export BLOODMATCH_LOG_LEVEL=error
started=$(date +%s)
source Jobs/lib/paced-load.bash
sample_stock 3000
victim=$(hospital_key H0001); writers=("$(hospital_key H0002)" "$(hospital_key H0003)" "$(hospital_key H0004)" "$(hospital_key H0005)")
serve_on_free_port 18700 --rate-limit 100 --rate-burst 100

writer_pids=()
for i in 0 1 2 3; do load decide "$port" "${writers[$i]}" 15 22 >"$work/decide-$i.json" & pids+=($!); writer_pids+=($!); done
load victim "$port" "$victim" 20 3 >/dev/null
load victim "$port" "$victim" 20 8 >"$work/baseline.json"
base=$(field "$work/baseline.json" p99_ms)
[ "$(field "$work/baseline.json" statuses.200)" = 160 ] && ok "baseline_under_decisions_p99_${base}ms" || bad baseline "$(cat "$work/baseline.json")"

psql_pg -d "$db" -c "BEGIN; LOCK TABLE bm.event_log IN EXCLUSIVE MODE; SELECT pg_sleep(5); COMMIT" >/dev/null 2>&1 &
locker=$!; pids+=("$locker")
sleep 0.3
health_fail=0
( for _ in $(seq 1 40); do c=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health"); [ "$c" = 200 ] || echo "$c"; sleep 0.2; done ) >"$work/health.txt" &
health_pid=$!; pids+=("$health_pid")
load victim "$port" "$victim" 20 4.5 >"$work/stall.json"   # within the 5 s the lock is held
wait "$health_pid"; wait "$locker"
for p in "${writer_pids[@]}"; do wait "$p"; done
p99=$(field "$work/stall.json" p99_ms)
if [ "$(field "$work/stall.json" statuses.200)" = 90 ] && python3 -c "import sys; sys.exit(0 if $p99 <= max(2 * $base, $base + 25) else 1)"; then
  ok "lookups_during_stall_p99_${p99}ms"
else
  bad lookups_during_stall "p99 $p99 ms against baseline $base ms: $(cat "$work/stall.json")"
fi
[ ! -s "$work/health.txt" ] && ok health_200_throughout || bad health "non-200: $(sort "$work/health.txt" | uniq -c | tr '\n' ' ')"
acknowledged=$(python3 -c 'import json,sys; print(sum(json.load(open(f))["statuses"].get("201", 0) for f in sys.argv[1:]))' "$work"/decide-*.json)
kill -TERM "$server"; wait "$server" 2>/dev/null; server=""
stored=$(psql_pg -d "$db" -c "SELECT count(*) FROM bm.decisions WHERE request_id LIKE 'api:H000%' AND request_id NOT LIKE 'api:H0001:%'")
{ [ "${acknowledged:-0}" -gt 0 ] && [ "$stored" -ge "$acknowledged" ]; } && ok "decisions_${acknowledged}_acknowledged_${stored}_stored" \
  || bad decisions_stored "$acknowledged acknowledged, $stored stored"

printf '{"check":"write-stall","results":{%s},"seconds":%d,"pass":%s}\n' "$(IFS=,; echo "${results[*]}")" \
  $(( $(date +%s) - started )) "$([ "$fail" = 0 ] && echo true || echo false)"
exit "$fail"
