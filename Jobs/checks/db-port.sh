#!/usr/bin/env bash
# Check: the port a private cluster was created with is the one Jobs/db.sh uses afterwards.
#
# In a throwaway copy of Jobs/ (its own folder, so its own .pgdata/), `BLOODMATCH_DB_PORT=P
# Jobs/db.sh start` on a free port P; then, with BLOODMATCH_DB_PORT unset as in a fresh shell,
# `env` must name P's socket, `status` must say port P, and `psql` must reach the server on P; with
# BLOODMATCH_DB_PORT set to another port, `env`, `status`, `psql` and `stop` must refuse (exit 2,
# naming both ports) and leave the cluster running; with it set to P they work; plain `stop` stops
# it. Every db.sh call is bounded with `timeout`. Stops only the cluster it started (with that
# copy's own db.sh stop) and removes the folder. Prints one JSON line; exits 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
unset DATABASE_URL BLOODMATCH_PGDATA_ROOT BLOODMATCH_DB_PORT
tmp=$(mktemp -d /tmp/bm-dbport.XXXXXX)
chmod 755 "$tmp"
cp -r Jobs "$tmp/"
db="$tmp/Jobs/db.sh"
results=()
fail=0
free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
  p=$(( 59000 + RANDOM % 1000 ))
  if free "$p" && free $((p + 1)); then port=$p; break; fi
done
other=$(( ${port:-0} + 1 ))
cleanup() {
  # The copy's own db.sh, told the right port, stops the copy's cluster (and nothing else).
  [ -f "$tmp/.pgdata/data/PG_VERSION" ] && BLOODMATCH_DB_PORT=$port timeout 90 "$db" stop >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
result() {
  local pass; pass=$([ $fail = 0 ] && echo true || echo false)
  echo "{\"check\":\"db-port\",\"port\":${port:-null},$(IFS=,; echo "${results[*]}"),\"pass\":$pass}"
}
[ -n "$port" ] || { results+=("\"free_port\":\"FAILED (none found in 59000-59999)\""); fail=1; result; exit 1; }

out="" rc=0
run() {  # seconds, then the command; sets out (stdout and stderr) and rc
  local t=$1; shift
  out=$(timeout "$t" "$@" 2>&1); rc=$?
}
check() {  # name, expected exit ("0", "2", "3" or "nonzero"), output pattern; after run
  local name=$1 expect=$2 pattern=$3
  if { [ "$expect" = nonzero ] && [ $rc != 0 ]; } || [ "$expect" = "$rc" ]; then
    if printf '%s' "$out" | grep -qE -- "$pattern"; then results+=("\"$name\":\"ok\""); return 0; fi
  fi
  results+=("\"$name\":\"FAILED (exit $rc)\""); fail=1
  echo "db-port $name: expected exit $expect and /$pattern/, got exit $rc: $out" >&2
  return 1
}
server_port() {  # the port the server really listens on, asked over its socket as postgres
  local sock; sock=$(cat "$tmp/.pgdata/socket-path" 2>/dev/null) || return 1
  if [ "$(id -u)" = 0 ]; then set -- runuser -u postgres --; else set --; fi
  timeout 20 "$@" psql -X -qAt -h "$(dirname "$sock")" -p "${sock##*.}" -U postgres -d postgres -c "SHOW port"
}

# 1. Created on port P (as a user would: the variable set for start only).
run 180 env BLOODMATCH_DB_PORT=$port "$db" start
if ! check start 0 "running \(port $port"; then result; exit 1; fi
sp=$(server_port) && [ "$sp" = "$port" ] && results+=("\"server_on_port\":\"ok\"") \
  || { results+=("\"server_on_port\":\"FAILED (${sp:-no answer})\""); fail=1; }

# 2. A fresh shell, BLOODMATCH_DB_PORT unset: env, status, psql all use P.
run 30 "$db" env
check env_unset 0 "BLOODMATCH_DB_SOCKET='.*/\.s\.PGSQL\.$port'"
sock=$(printf '%s\n' "$out" | sed -n "s/^export BLOODMATCH_DB_SOCKET='\(.*\)'$/\1/p")
[ -n "$sock" ] && [ -S "$sock" ] && results+=("\"env_socket_exists\":\"ok\"") \
  || { results+=("\"env_socket_exists\":\"FAILED (${sock:-none})\""); fail=1; }
run 30 "$db" status
check status_unset 0 "^running: port $port "
run 30 "$db" psql -qAt -c "SELECT 'port=' || current_setting('port')"
check psql_unset 0 "^port=$port$"

# 3. BLOODMATCH_DB_PORT set to another port: refused, clearly, and nothing changes.
for cmd in env status psql stop; do
  run 30 env BLOODMATCH_DB_PORT=$other "$db" $cmd
  check "${cmd}_other_refused" 2 "BLOODMATCH_DB_PORT=$other.*port $port"
done
run 30 "$db" status
check still_running_after_refusals 0 "^running: port $port "

# 4. BLOODMATCH_DB_PORT set to the cluster's own port: accepted.
run 30 env BLOODMATCH_DB_PORT=$port "$db" env
check env_same_port 0 "\.s\.PGSQL\.$port'"
run 120 env BLOODMATCH_DB_PORT=$port "$db" start
check start_again_same_port 0 "already running \(port $port"

# 5. Plain stop stops this cluster; status then says not running, on port P.
run 90 "$db" stop
check stop_unset 0 "stopped"
run 30 "$db" status
check status_after_stop 3 "not running"
free "$port" && results+=("\"port_released\":\"ok\"") || { results+=("\"port_released\":\"FAILED\""); fail=1; }

result
exit $fail
