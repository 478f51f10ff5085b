#!/usr/bin/env bash
# Upgrade benchmark: how long `bloodmatch migrate` takes to put an existing event log into segments
# (migration 0014), during which the log is locked and every audited write waits. On a throwaway
# database: OLD_BIN (a build from before migration 0014) migrates, loads the sample sites, appends
# ROWS access records and seals them; then the current build's `migrate` is timed, next to an anchor
# in the same run (`VACUUM` of the log, which reads it whole once, as the migration's checks do),
# and `audit verify` must pass over every event, now in segment 1.
#
#   OLD_BIN=… Jobs/bench/segment-migration.sh    env: ROWS (5000000), BLOODMATCH_BIN (default: a release build)
#
# Prints one JSON line. Disk: about 1 KB per row while it runs; the database is dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-5000000}
: "${OLD_BIN:?OLD_BIN must name a bloodmatch build from before migration 0014}"
source Jobs/lib/bench-db.bash
db="bm_bench_upgrade_$$"
export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
trap 'pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
now() { date +%s.%N; }
since() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 3))" "$1" "$(now)"; }
pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner TEMPLATE template0"
"$OLD_BIN" migrate >/dev/null
"$OLD_BIN" sites import Data/sites.csv >/dev/null
half=$((ROWS / 2))
append_access_records "$db" 1 "$half" & first=$!; append_access_records "$db" $((half + 1)) "$ROWS"; wait "$first"
while ! "$OLD_BIN" audit seal | grep -q '^sealed 0 events'; do :; done
pg -d "$db" -c "VACUUM ANALYZE bm.event_log" -c "VACUUM ANALYZE bm.event_chain"
old_version=$(pg -d "$db" -c "SELECT max(version) FROM bm_meta.schema_migrations" 2>/dev/null || echo null)
t=$(now); pg -d "$db" -c "VACUUM bm.event_log" -c "VACUUM bm.event_chain"; anchor_s=$(since "$t")
t=$(now); "$bm" migrate >/dev/null; migrate_s=$(since "$t")
echo "migrate ${migrate_s} s on ${ROWS} events (anchor: VACUUM of the log ${anchor_s} s)" >&2
t=$(now); "$bm" audit verify --json >"/tmp/$db.verify.json" || true; verify_s=$(since "$t")
python3 - "$ROWS" "$old_version" "$migrate_s" "$anchor_s" "$verify_s" "/tmp/$db.verify.json" "$(pg -d "$db" -c "SELECT end_seq FROM bm.audit_segments WHERE segment = 1")" <<'PY'
import json, sys
rows, old = int(sys.argv[1]), sys.argv[2]
migrate_s, anchor_s, verify_s = map(float, sys.argv[3:6])
report = json.load(open(sys.argv[6]))
print(json.dumps({"bench": "segment-migration", "events": rows, "from_schema": old, "migrate_s": migrate_s,
  "vacuum_anchor_s": anchor_s, "migrate_vs_anchor": round(migrate_s / anchor_s, 2),
  "migrate_events_per_s": round(rows / migrate_s), "segment_1_end_seq": int(sys.argv[7]),
  "verify_after_s": verify_s, "verify_after_intact": report.get("intact"), "verify_after_rows": report.get("rows_checked")}))
PY
rm -f "/tmp/$db.verify.json"
