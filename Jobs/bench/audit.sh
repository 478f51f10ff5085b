#!/usr/bin/env bash
# Audit-chain benchmark: appends ROWS events (default 1,000,000) through the chaining trigger, then
# times `bloodmatch audit verify` over all of them against two anchors measured in the same run on
# the same server: reading the same columns with `psql \copy … TO /dev/null` (the I/O floor) and
# PostgreSQL recomputing every hash itself in one SQL statement. Bar: verify ≤ 60 s for 1,000,000 rows.
#
#   Jobs/bench/audit.sh        env: ROWS (1000000), BLOODMATCH_BIN (default: a release build)
#
# Prints one JSON line.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-1000000}
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env 2>/dev/null)"
bm=${BLOODMATCH_BIN:-}
if [ -z "$bm" ]; then
  swift build -c release --product bloodmatch 2>&1 | grep -E "error|complete" || true
  bm=.build/release/bloodmatch
fi
sockdir=$(dirname "$BLOODMATCH_DB_SOCKET"); port=${BLOODMATCH_DB_SOCKET##*.}
db="bm_bench_audit_$$"
export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
pg() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U postgres "$@"; }
trap 'pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
now() { date +%s.%N; }
pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner TEMPLATE template0"
"$bm" migrate >/dev/null

t0=$(now)
# 1,000 rows per transaction, as writers do (the chain's head row is updated once per row).
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

t2=$(now)
pg -d "$db" -c "\copy (SELECT chain_seq, seq, (extract(epoch FROM occurred_at) * 1000000)::bigint, actor_role, actor, action, subject, payload::text, request_id, trace_id, client_addr, corrects_seq, prev_hash, row_hash FROM bm.event_log ORDER BY chain_seq) TO /dev/null"
t3=$(now)
bad=$(pg -d "$db" -c "SELECT count(*) FROM bm.event_log e WHERE row_hash <> sha256(prev_hash || bm.audit_canonical(e))")
t4=$(now)
"$bm" audit verify --json >/tmp/bm-bench-audit-$$.json
t5=$(now)
python3 - "$rows" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" "$bad" /tmp/bm-bench-audit-$$.json <<'PY'
import json, sys
rows = int(sys.argv[1]); t = list(map(float, sys.argv[2:8])); bad = int(sys.argv[8])
report = json.load(open(sys.argv[9]))
append, copy, sql, verify = t[1]-t[0], t[3]-t[2], t[4]-t[3], t[5]-t[4]
print(json.dumps({"bench": "audit-verify", "rows": rows, "append_s": round(append, 2), "append_rows_per_s": round(rows/append),
  "copy_read_s": round(copy, 2), "sql_recompute_s": round(sql, 2), "sql_mismatches": bad,
  "verify_s": round(verify, 2), "verify_rows_per_s": round(rows/verify), "verify_intact": report["intact"],
  "verify_vs_copy_read": round(verify/copy, 2), "verify_vs_sql_recompute": round(verify/sql, 2),
  "bar_60s_for_1M": verify * 1_000_000 / rows <= 60}))
PY
rm -f /tmp/bm-bench-audit-$$.json
