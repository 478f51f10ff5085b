#!/usr/bin/env bash
# Audited decisions per second: `bloodmatch serve` (release) with the national dataset (500 sites,
# 1,000,000 units), wrk sending only POST /v1/matches with unique idempotency keys (closed loop) at
# 8, 16 and 32 connections, next to the /health anchor measured in the same run. After the load the
# server is stopped (its access records flushed), the chain is verified, and the decisions stored
# are counted against the answers acknowledged (2xx): every acknowledged decision must be in the
# database and in the chain. PREV_BIN runs an earlier build (the previous chain design) through the
# same steps on its own database, in the same run; the current build also runs once with each
# decision written alone (`--decision-group-size 1`), the design before group commit. Prints one
# JSON object.
#   Jobs/bench/audit-throughput.sh
#   PREV_BIN=/path/to/old/bloodmatch Jobs/bench/audit-throughput.sh
#   SECONDS_PER_RUN=20 POOL=16 SITES=200 UNITS=200000 Jobs/bench/audit-throughput.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
SITES=${SITES:-500}; UNITS=${UNITS:-1000000}; SECS=${SECONDS_PER_RUN:-20}; POOL=${POOL:-16}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env)"
swift build -c release --product bloodmatch 2>&1 | grep -E "error|Build complete" || true
new="$root/.build/release/bloodmatch"
data="$root/var/bench/national-$SITES-$UNITS"
[ -f "$data/sites.csv" ] || "$new" generate --seed 42 --sites "$SITES" --units "$UNITS" --out "$data" >/dev/null
sock_dir=$(dirname "$BLOODMATCH_DB_SOCKET"); pgport=${BLOODMATCH_DB_SOCKET##*.}
psql_pg() { runuser -u postgres -- psql -X -qAt -h "$sock_dir" -p "$pgport" "$@"; }
work=$(mktemp -d /tmp/bm-audit-tp.XXXXXX)
server=""; roles=(); dbs=()
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  local d r
  for d in "${dbs[@]}"; do psql_pg -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done
  for r in "${roles[@]}"; do psql_pg -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
last_cpu=$(( $(nproc) - 1 ))
port=${PORT:-18091}
base="http://127.0.0.1:$port"
lua="$root/Jobs/bench/http-mix.lua"
run_wrk() {  # seconds connections [env...]
  local secs=$1 conns=$2; shift 2
  env BM_KEY="$key" BM_RUN="$(date +%s%N)" "$@" taskset -c "$last_cpu" wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s -s "$lua" "$base/" | sed -n 's/^JSON //p'
}

measure() {  # label binary [serve options…] → one JSON object on stdout
  local label=$1 bm=$2 db="bm_bench_audit_$1_$$"
  shift 2
  dbs+=("$db")
  export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
  psql_pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner" >/dev/null
  "$bm" migrate >/dev/null
  "$bm" sites import "$data/sites.csv" >/dev/null
  "$bm" import "$data"/snapshots/*.csv >/dev/null || true
  "$bm" index build --out "$work/$label.bmidx" >/dev/null 2>&1
  local hospital; hospital=$(awk -F, '$3=="hospital"{print $1; exit}' "$data/sites.csv")
  if "$bm" --help 2>/dev/null | grep -q "^  operator "; then   # named operators: keys are a supervisor's
    local op="bench_audit_${label}_$$"
    roles+=("$op")
    psql_pg -d postgres -c "DROP ROLE IF EXISTS $op" >/dev/null 2>&1 || true
    "$bm" operator add "$op" --role supervisor --password-file "$work/$op.password" >/dev/null
    key=$(BLOODMATCH_OPERATOR=$op BLOODMATCH_OPERATOR_PASSWORD_FILE="$work/$op.password" "$bm" hospital key create "$hospital" \
      --label bench --expires-in-days 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  else
    key=$("$bm" hospital key create "$hospital" --label bench --expires-in-days 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  fi
  "$bm" serve --port "$port" --index "$work/$label.bmidx" --rate-limit 1000000 --rate-burst 1000000 --max-concurrent 256 \
    --pool-size "$POOL" "$@" 2>"$work/$label-serve.log" &
  server=$!
  for _ in $(seq 1 150); do curl -sf "$base/ready" >/dev/null 2>&1 && break; sleep 0.2; done
  run_wrk 5 16 BM_MATCH_ONLY=1 >"$work/$label-warm.json"
  local health c8 c16 c32
  health=$(run_wrk 10 16 BM_PATH=/health)
  c8=$(run_wrk "$SECS" 8 BM_MATCH_ONLY=1)
  c16=$(run_wrk "$SECS" 16 BM_MATCH_ONLY=1)
  c32=$(run_wrk "$SECS" 32 BM_MATCH_ONLY=1)
  kill -TERM "$server"; wait "$server" 2>/dev/null || true; server=""
  local decisions verify_rc verify_s
  decisions=$(psql_pg -d "$db" -c "SELECT count(*) FROM bm.decisions")
  local t0; t0=$(date +%s.%N)
  "$bm" audit verify --json >"$work/$label-verify.json" 2>/dev/null && verify_rc=0 || verify_rc=$?
  verify_s=$(echo "$(date +%s.%N) - $t0" | bc)
  python3 - "$label" "$health" "$c8" "$c16" "$c32" "$work/$label-warm.json" "$decisions" "$verify_rc" "$verify_s" "$work/$label-verify.json" <<'PY'
import json, sys
label, health, c8, c16, c32 = sys.argv[1], *(json.loads(x) for x in sys.argv[2:6])
warm = json.load(open(sys.argv[6]))
runs = [warm, c8, c16, c32]
acknowledged = sum(r["requests"] - r["non_2xx"] - r["socket_errors"] for r in runs)
try:
    verify = json.load(open(sys.argv[10]))
except Exception:
    verify = {}
print(json.dumps({
    "build": label, "anchor_health_rps": health["rps"],
    "matches": {str(n): {"decisions_per_s": r["rps"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "non_2xx": r["non_2xx"],
                         "socket_errors": r["socket_errors"], "ratio_to_health": round(r["rps"] / health["rps"], 3)}
                for n, r in (("8", c8), ("16", c16), ("32", c32))},
    "acknowledged_decisions": acknowledged, "decisions_stored": int(sys.argv[7]),
    "every_acknowledged_decision_stored": int(sys.argv[7]) >= acknowledged,
    "audit_verify_exit": int(sys.argv[8]), "audit_verify_seconds": round(float(sys.argv[9]), 2),
    "audit_rows_checked": verify.get("rows_checked"), "records_checked": verify.get("records_checked"),
}))
PY
  psql_pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}

results=()
if [ -n "${PREV_BIN:-}" ]; then measure previous "$PREV_BIN" >"$work/previous.out"; results+=("$(cat "$work/previous.out")"); fi
measure ungrouped "$new" --decision-group-size 1 >"$work/ungrouped.out"; results+=("$(cat "$work/ungrouped.out")")
measure current "$new" >"$work/current.out"; results+=("$(cat "$work/current.out")")
python3 - "$SITES" "$UNITS" "$SECS" "$POOL" "${results[@]}" <<'PY'
import json, sys
sites, units, secs, pool = (int(x) for x in sys.argv[1:5])
runs = [json.loads(x) for x in sys.argv[5:]]
current = runs[-1]
best = max(current["matches"].values(), key=lambda r: r["decisions_per_s"])
print(json.dumps({
    "dataset": {"sites": sites, "units": units}, "seconds_per_run": secs, "pool_size": pool, "runs": runs,
    "bar_met": {"at_least_2000_decisions_per_s": best["decisions_per_s"] >= 2000, "p99_at_most_50_ms_at_that_rate": best["p99_ms"] <= 50,
                "every_acknowledged_decision_stored": current["every_acknowledged_decision_stored"],
                "audit_verify_clean": current["audit_verify_exit"] == 0},
}, indent=1))
PY
