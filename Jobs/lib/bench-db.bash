# Sourced by the benchmarks that work on a database of their own in the project's PostgreSQL
# (Jobs/bench/audit.sh, Jobs/bench/event-log-scale.sh), from the repository's root. Gives:
#   bm         the binary: BLOODMATCH_BIN, else a release build made now
#   sockdir, port   the server's socket folder and port (Jobs/db.sh)
#   pg ARGS…   psql as the superuser, stopping at the first error
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env 2>/dev/null)"
bm=${BLOODMATCH_BIN:-}
if [ -z "$bm" ]; then
  swift build -c release --product bloodmatch 2>&1 | grep -E "error|complete" || true
  bm=.build/release/bloodmatch
fi
sockdir=$(dirname "$BLOODMATCH_DB_SOCKET"); port=${BLOODMATCH_DB_SOCKET##*.}
pg() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U postgres "$@"; }
