# Sourced by the benchmarks that work on a database of their own in the project's PostgreSQL
# (Jobs/bench/audit.sh, Jobs/bench/event-log-scale.sh), from the repository's root. Gives:
#   bm         the binary: BLOODMATCH_BIN, else a release build made now
#   sockdir, port   the server's socket folder and port (Jobs/db.sh)
#   pg ARGS…   psql as the superuser, stopping at the first error
#   append_access_records DB FIRST LAST   access records numbered FIRST..LAST, as the service writes them
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env 2>/dev/null)"
bm=${BLOODMATCH_BIN:-}
if [ -z "$bm" ]; then
  swift build -c release --product bloodmatch 2>&1 | grep -E "error|complete" || true
  bm=.build/release/bloodmatch
fi
sockdir=$(dirname "$BLOODMATCH_DB_SOCKET"); port=${BLOODMATCH_DB_SOCKET##*.}
pg() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U postgres "$@"; }

# Access records as the service writes them (AccessRecord: key id, method, parameters, status,
# outcome, latency, requested_at), for 40 hospitals, 10,000 rows per transaction.
append_access_records() {  # DB FIRST LAST
  local db=$1; shift
  pg -d "$db" -c "SET ROLE bloodmatch_app" -c "DO \$\$ BEGIN
    FOR b IN ($1 - 1) / 10000 .. ($2 - 1) / 10000 LOOP
      INSERT INTO bm.event_log (actor, action, subject, payload, request_id, trace_id, peer_addr)
      SELECT 'hospital:H' || lpad((g % 40 + 1)::text, 4, '0'), 'api.request', '/v1/availability',
             jsonb_build_object('key_id', lpad(to_hex(g % 40), 16, '0'), 'method', 'GET',
               'parameters', jsonb_build_object('component', 'RBC', 'abo', 'O', 'rhd', 'NEG'),
               'status', 200, 'outcome', 'ok', 'latency_ms', (g % 997) / 100.0,
               'requested_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')),
             md5(g::text), md5((g * 7)::text), '10.0.' || (g % 40) || '.1'
      FROM generate_series(greatest(b * 10000 + 1, $1), least((b + 1) * 10000, $2)) g;
      COMMIT;
    END LOOP; END \$\$"
}
