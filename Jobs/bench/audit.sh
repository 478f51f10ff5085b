#!/usr/bin/env bash
# Audit-chain benchmark: appends ROWS events (default 1,000,000) as the application role, seals
# them (`bloodmatch audit seal`), then times `bloodmatch audit verify` over all of them against two
# anchors measured in the same run on the same server: reading the same columns (chain entries
# joined with their events) with `psql \copy … TO /dev/null` (the I/O floor) and PostgreSQL
# recomputing every hash itself in one SQL statement. Bar: verify ≥ 40,000 rows/s (≤ 25 s for 1M).
#
#   Jobs/bench/audit.sh        env: ROWS (1000000), BLOODMATCH_BIN (default: a release build)
#
# Prints one JSON line.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-1000000}
source Jobs/lib/bench-db.bash
db="bm_bench_audit_$$"
export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
trap 'pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
now() { date +%s.%N; }
pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner TEMPLATE template0"
"$bm" migrate >/dev/null

t0=$(now)
# 1,000 rows per transaction, as writers do.
pg -d "$db" -c "SET ROLE bloodmatch_app" -c "DO \$\$ BEGIN
  FOR b IN 0..($ROWS - 1) / 1000 LOOP
    INSERT INTO bm.event_log (actor, action, subject, payload, request_id)
    SELECT 'bench', 'reservation.made', 'reservation:' || md5(g::text),
           jsonb_build_object('units', jsonb_build_array('T' || lpad((g / 1000000)::text, 4, '0') || '26' || lpad((g % 1000000)::text, 6, '0')), 'hold_seconds', 14400, 'hospital', 'H0001'),
           'req-' || g FROM generate_series(b * 1000 + 1, least((b + 1) * 1000, $ROWS)) g;
    COMMIT;
  END LOOP; END \$\$"
t1=$(now)
rows=$(pg -d "$db" -c "SELECT count(*) FROM bm.event_log")
"$bm" audit seal >/dev/null
t1s=$(now)

t2=$(now)
pg -d "$db" -c "\copy (SELECT c.chain_seq, c.format, e.seq, e.xid::text, (extract(epoch FROM e.occurred_at) * 1000000)::bigint, e.actor_role, e.actor, e.action, e.subject, e.payload::text, e.request_id, e.trace_id, e.client_addr, e.peer_addr, e.corrects_seq, c.prev_hash, c.row_hash FROM bm.event_chain c LEFT JOIN bm.event_log e ON e.seq = c.seq ORDER BY c.chain_seq) TO /dev/null"
t3=$(now)
bad=$(pg -d "$db" -c "SELECT count(*) FROM bm.event_chain c JOIN bm.event_log e ON e.seq = c.seq WHERE c.format = 2 AND c.row_hash <> sha256(c.prev_hash || bm.audit_canonical2(e, c.chain_seq))")
t4=$(now)
"$bm" audit verify --json --no-seal >/tmp/bm-bench-audit-$$.json
t5=$(now)
python3 - "$rows" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" "$bad" /tmp/bm-bench-audit-$$.json "$t1s" <<'PY'
import json, sys
rows = int(sys.argv[1]); t = list(map(float, sys.argv[2:8])); bad = int(sys.argv[8])
report = json.load(open(sys.argv[9])); sealed_at = float(sys.argv[10])
append, seal, copy, sql, verify = t[1]-t[0], sealed_at-t[1], t[3]-t[2], t[4]-t[3], t[5]-t[4]
print(json.dumps({"bench": "audit-verify", "rows": rows, "append_s": round(append, 2), "append_rows_per_s": round(rows/append),
  "seal_s": round(seal, 2), "seal_rows_per_s": round(rows/seal),
  "copy_read_s": round(copy, 2), "sql_recompute_s": round(sql, 2), "sql_mismatches": bad,
  "verify_s": round(verify, 2), "verify_rows_per_s": round(rows/verify), "verify_intact": report["intact"],
  "verify_rows_checked": report["rows_checked"], "verify_vs_copy_read": round(verify/copy, 2),
  "verify_vs_sql_recompute": round(verify/sql, 2), "bar_40000_rows_per_s": rows/verify >= 40000}))
PY
rm -f /tmp/bm-bench-audit-$$.json
