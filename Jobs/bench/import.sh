#!/usr/bin/env bash
# Import benchmark: the validated import of the national dataset (100 centres, 1,000,000 units)
# against PostgreSQL's own bulk path, `psql \copy` of the same rows into an identically indexed
# and constrained copy of bm.inventory_units, in the same run on the same server.
#
#   Jobs/bench/import.sh        (release build; generates var/bench/national once)
#
# Prints one JSON line: rows, seconds and rows/s for both, their ratio (bar: the validated import
# reaches at least 50 % of the \copy rate) and the import's peak RSS (bar: under 300 MB).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
data="$root/var/bench/national"
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env 2>/dev/null)"
if ! [ -x /usr/bin/time ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
fi
swift build -c release --product bloodmatch 2>&1 | grep -E "error|Compiling|complete" || true
bm="$root/.build/release/bloodmatch"
[ -f "$data/sites.csv" ] || "$bm" generate --seed 42 --sites 500 --units 1000000 --out "$data" >/dev/null

sockdir=$(dirname "$BLOODMATCH_DB_SOCKET"); port=${BLOODMATCH_DB_SOCKET##*.}
db="bm_bench_import_$$"
work=$(mktemp -d /tmp/bm-bench-import.XXXXXX)
chmod 755 "$work"
export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
pg() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U postgres "$@"; }
trap 'pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner TEMPLATE template0"
"$bm" migrate >/dev/null
"$bm" sites import "$data/sites.csv" >/dev/null

# 1. The validated import: decode, validate, COPY, conflict check and swap, 100 transactions.
pg -d "$db" -c "CHECKPOINT"
rc=0
/usr/bin/time -v -o "$work/time.txt" "$bm" import "$data"/snapshots/*.csv >"$work/import.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || { echo "the import failed (exit $rc):" >&2; tail -5 "$work/import.out" >&2; exit 1; }
import_s=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$work/time.txt")
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
cpu_s=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/time.txt")
rows=$(pg -d "$db" -c "SELECT count(*) FROM bm.inventory_units")

# 2. The same rows, converted to the table's column set (snapshot ids from the import), through
#    \copy into a table with the same columns, defaults, checks, keys and indexes.
pg -d "$db" -c "SELECT file_name || ' ' || snapshot_id FROM bm.import_runs WHERE outcome = 'loaded'" >"$work/ids.txt"
: >"$work/all.tsv"
while read -r name id; do
  awk -F, -v OFS='\t' -v sid="$id" 'NR > 1 {print sid, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NR}' "$data/snapshots/$name" >>"$work/all.tsv"
done <"$work/ids.txt"
copy_rows=$(wc -l <"$work/all.tsv")
pg -d "$db" <<'SQL'
CREATE TABLE bm.copy_baseline (LIKE bm.inventory_units INCLUDING ALL);
ALTER TABLE bm.copy_baseline ADD FOREIGN KEY (snapshot_id) REFERENCES bm.inventory_snapshots;
CHECKPOINT;
SQL
t0=$(date +%s%N)
pg -d "$db" -c "\\copy bm.copy_baseline FROM '$work/all.tsv'"
copy_s=$(awk -v ns=$(( $(date +%s%N) - t0 )) 'BEGIN {printf "%.3f", ns / 1e9}')
loaded=$(pg -d "$db" -c "SELECT count(*) FROM bm.copy_baseline")
[ "$loaded" -eq "$copy_rows" ] && [ "$copy_rows" -eq "$rows" ] || { echo "row counts differ: import $rows, file $copy_rows, \\copy $loaded" >&2; exit 1; }

python3 - "$rows" "$import_s" "$copy_s" "$rss_kb" "$cpu_s" <<'PY'
import json, sys
rows, import_s, copy_s, rss_kb, cpu_s = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
ratio = (rows / import_s) / (rows / copy_s)
rss_mb = rss_kb / 1024
print(json.dumps({
    "bench": "import", "rows": rows, "centres": 100,
    "import_s": round(import_s, 2), "import_rows_per_s": round(rows / import_s), "import_client_cpu_s": round(cpu_s, 2),
    "copy_s": round(copy_s, 2), "copy_rows_per_s": round(rows / copy_s),
    "ratio": round(ratio, 3), "ratio_bar": 0.5, "ratio_pass": ratio >= 0.5,
    "peak_rss_mb": round(rss_mb, 1), "rss_bar_mb": 300, "rss_pass": rss_mb < 300,
}))
PY
