#!/usr/bin/env bash
# Check: no hospital and no anonymous caller can take the API from another hospital.
# `bloodmatch serve` with its default limits on a throwaway database; one hospital (the victim)
# sends paced availability lookups (20 per second, latency from the scheduled start) alone for its
# baseline, then during each attack, measured in the same run:
# - slow bodies: another hospital opens 80 POST /v1/matches, 50 ms apart (within its rate limit),
#   that announce 200 bytes and send one byte every 2 s (more than the whole budget of 64): each is
#   answered 408 at the body deadline (10 s), and the victim's lookups all succeed
# - a 10x flood: that hospital sends 200 requests per second (its limit is 20): mostly 429, and
#   the victim's lookups all succeed
# - random keys: 300 requests per second for 10 s, each with a new unknown key, from the victim's
#   own address: refused (401, then 429 for the address), the event log grows by a bounded number
#   of rows (one per reason per minute, not one per request), and the victim's lookups all succeed
# Bar, per attack: the victim's p99 within 2x its baseline p99. The attacking clients run at lower
# CPU priority (see `attack` in Jobs/lib/paced-load.bash); the server runs as usual.
# Bounded: about 70 s. Prints one JSON line; exits 1 on failure. Stops only the processes it started.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
server=""; pids=()
on_cleanup() {
  local p; for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
}
scratch_db_check check_isolation api-isolation
export BLOODMATCH_LOG_LEVEL=error
started=$(date +%s)
source Jobs/lib/paced-load.bash
sample_stock 3000
victim=$(hospital_key H0001); attacker=$(hospital_key H0002)
serve_on_free_port 18600

load victim "$port" "$victim" 20 3 >/dev/null          # warm-up
load victim "$port" "$victim" 20 8 >"$work/baseline.json"
base=$(field "$work/baseline.json" p99_ms)
[ "$(field "$work/baseline.json" statuses.200)" = 160 ] && ok "baseline_p99_${base}ms" || bad baseline "$(cat "$work/baseline.json")"

# judge NAME FILE: every lookup 200, p99 within 2x the baseline.
judge() {
  local p99; p99=$(field "$2" p99_ms)
  if [ "$(field "$2" statuses.200)" = 160 ] && python3 -c "import sys; sys.exit(0 if $p99 <= 2 * $base else 1)"; then
    ok "$1_victim_p99_${p99}ms"
  else
    bad "$1_victim" "p99 ${p99} ms against baseline ${base} ms: $(cat "$2")"
  fi
}

# Slow bodies: 80 connections from the other hospital, past the whole budget.
attack slow "$port" "$attacker" 80 17 >"$work/slow.json" & pids+=($!); slow_pid=$!
sleep 4
load victim "$port" "$victim" 20 8 >"$work/victim-slow.json"
wait "$slow_pid"
judge slow_bodies "$work/victim-slow.json"
answered=$(field "$work/slow.json" statuses.408)
{ [ "$answered" = 80 ] && python3 -c "import sys; sys.exit(0 if $(field "$work/slow.json" answered_after_s.max) <= 16 else 1)"; } \
  && ok "slow_bodies_80_answered_408_by_$(field "$work/slow.json" answered_after_s.max)s" || bad slow_bodies_408 "$(cat "$work/slow.json")"

# A 10x flood from the other hospital.
attack flood "$port" "$attacker" 200 10 >"$work/flood.json" & pids+=($!); flood_pid=$!
sleep 1
load victim "$port" "$victim" 20 8 >"$work/victim-flood.json"
wait "$flood_pid"
judge flood "$work/victim-flood.json"
limited=$(field "$work/flood.json" statuses.429)
[ "${limited:-0}" -ge 1500 ] && ok "flood_${limited}_of_2000_refused_429" || bad flood_refused "$(cat "$work/flood.json")"

# Random keys from the victim's own address; the event log's growth is counted after the server
# has flushed its open minutes at shutdown.
anon() { psql_pg -d "$db" -c "SELECT count(*) FROM bm.event_log WHERE action = 'api.request' AND actor = 'anonymous'"; }
before=$(anon)
attack random "$port" 300 10 >"$work/random.json" & pids+=($!); random_pid=$!
sleep 1
load victim "$port" "$victim" 20 8 >"$work/victim-random.json"
wait "$random_pid"
judge random_keys "$work/victim-random.json"
refused=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["statuses"]; print(s.get("401",0)+s.get("429",0))' "$work/random.json")
[ "$refused" = 3000 ] && ok "random_keys_3000_refused" || bad random_keys_refused "$(cat "$work/random.json")"
kill -TERM "$server"; wait "$server" 2>/dev/null; server=""
grown=$(( $(anon) - before ))
[ "$grown" -le 6 ] && ok "event_log_grew_${grown}_rows_for_3000_refused" || bad event_log_growth "$grown rows for 3000 refused requests"

printf '{"check":"api-isolation","results":{%s},"seconds":%d,"pass":%s}\n' "$(IFS=,; echo "${results[*]}")" \
  $(( $(date +%s) - started )) "$([ "$fail" = 0 ] && echo true || echo false)"
exit "$fail"
