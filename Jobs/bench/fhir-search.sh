#!/usr/bin/env bash
# FHIR stock search against /v1/availability for the same question, side by side in one run:
# `bloodmatch serve` (release) with the national dataset (500 sites, 1,000,000 units), wrk on one
# path at a time (closed loop, 8 connections, 15 s each, on the last core), the /health anchor in
# the same run. The question: O RhD negative red cells — `/v1/availability?component=RBC&abo=O&rhd=NEG`
# (counts per centre, nearest 20) and `/fhir/BiologicallyDerivedProduct?component=RBC&abo-rhd=95`
# (the first 20 units, earliest expiry first, with the total), and the same FHIR search for a rarer
# product (`abo-rhd=28`, AB RhD negative). Bar: each FHIR search's p50 within 2x availability's.
# Prints one JSON object; exits 1 when the bar is missed.
#   Jobs/bench/fhir-search.sh
#   SITES=200 UNITS=200000 SECONDS_PER_RUN=10 Jobs/bench/fhir-search.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
SITES=${SITES:-500}; UNITS=${UNITS:-1000000}; SECS=${SECONDS_PER_RUN:-15}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env)"
if [ -n "${BLOODMATCH_BIN:-}" ]; then bm=$BLOODMATCH_BIN; else
  swift build -c release --product bloodmatch 2>&1 | grep -E "error|Build complete" || true
  bm="$root/.build/release/bloodmatch"
fi
data="$root/var/bench/national-$SITES-$UNITS"
[ -f "$data/sites.csv" ] || "$bm" generate --seed 42 --sites "$SITES" --units "$UNITS" --out "$data" >/dev/null
sock_dir=$(dirname "$BLOODMATCH_DB_SOCKET"); pgport=${BLOODMATCH_DB_SOCKET##*.}
psql_pg() { runuser -u postgres -- psql -X -qAt -h "$sock_dir" -p "$pgport" "$@"; }
db="bm_bench_fhir_$$"; op="bench_fhir_$$"
work=$(mktemp -d /tmp/bm-fhir-bench.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  psql_pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  psql_pg -d postgres -c "DROP ROLE IF EXISTS $op" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
psql_pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner" >/dev/null
"$bm" migrate >/dev/null
"$bm" sites import "$data/sites.csv" >/dev/null
"$bm" import "$data"/snapshots/*.csv >/dev/null || true
"$bm" index build --out "$work/index.bmidx" >/dev/null 2>&1
"$bm" operator add "$op" --role supervisor --password-file "$work/op.password" >/dev/null
hospital=$(awk -F, '$3=="hospital"{print $1; exit}' "$data/sites.csv")
key=$(BLOODMATCH_OPERATOR=$op BLOODMATCH_OPERATOR_PASSWORD_FILE="$work/op.password" "$bm" hospital key create "$hospital" --label bench \
  --expires-in-days 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
port=${PORT:-18097}; base="http://127.0.0.1:$port"
"$bm" serve --port "$port" --index "$work/index.bmidx" --rate-limit 1000000 --rate-burst 1000000 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 150); do curl -sf "$base/ready" >/dev/null 2>&1 && break; sleep 0.2; done
last_cpu=$(( $(nproc) - 1 ))
run() {  # PATH → one JSON line
  env BM_KEY="$key" BM_PATH="$1" taskset -c "$last_cpu" wrk -t1 -c8 -d"${SECS}s" --timeout 5s -s Jobs/bench/http-mix.lua "$base/" | sed -n 's/^JSON //p'
}
availability="/v1/availability?component=RBC&abo=O&rhd=NEG"
fhir="/fhir/BiologicallyDerivedProduct?component=RBC&abo-rhd=95"
rare="/fhir/BiologicallyDerivedProduct?component=RBC&abo-rhd=28"
for p in "$availability" "$fhir" "$rare"; do run "$p" >/dev/null; done   # warm-up (expiry tables, caches)
health=$(run /health); a=$(run "$availability"); f=$(run "$fhir"); r=$(run "$rare")
total=$(curl -s -H "Authorization: Bearer $key" "$base$fhir&_count=0" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
python3 - "$health" "$a" "$f" "$r" "$total" "$SITES" "$UNITS" "$SECS" <<'PY'
import json, sys
health, a, f, r = (json.loads(x) for x in sys.argv[1:5])
total, sites, units, secs = (int(x) for x in sys.argv[5:9])
def row(x): return {k: x[k] for k in ("rps", "p50_ms", "p90_ms", "p99_ms", "non_2xx", "socket_errors")}
out = {"dataset": {"sites": sites, "units": units}, "seconds_per_run": secs, "connections": 8,
       "anchor_health": row(health), "availability": row(a), "fhir_search_o_neg": {**row(f), "total": total}, "fhir_search_ab_neg": row(r),
       "ratio_p50": {"o_neg": round(f["p50_ms"] / a["p50_ms"], 2), "ab_neg": round(r["p50_ms"] / a["p50_ms"], 2)}}
ok = all(x["non_2xx"] == 0 and x["socket_errors"] == 0 for x in (a, f, r)) and f["p50_ms"] <= 2 * a["p50_ms"] and r["p50_ms"] <= 2 * a["p50_ms"]
out["bar_met"] = {"fhir_p50_within_2x_availability": ok}
print(json.dumps(out, indent=1))
sys.exit(0 if ok else 1)
PY
