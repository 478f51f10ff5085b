#!/usr/bin/env bash
# A centre's feed as a FHIR Bundle against the same snapshots as CSV: 10 centres of 6,000–7,000
# units each (100,000 units over 50 sites), imported once as CSV into one database and once
# as Bundles (Jobs/checks/fhir_feed.py writes them) into another, on the same server in the same run.
#
#   Jobs/bench/fhir-import.sh        (release build; generates var/bench/fhir-import once)
#
# Prints one JSON line: rows, seconds and rows/s for both, the Bundle's share of the CSV rate, the
# bytes of each form and each import's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
data="$root/var/bench/fhir-import"
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env 2>/dev/null)"
command -v /usr/bin/time >/dev/null || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
swift build -c release --product bloodmatch 2>&1 | grep -E "error|complete" || true
bm="$root/.build/release/bloodmatch"
[ -f "$data/sites.csv" ] || "$bm" generate --seed 42 --sites 50 --units 100000 --out "$data" >/dev/null

sockdir=$(dirname "$BLOODMATCH_DB_SOCKET"); port=${BLOODMATCH_DB_SOCKET##*.}
work=$(mktemp -d /tmp/bm-bench-fhir-import.XXXXXX)
export BLOODMATCH_LOG_LEVEL=error
pg() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U postgres "$@"; }
dbs=("bm_bench_csv_$$" "bm_bench_fhir_$$")
trap 'for d in "${dbs[@]}"; do pg -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done; rm -rf "$work"' EXIT

mapfile -t csvs < <(ls "$data"/snapshots/*.csv | head -10)
mkdir -p "$work/fhir"
for f in "${csvs[@]}"; do
  n=$(basename "$f" .csv)
  python3 Jobs/checks/fhir_feed.py bundle "$f" "$work/fhir/$n.json" >/dev/null
done
csv_bytes=$(cat "${csvs[@]}" | wc -c)
fhir_bytes=$(find "$work/fhir" -name '*.json' ! -name '*.ctl.json' -printf '%s\n' | awk '{s += $1} END {print s}')

run() {  # DB FILES…: import into a fresh database; prints seconds and peak RSS (KB)
  local db=$1; shift
  pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner TEMPLATE template0"
  BLOODMATCH_DB_NAME=$db "$bm" migrate >/dev/null
  BLOODMATCH_DB_NAME=$db "$bm" sites import "$data/sites.csv" >/dev/null
  pg -d "$db" -c "CHECKPOINT"
  BLOODMATCH_DB_NAME=$db /usr/bin/time -v -o "$work/$db.time" "$bm" import "$@" >"$work/$db.out" 2>&1 \
    || { echo "import into $db failed:" >&2; tail -3 "$work/$db.out" >&2; exit 1; }
  awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%s ", s}
              /Maximum resident set size/ {print $2}' "$work/$db.time"
}
read -r csv_s csv_rss < <(run "${dbs[0]}" "${csvs[@]}")
mapfile -t bundles < <(ls "$work"/fhir/*.json | grep -v "\.ctl\.json$")
read -r fhir_s fhir_rss < <(run "${dbs[1]}" "${bundles[@]}")
rows_csv=$(pg -d "${dbs[0]}" -c "SELECT count(*) FROM bm.inventory_units")
rows_fhir=$(pg -d "${dbs[1]}" -c "SELECT count(*) FROM bm.inventory_units")
[ "$rows_csv" = "$rows_fhir" ] || { echo "row counts differ: CSV $rows_csv, Bundle $rows_fhir" >&2; exit 1; }
same=$(diff <(pg -d "${dbs[0]}" -c "SELECT din, product_code, component, abo, rhd, expires_at, attributes FROM bm.inventory_units ORDER BY 1, 2") \
            <(pg -d "${dbs[1]}" -c "SELECT din, product_code, component, abo, rhd, expires_at, attributes FROM bm.inventory_units ORDER BY 1, 2") >/dev/null && echo true || echo false)

python3 - "$rows_csv" "$csv_s" "$fhir_s" "$csv_rss" "$fhir_rss" "$csv_bytes" "$fhir_bytes" "$same" <<'PY'
import json, sys
rows, csv_s, fhir_s, csv_rss, fhir_rss, csv_bytes, fhir_bytes, same = sys.argv[1:]
rows, csv_s, fhir_s = int(rows), float(csv_s), float(fhir_s)
print(json.dumps({
    "bench": "fhir-import", "rows": rows, "centres": 10, "same_units": same == "true",
    "csv_s": round(csv_s, 2), "csv_rows_per_s": round(rows / csv_s), "csv_bytes": int(csv_bytes), "csv_peak_rss_mb": round(int(csv_rss) / 1024, 1),
    "bundle_s": round(fhir_s, 2), "bundle_rows_per_s": round(rows / fhir_s), "bundle_bytes": int(fhir_bytes), "bundle_peak_rss_mb": round(int(fhir_rss) / 1024, 1),
    "bundle_share_of_csv_rate": round(csv_s / fhir_s, 3),
}))
PY
