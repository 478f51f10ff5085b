#!/usr/bin/env bash
# The embedded default database: a private PostgreSQL 15 cluster under .pgdata/ in this checkout.
#
#   Jobs/db.sh start    create the cluster once (data checksums on), start it, create the roles
#   Jobs/db.sh stop     stop it cleanly (fast shutdown), if this checkout started it
#   Jobs/db.sh status   say whether it runs, and where
#   Jobs/db.sh env      print the settings the bloodmatch CLI reads (for `eval "$(Jobs/db.sh env)"`)
#   Jobs/db.sh psql     open psql on it as the schema owner
#
# With DATABASE_URL set, every command here does nothing: that server is used instead.
# The server listens on a unix socket in .pgdata/ and on 127.0.0.1 only. Its port is chosen when
# the cluster is created (BLOODMATCH_DB_PORT, default 54329) and is fixed from then on: every
# command reads it back from the cluster's postgresql.conf (or .pgdata/socket-path), so
# `BLOODMATCH_DB_PORT=54411 Jobs/db.sh start` once, then plain `Jobs/db.sh env|status|psql|stop`,
# talk to port 54411. A BLOODMATCH_DB_PORT that differs from an existing cluster's port is
# refused with exit 2 (nothing is done), never silently used. Local socket logins use peer
# authentication mapped to the OS user that created the cluster; TCP logins on 127.0.0.1 need the
# passwords in .pgdata/credentials (mode 600).
# It never deletes a data folder, and it refuses one it did not create.
# BLOODMATCH_PGDATA_ROOT moves the cluster folder (tests use it for throwaway clusters).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DEFAULT_PORT=54329
ROOT=${BLOODMATCH_PGDATA_ROOT:-$here/.pgdata}
DATA="$ROOT/data"
MARK="$ROOT/created-by-bloodmatch"
SOCK="$ROOT/sock"
LOG="$ROOT/server.log"
DB=bloodmatch
ROLES=(bloodmatch_owner bloodmatch_app bloodmatch_import)

say() { printf '{"ts":"%s","level":"%s","logger":"db.sh","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$1" "$2" >&2; }
die() { say error "$1"; exit "${2:-1}"; }

if [ -n "${DATABASE_URL:-}" ]; then
  say info "DATABASE_URL is set: using that server; the embedded cluster is not touched"
  [ "${1:-}" = env ] && echo "export DATABASE_URL='$DATABASE_URL'"
  exit 0
fi

# The socket path must fit in sun_path (107 bytes); fall back to a short per-checkout folder.
if [ $(( ${#SOCK} + 20 )) -gt 100 ]; then
  SOCK="/tmp/bloodmatch-$(printf '%s' "$here" | sha1sum | cut -c1-12)"
fi

# The port: the one an existing cluster was created with wins; BLOODMATCH_DB_PORT only chooses the
# port of a cluster about to be created, and must agree with an existing one.
cluster_port() {  # prints the existing cluster's port, or nothing when there is no cluster
  [ -f "$DATA/PG_VERSION" ] || return 0
  local f p found=""
  for f in "$DATA/postgresql.conf" "$DATA/postgresql.auto.conf"; do  # the last setting wins
    [ -r "$f" ] || continue
    p=$(sed -n "s/^[[:space:]]*port[[:space:]]*=[[:space:]]*'\{0,1\}\([0-9][0-9]*\).*/\1/p" "$f" | tail -1)
    [ -z "$p" ] || found=$p
  done
  if [ -z "$found" ] && [ -r "$ROOT/socket-path" ]; then  # data folder unreadable: what start wrote
    found=$(sed -n 's/.*\.s\.PGSQL\.\([0-9][0-9]*\)$/\1/p' "$ROOT/socket-path" | tail -1)
  fi
  printf '%s' "$found"
}
existing_port=$(cluster_port)
if [ -n "$existing_port" ]; then
  if [ -n "${BLOODMATCH_DB_PORT:-}" ] && [ "$BLOODMATCH_DB_PORT" != "$existing_port" ]; then
    die "BLOODMATCH_DB_PORT=$BLOODMATCH_DB_PORT, but the cluster in $DATA uses port $existing_port (fixed when it was created); nothing done: unset BLOODMATCH_DB_PORT, or set it to $existing_port, or point BLOODMATCH_PGDATA_ROOT at the cluster you mean" 2
  fi
  PORT=$existing_port
else
  PORT=${BLOODMATCH_DB_PORT:-$DEFAULT_PORT}
fi
case "$PORT" in
  ''|*[!0-9]*) die "BLOODMATCH_DB_PORT must be a port number (1-65535), not '$PORT'" 2 ;;
esac
{ [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ]; } || die "BLOODMATCH_DB_PORT must be a port number (1-65535), not '$PORT'" 2

owner=$(id -un)
run_pg() {  # run a server binary as the unprivileged cluster owner (initdb refuses root)
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_user() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

ensure_binaries() {
  if [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
    say info "PostgreSQL 15 server binaries missing at $PGBIN: installing postgresql-15 with apt-get"
    [ "$(id -u)" = 0 ] || die "PostgreSQL 15 is not installed and this is not root: run 'apt-get install postgresql-15' first"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq postgresql-15 postgresql-client-15 >&2 \
      || die "apt-get could not install postgresql-15"
  fi
}

running() { [ -f "$DATA/postmaster.pid" ] && run_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

port_in_use() {  # true when something other than our cluster listens on the port
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

init_cluster() {
  if [ -e "$DATA" ] && [ ! -f "$MARK" ]; then
    die "$DATA exists but was not created by this script; refusing to touch it (move it away yourself)"
  fi
  if [ -f "$DATA/PG_VERSION" ]; then
    v=$(cat "$DATA/PG_VERSION")
    [ "$v" = 15 ] || die "$DATA holds a PostgreSQL $v cluster, not 15; refusing to start or change it (dump and move it away yourself)"
    return 0
  fi
  # The port is fixed from here on: refuse a busy one before creating anything.
  if port_in_use; then
    die "port $PORT on 127.0.0.1 is in use by another program; set BLOODMATCH_DB_PORT to a free port (nothing was created)" 3
  fi
  say info "creating the private cluster in $DATA (port $PORT, data checksums on)"
  mkdir -p "$ROOT" "$SOCK"
  touch "$MARK"
  local u; u=$(pg_user)
  chown "$u" "$ROOT" "$SOCK"; chmod 700 "$ROOT"; chmod 755 "$SOCK"
  mkdir -p "$DATA"; chown "$u" "$DATA"; chmod 700 "$DATA"
  run_pg "$PGBIN/initdb" -D "$DATA" -U postgres --data-checksums -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >"$ROOT/initdb.log" 2>&1 \
    || die "initdb failed; see $ROOT/initdb.log"
  cat >>"$DATA/postgresql.conf" <<CONF
# BloodMatch embedded default
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
timezone = 'UTC'
log_timezone = 'UTC'
shared_buffers = 512MB
work_mem = 32MB
maintenance_work_mem = 512MB
max_connections = 200
idle_in_transaction_session_timeout = '60s'
lock_timeout = '30s'
wal_level = replica
max_wal_size = 4GB
checkpoint_timeout = 15min
jit = off
CONF
  # Peer logins on the socket: the OS user that created the cluster (and postgres) may log in as
  # the superuser or any BloodMatch role; nobody else may.
  {
    echo "bm postgres postgres"
    echo "bm $owner postgres"
    for r in "${ROLES[@]}"; do echo "bm $owner $r"; echo "bm postgres $r"; done
  } >>"$DATA/pg_ident.conf"
  cat >"$DATA/pg_hba.conf" <<HBA
$OPERATOR_HBA
local   all   all                 peer map=bm
host    all   all   127.0.0.1/32  scram-sha-256
HBA
}

# Named operators and jobs (`bloodmatch operator add`) log in with their own password, also on the
# socket: the OS account running a command says nothing about which person is acting.
OPERATOR_HBA='local   all   +bloodmatch_operator   scram-sha-256'
ensure_operator_hba() {
  grep -qF -- "+bloodmatch_operator" "$DATA/pg_hba.conf" && return 0
  { echo "$OPERATOR_HBA"; cat "$DATA/pg_hba.conf"; } >"$DATA/pg_hba.conf.new"
  chown --reference="$DATA/pg_hba.conf" "$DATA/pg_hba.conf.new"; chmod 600 "$DATA/pg_hba.conf.new"
  mv "$DATA/pg_hba.conf.new" "$DATA/pg_hba.conf"
  say info "operators now log in with their passwords on the socket too (pg_hba.conf)"
  return 1
}

create_roles() {
  local creds="$ROOT/credentials"
  if [ ! -f "$creds" ]; then
    umask 077
    : >"$creds"
    for r in "${ROLES[@]}"; do echo "$r=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >>"$creds"; done
    umask 022
  fi
  local sql="" r pw
  for r in "${ROLES[@]}"; do
    pw=$(grep "^$r=" "$creds" | cut -d= -f2-)
    sql+="DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$r') THEN CREATE ROLE $r LOGIN PASSWORD '$pw'; END IF; END\$\$;"
  done
  # The owner creates operator logins (`bloodmatch operator add`); the groups they join come from
  # migration 0009. The +group line in pg_hba.conf needs the group to exist before it matches.
  sql+="ALTER ROLE bloodmatch_owner CREATEROLE;"
  sql+="DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bloodmatch_operator') THEN CREATE ROLE bloodmatch_operator NOLOGIN; END IF; END\$\$;"
  run_pg psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres -c "$sql" >/dev/null
  if ! ensure_operator_hba; then
    run_pg psql -X -q -h "$SOCK" -p "$PORT" -U postgres -d postgres -c "SELECT pg_reload_conf()" >/dev/null
  fi
  if ! run_pg psql -X -qAt -h "$SOCK" -p "$PORT" -U postgres -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    run_pg psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres \
      -c "CREATE DATABASE $DB OWNER bloodmatch_owner ENCODING 'UTF8' TEMPLATE template0" >/dev/null
    run_pg psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d "$DB" \
      -c "REVOKE ALL ON DATABASE $DB FROM PUBLIC; GRANT CONNECT ON DATABASE $DB TO bloodmatch_app, bloodmatch_import; REVOKE CREATE ON SCHEMA public FROM PUBLIC;" >/dev/null
  fi
}

start() {
  ensure_binaries
  init_cluster
  if running; then
    say info "the private cluster is already running (port $PORT, socket $SOCK)"
  else
    if [ -f "$DATA/postmaster.pid" ]; then
      pid=$(head -1 "$DATA/postmaster.pid")
      if ! kill -0 "$pid" 2>/dev/null || ! grep -q postgres "/proc/$pid/comm" 2>/dev/null; then
        say warning "removing stale postmaster.pid (pid $pid is not a running postgres)"
        rm -f "$DATA/postmaster.pid"
      fi
    fi
    if port_in_use; then
      die "port $PORT on 127.0.0.1 is in use by another program; this cluster's port was fixed when it was created (port = $PORT in $DATA/postgresql.conf): stop that program, or change the port in that file" 3
    fi
    mkdir -p "$SOCK"; chown "$(pg_user)" "$SOCK"
    run_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null \
      || die "PostgreSQL did not start; last log lines: $(tail -3 "$LOG" | tr '\n"' ' _')"
    say info "the private cluster is running (port $PORT, socket $SOCK)"
  fi
  create_roles
  echo "$SOCK/.s.PGSQL.$PORT" >"$ROOT/socket-path"
}

case "${1:-}" in
  start) start ;;
  stop)
    if [ -f "$DATA/PG_VERSION" ] && running; then
      run_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
      say info "the private cluster stopped"
    else
      say info "the private cluster is not running"
    fi ;;
  status)
    if [ -f "$DATA/PG_VERSION" ] && running; then echo "running: port $PORT socket $SOCK data $DATA"
    else echo "not running (port $PORT, data: $DATA)"; exit 3; fi ;;
  env)
    echo "export BLOODMATCH_DB_SOCKET='$SOCK/.s.PGSQL.$PORT'"
    echo "export BLOODMATCH_DB_NAME='$DB'" ;;
  psql) shift; exec psql -X -h "$SOCK" -p "$PORT" -U bloodmatch_owner -d "$DB" "$@" ;;
  *) echo "usage: $0 start|stop|status|env|psql" >&2; exit 2 ;;
esac
