#!/usr/bin/env bash
# Event-log growth benchmark: what the monitoring reads and `audit verify` cost once access records
# have filled the log. On a throwaway database with the sample sites and stock:
#   1. anchor: `bloodmatch metrics` (every monitoring read of the event log) on the empty log
#   2. appends ROWS access records (`api.request`, the service's payload shape, 10,000 rows per
#      transaction, two writers, as the application role through the database's own stamp trigger)
#      and seals them
#   3. exports a checkpoint, appends and seals 10,000 more (a quarter-hour at 11 requests/s)
#   4. times `metrics` again (median of 3), `audit verify --since-checkpoint` (the bounded check run
#      every 15 minutes; then with PREV_BIN, an earlier build, when given) and a full `audit verify`
#      from the first event, each figure also on standard error as it comes
#   5. reports the on-disk size of the log and its chain, per row
#   6. moves segment 1 out: `audit archive` (write, read back, carry forward), `audit verify-archive`
#      of the file alone, `audit detach` (as the owner) while a writer appends access records one
#      transaction at a time (its slowest insert is the time writes waited for the detach), and
#      `audit verify` of what stays attached. Segments are SEGMENT_SIZE events (ROWS / 2 by
#      default), so that segment 1 is closed once the log is sealed.
#
#   Jobs/bench/event-log-scale.sh     env: ROWS (10000000), SEGMENT_SIZE (ROWS / 2),
#                                          BLOODMATCH_BIN (default: a release build),
#                                          PREV_BIN (an earlier build to compare), FULL_VERIFY=0 skips
#                                          the full verify (it reads every row), KEEP_DB=1 keeps the
#                                          database (its name is printed) for a closer look
#
# Prints one JSON line. Disk: about 1 KB per row (10 M rows ≈ 10 GB) and the archive of segment 1
# (about 0.4 KB per event) while it runs; the database and the archive are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-10000000}
SEGMENT_SIZE=${SEGMENT_SIZE:-$((ROWS / 2))}
source Jobs/lib/bench-db.bash
db="bm_bench_growth_$$"
work=$(mktemp -d)
export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
trap '[ -n "${KEEP_DB:-}" ] && echo "kept database $db" >&2 || pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
now() { date +%s.%N; }
since() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 3))" "$1" "$(now)"; }
median_metrics() {
  local a b c t
  for v in a b c; do t=$(now); "$bm" metrics >"$work/metrics.prom"; printf -v "$v" '%s' "$(since "$t")"; done
  python3 -c "import sys; print(sorted(map(float, sys.argv[1:]))[1])" "$a" "$b" "$c"
}
pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner TEMPLATE template0"
pg -d postgres -c "ALTER DATABASE $db SET bm.audit_segment_size = '$SEGMENT_SIZE'"
"$bm" migrate >/dev/null
"$bm" sites import Data/sites.csv >/dev/null
"$bm" generate --seed 3 --sites-file Data/sites.csv --units 3000 --out "$work/gen" >/dev/null
"$bm" import "$work"/gen/snapshots/*.csv >/dev/null
"$bm" audit seal >/dev/null
metrics_empty=$(median_metrics)

append() { append_access_records "$db" "$@"; }
# `audit seal` chains up to 5 M events a call ("sealed N events; head is position H").
seal_all() { while ! "$bm" audit seal | grep -q '^sealed 0 events'; do :; done; }

half=$((ROWS / 2))
t=$(now); append 1 "$half" & first=$!; append $((half + 1)) "$ROWS"; wait "$first"; append_s=$(since "$t")
t=$(now); seal_all; seal_s=$(since "$t")
echo "appended $ROWS in ${append_s} s, sealed in ${seal_s} s" >&2
"$bm" audit checkpoint --out "$work/checkpoint.json" >/dev/null
append $((ROWS + 1)) $((ROWS + 10000)); seal_all
rows=$(pg -d "$db" -c "SELECT count(*) FROM bm.event_log")
chained=$(pg -d "$db" -c "SELECT count(*) FROM bm.event_chain")
pg -d "$db" -c "VACUUM ANALYZE bm.event_log" -c "VACUUM ANALYZE bm.event_chain"

metrics_full=$(median_metrics)
grep -q '^bloodmatch_audit_chain_length' "$work/metrics.prom" || { echo "metrics lacked the audit chain length" >&2; exit 1; }
# Each measured step reports its time, or how it failed, and the run goes on.
timed() {  # NAME COMMAND…: sets NAME_s to the seconds taken, or to "failed: <last error line>"
  local name=$1 t; shift; t=$(now)
  if "$@" >"$work/$name.json" 2>"$work/$name.err"; then printf -v "${name}_s" '%s' "$(since "$t")"
  else printf -v "${name}_s" '"failed after %s s: %s"' "$(since "$t")" "$(grep -v '^{' "$work/$name.err" | tail -1 | tr -d '"\\' | cut -c1-200)"; fi
}
timed since "$bm" audit verify --no-seal --since-checkpoint --checkpoint "$work/checkpoint.json" --json
echo "metrics ${metrics_full} s (empty log ${metrics_empty} s); verify --since-checkpoint ${since_s} s" >&2
prev_since_s=null
if [ -n "${PREV_BIN:-}" ]; then
  timed prev_since "$PREV_BIN" audit verify --no-seal --since-checkpoint --checkpoint "$work/checkpoint.json" --json
  echo "earlier build: verify --since-checkpoint ${prev_since_s} s" >&2
fi
full_s=null; full_rows=null
if [ "${FULL_VERIFY:-1}" != 0 ]; then
  timed full "$bm" audit verify --no-seal --max-unsealed-seconds 86400 --json
  full_rows=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows_checked"])' "$work/full.json" 2>/dev/null || echo null)
  echo "full verify ${full_s} s, ${full_rows} rows" >&2
fi
# Both tables are partitioned: their size is their segments'.
sizes=$(pg -d "$db" -c "SELECT (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'bm.event_log'::regclass)
                            || ' ' || (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'bm.event_chain'::regclass)")

# Segment 1 out: archive, verify the file alone, detach while a writer appends, verify what stays.
seg_events=$(pg -d "$db" -c "SELECT chain_last - chain_first + 1 FROM bm.audit_segments WHERE segment = 1 AND closed_at IS NOT NULL")
timed archive "$bm" audit archive --segment 1 --dir "$work/archive"
archive_bytes=$(stat -c %s "$work/archive/bloodmatch-audit-s000001.jsonl" 2>/dev/null || echo null)
echo "archive of segment 1 (${seg_events:-not closed} events, ${archive_bytes} bytes): ${archive_s} s" >&2
timed verify_archive "$bm" audit verify-archive "$work/archive/bloodmatch-audit-s000001.jsonl"
echo "verify-archive ${verify_archive_s} s" >&2
"$bm" audit seal >/dev/null
# One access record per transaction, timed by the database, until the detach is done.
writer() {
  pg -d "$db" -c "SET ROLE bloodmatch_app" -c "DO \$\$ DECLARE t timestamptz; worst interval := '0'; BEGIN
    FOR i IN 1..100000 LOOP
      t := clock_timestamp();
      INSERT INTO bm.event_log (actor, action, subject) VALUES ('hospital:H0001', 'api.request', '/v1/availability');
      COMMIT;
      worst := greatest(worst, clock_timestamp() - t);
      EXIT WHEN EXISTS (SELECT 1 FROM bm.audit_segments WHERE segment = 1 AND detached_at IS NOT NULL);
      PERFORM pg_sleep(0.002);
    END LOOP;
    RAISE NOTICE 'worst_insert_ms=%', round(extract(epoch FROM worst) * 1000, 1); END \$\$" 2>&1 | sed -n 's/.*worst_insert_ms=//p'
}
writer >"$work/writer.out" & writer_pid=$!
sleep 1
timed detach "$bm" audit detach --segment 1 --archive "$work/archive/bloodmatch-audit-s000001.jsonl"
wait "$writer_pid" || true
worst_insert_ms=$(cat "$work/writer.out"); worst_insert_ms=${worst_insert_ms:-null}
echo "detach ${detach_s} s; the slowest insert meanwhile ${worst_insert_ms} ms" >&2
timed after "$bm" audit verify --json
after_rows=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["rows_checked"] if d["intact"] else "null")' "$work/after.json" 2>/dev/null || echo null)
echo "verify after the detach ${after_s} s, ${after_rows} rows" >&2

python3 - "$rows" "$chained" "$append_s" "$seal_s" "$metrics_empty" "$metrics_full" "$since_s" "$work/since.json" "$full_s" "$full_rows" $sizes "$prev_since_s" \
  "${seg_events:-null}" "$archive_s" "$archive_bytes" "$verify_archive_s" "$detach_s" "$worst_insert_ms" "$after_s" "$after_rows" <<'PY'
import json, sys
rows, chained = int(sys.argv[1]), int(sys.argv[2])
def figure(text):
    return None if text == "null" else json.loads(text)
append_s, seal_s, m0, m1 = map(float, sys.argv[3:7])
since_s = figure(sys.argv[7])
try:
    since = json.load(open(sys.argv[8]))
except (OSError, ValueError):
    since = {"rows_checked": None, "intact": None}
full_s = figure(sys.argv[9])
full_rows = figure(sys.argv[10])
log_bytes, chain_bytes = int(sys.argv[11]), int(sys.argv[12])
prev_since_s = figure(sys.argv[13])
seg_events, archive_s, archive_bytes, verify_archive_s, detach_s, worst_insert_ms, after_s, after_rows = map(figure, sys.argv[14:22])
def rate(n, s):
    return round(n / s) if isinstance(s, float) and n else None
print(json.dumps({"bench": "event-log-growth", "events": rows, "chained": chained,
  "append_rows_per_s": round(rows / append_s), "seal_rows_per_s": round(rows / seal_s),
  "metrics_s_empty_log_anchor": m0, "metrics_s": m1, "metrics_vs_anchor": round(m1 / m0, 2),
  "verify_since_checkpoint_s": since_s, "verify_since_checkpoint_rows": since["rows_checked"],
  "verify_since_checkpoint_intact": since["intact"], "prev_build_verify_since_checkpoint_s": prev_since_s,
  "verify_full_s": full_s, "verify_full_rows": full_rows,
  "verify_full_rows_per_s": round(full_rows / full_s) if isinstance(full_s, float) and full_rows else None,
  "event_log_bytes": log_bytes, "event_chain_bytes": chain_bytes,
  "bytes_per_event": round((log_bytes + chain_bytes) / rows),
  "segment_1_events": seg_events, "archive_s": archive_s, "archive_events_per_s": rate(seg_events, archive_s),
  "archive_bytes_per_event": round(archive_bytes / seg_events) if archive_bytes and seg_events else None,
  "verify_archive_s": verify_archive_s, "verify_archive_events_per_s": rate(seg_events, verify_archive_s),
  "detach_s": detach_s, "worst_insert_during_detach_ms": worst_insert_ms,
  "verify_after_detach_s": after_s, "verify_after_detach_rows": after_rows}))
PY
