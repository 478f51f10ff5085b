#!/usr/bin/env bash
# Checks Jobs/db.sh against its failure modes on throwaway clusters: a port in use, a stale pid
# file, a data folder of another PostgreSQL version, and a folder it did not create. Prints one
# JSON line; exits non-zero on failure. Stops only the clusters and listener it started.
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d /tmp/bm-dbcheck.XXXXXX)
chmod 755 "$tmp"
port=$(( 55000 + RANDOM % 2000 ))
listener=""
results=()
fail=0
cleanup() {
  [ -n "$listener" ] && kill "$listener" 2>/dev/null
  BLOODMATCH_PGDATA_ROOT="$tmp/a" BLOODMATCH_DB_PORT=$port Jobs/db.sh stop >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
check() {  # name, expected exit ("0" or "nonzero"), output pattern, command…
  local name=$1 expect=$2 pattern=$3; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if { [ "$expect" = 0 ] && [ $rc = 0 ]; } || { [ "$expect" = nonzero ] && [ $rc != 0 ]; }; then
    if echo "$out" | grep -qE "$pattern"; then results+=("\"$name\":\"ok\""); return 0; fi
  fi
  results+=("\"$name\":\"FAILED (exit $rc)\""); fail=1
  echo "$name: exit $rc, output: $out" >&2
}
unset DATABASE_URL
export BLOODMATCH_DB_PORT=$port

# 1. Port in use by another program: clear message, exit 3, nothing started.
python3 -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $port)); s.listen(); time.sleep(120)" &
listener=$!
sleep 0.5
check port_in_use nonzero "port $port on 127.0.0.1 is in use" env BLOODMATCH_PGDATA_ROOT="$tmp/a" Jobs/db.sh start
kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null; listener=""

# 2. Starts, reuses a running cluster, stops; then a stale pid file is removed and it starts again.
check first_start 0 "running" env BLOODMATCH_PGDATA_ROOT="$tmp/a" Jobs/db.sh start
check reuse 0 "already running" env BLOODMATCH_PGDATA_ROOT="$tmp/a" Jobs/db.sh start
check stop 0 "stopped" env BLOODMATCH_PGDATA_ROOT="$tmp/a" Jobs/db.sh stop
printf '999999\n%s\n' "$tmp/a/data" >"$tmp/a/data/postmaster.pid"
check stale_pid 0 "stale postmaster.pid" env BLOODMATCH_PGDATA_ROOT="$tmp/a" Jobs/db.sh start
check checksums 0 "on" runuser -u postgres -- psql -X -qAt -h "$tmp/a/sock" -p "$port" -U postgres -d postgres -c "show data_checksums"
BLOODMATCH_PGDATA_ROOT="$tmp/a" Jobs/db.sh stop >/dev/null 2>&1

# 3. A data folder of another version: refused, untouched.
mkdir -p "$tmp/b/data"; touch "$tmp/b/created-by-bloodmatch"; echo 14 >"$tmp/b/data/PG_VERSION"
check other_version nonzero "PostgreSQL 14 cluster" env BLOODMATCH_PGDATA_ROOT="$tmp/b" Jobs/db.sh start
[ "$(cat "$tmp/b/data/PG_VERSION")" = 14 ] && [ "$(ls "$tmp/b/data")" = PG_VERSION ] || { results+=("\"other_version_untouched\":\"FAILED\""); fail=1; }

# 4. A folder it did not create: refused, untouched.
mkdir -p "$tmp/c/data"; echo keep >"$tmp/c/data/precious"
check not_ours nonzero "not created by this script" env BLOODMATCH_PGDATA_ROOT="$tmp/c" Jobs/db.sh start
[ "$(cat "$tmp/c/data/precious")" = keep ] || { results+=("\"not_ours_untouched\":\"FAILED\""); fail=1; }

pass=$([ $fail = 0 ] && echo true || echo false)
echo "{\"check\":\"db-script\",$(IFS=,; echo "${results[*]}"),\"pass\":$pass}"
exit $fail
