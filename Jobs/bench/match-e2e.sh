#!/usr/bin/env bash
# National-scale figures of the matcher against PostgreSQL, in a throwaway database of the
# private cluster: index build from PostgreSQL, index file load, and `bloodmatch match` end to end
# (process start to printed decision, including the database re-check and write), 20 runs.
#   Jobs/bench/match-e2e.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env)"
swift build -c release --product bloodmatch 2>&1 | grep -E "error|Build complete" || true
bm="$root/.build/release/bloodmatch"
data="$root/var/bench/national"
[ -f "$data/sites.csv" ] || "$bm" generate --seed 42 --sites 500 --units 1000000 --out "$data" >/dev/null
sock_dir=$(dirname "$BLOODMATCH_DB_SOCKET"); port=${BLOODMATCH_DB_SOCKET##*.}
db=bm_bench_match
export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
# KEEP_DB=1 keeps (and reuses) the loaded database between runs.
if [ "${KEEP_DB:-0}" = 1 ] && runuser -u postgres -- psql -X -qAt -h "$sock_dir" -p "$port" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  :
else
  runuser -u postgres -- psql -X -q -h "$sock_dir" -p "$port" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db OWNER bloodmatch_owner"
  "$bm" migrate >/dev/null
  "$bm" sites import "$data/sites.csv" >/dev/null
  "$bm" import "$data"/snapshots/*.csv >/dev/null
fi
[ "${KEEP_DB:-0}" = 1 ] || trap 'runuser -u postgres -- psql -X -q -h "$sock_dir" -p "$port" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
idx="$root/var/bench/national.bmidx"
build_ms=()
for i in 1 2 3; do
  out=$("$bm" index build --out "$idx" 2>/dev/null)
  build_ms+=("$(echo "$out" | sed -E 's/.*built in ([0-9]+) ms.*/\1/')")
done
hospital=$(awk -F, '$3=="hospital"{print $1; exit}' "$data/sites.csv")
times=()
for i in $(seq 1 20); do
  s=$(date +%s%N)
  "$bm" match --index "$idx" --hospital "$hospital" --component RBC --abo O --rhd NEG --quantity 2 \
    --sex female --age 30 --urgency urgent --request-id "bench-$i-$(date +%s%N)" >/dev/null 2>&1 || true
  times+=($(( ($(date +%s%N) - s) / 1000000 )))
done
load=$("$bm" bench load-index --index "$idx" 2>/dev/null || echo '{}')
python3 - "${build_ms[*]}" "${times[*]}" "$load" <<'PY'
import json, statistics, sys
builds = [int(x) for x in sys.argv[1].split()]
runs = [int(x) for x in sys.argv[2].split()]
print(json.dumps({"index_build_from_postgres_ms_median": statistics.median(builds), "index_build_runs_ms": builds,
                  "match_end_to_end_ms_median": statistics.median(runs), "match_end_to_end_ms_p90": sorted(runs)[int(len(runs)*0.9)-1],
                  "match_runs_ms": runs, "index_load": json.loads(sys.argv[3] or "{}")}, sort_keys=True))
PY
