#!/usr/bin/env bash
# The high-availability topology, locally (opt-in; the embedded single node of Jobs/db.sh stays the
# default). Everything on 127.0.0.1, ports 55400–55499, data and pid files under .ha/ (git-ignored):
#
#   etcd  e1 e2 e3        client 55400 55402 55404, peer 55401 55403 55405 (Patroni's store,
#                         3 members so it survives one; Patroni talks to its v2 API, see below)
#   PostgreSQL 15 node1 node2 node3 on 55410 55411 55412, each run by Patroni (REST 55420 55421
#                         55422): one primary, two streaming replicas, synchronous_mode and
#                         synchronous_mode_strict (a commit is acknowledged only once a standby has it)
#   HAProxy               55430 → the current primary (Patroni `GET /primary`, on-marked-down
#                         shutdown-sessions); 55431 → replicas lagging < 1 MB (`GET /replica?lag=`);
#                         55440 → the bloodmatch serve instances (HTTP); 55450 stats page
#   bloodmatch serve      two instances on 55441 and 55442 (plain HTTP on loopback)
#
#   Jobs/ha.sh start      install what is missing (apt-get), start whatever is not running, bootstrap
#                         the BloodMatch roles and database through HAProxy, migrate; idempotent
#   Jobs/ha.sh stop       stop everything this script started, each process by its pid
#   Jobs/ha.sh status     pids, `patronictl list`, HAProxy's view of its servers
#   Jobs/ha.sh env        the exports for the CLI and jobs (for `eval "$(Jobs/ha.sh env)"`)
#   Jobs/ha.sh patronictl ARGS…       patronictl on this cluster (e.g. `list`, `switchover`)
#   Jobs/ha.sh start-node N | start-serve N | stop-serve N | restart-haproxy | leader
#                         one piece (the drills use these)
#
# A serve instance started with HA_SERVE_FAKETIME set (e.g. "+60s") runs under libfaketime.
# The server processes run as the `postgres` OS user when this is root (initdb refuses root).
# env: BLOODMATCH_BIN (default .build/release/bloodmatch), HA_ROOT (default .ha).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${HA_ROOT:-$here/.ha}
RUN="$ROOT/run"
CREDS="$ROOT/credentials"
PGBIN=/usr/lib/postgresql/15/bin
bin=${BLOODMATCH_BIN:-.build/release/bloodmatch}
case "$bin" in /*) BM=$bin ;; *) BM=$here/$bin ;; esac
SCOPE=bloodmatch
DB=bloodmatch
ETCD_CLIENT=(55400 55402 55404); ETCD_PEER=(55401 55403 55405)
PG_PORT=(55410 55411 55412); REST_PORT=(55420 55421 55422)
HA_PRIMARY=55430 HA_REPLICA=55431 HA_HTTP=55440 HA_STATS=55450
SERVE_PORT=(55441 55442)
REPLICA_MAX_LAG_BYTES=1048576
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1

say() { printf '{"ts":"%s","level":"%s","logger":"ha.sh","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$1" "$2" >&2; }
die() { say error "$1"; exit "${2:-1}"; }

svc_user() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }
as_svc() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

ensure_packages() {
  local need=()
  [ -x "$PGBIN/initdb" ] || need+=(postgresql-15)
  command -v psql >/dev/null || need+=(postgresql-client-15)
  command -v patroni >/dev/null || need+=(patroni)
  command -v etcd >/dev/null || need+=(etcd-server)
  command -v etcdctl >/dev/null || need+=(etcd-client)
  command -v haproxy >/dev/null || need+=(haproxy)
  [ -e "$FAKETIME_LIB" ] || need+=(libfaketime)
  command -v faketime >/dev/null || need+=(faketime)
  ((${#need[@]})) || return 0
  [ "$(id -u)" = 0 ] || die "missing packages: ${need[*]}; run as root or install them"
  say info "installing ${need[*]} with apt-get (services are not enabled: this script runs them)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "${need[@]}" >&2; then
    apt-get update -qq >&2 && apt-get install -y -qq "${need[@]}" >&2 || die "apt-get could not install ${need[*]}"
  fi
}

# --- pid tracking -----------------------------------------------------------------------------
pidfile() { echo "$RUN/$1.pid"; }
# alive NAME WORD: the pid in NAME's pid file runs and its command line contains WORD.
alive() {
  local f; f=$(pidfile "$1"); [ -s "$f" ] || return 1
  local p; p=$(cat "$f")
  kill -0 "$p" 2>/dev/null && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "$2"
}
# spawn NAME LOG AS_SVC CMD…: start CMD in its own session; it writes its own pid (after exec,
# the pid is the server's), so stop can signal exactly it.
spawn() {
  local name=$1 log=$2 svc=$3; shift 3
  local f; f=$(pidfile "$name"); rm -f "$f"
  local exe; exe=$(command -v "$1") || die "$1 is not installed"; shift; set -- "$exe" "$@"
  if [ "$svc" = svc ] && [ "$(id -u)" = 0 ]; then
    # setpriv execs (runuser would stay as a parent, and stop itself when a drill stops its child).
    setsid setpriv --reuid postgres --regid postgres --init-groups --reset-env \
      sh -c 'echo $$ >"$0"; exec "$@"' "$f" "$@" >>"$log" 2>&1 </dev/null &
  else
    setsid sh -c 'echo $$ >"$0"; exec "$@"' "$f" "$@" >>"$log" 2>&1 </dev/null &
  fi
  for _ in $(seq 50); do [ -s "$f" ] && return 0; sleep 0.1; done
  die "$name did not start; see $log"
}
# stop_pid NAME WORD [SECONDS]: SIGTERM the pid, wait, then SIGKILL; only if it is still ours.
stop_pid() {
  local name=$1 word=$2 wait_s=${3:-30} f p
  f=$(pidfile "$name")
  if ! alive "$name" "$word"; then rm -f "$f"; return 0; fi
  p=$(cat "$f")
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq $((wait_s * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then say warning "$name (pid $p) ignored SIGTERM for ${wait_s}s: SIGKILL"; kill -KILL "$p" 2>/dev/null || true; fi
  rm -f "$f"
  say info "$name stopped (pid $p)"
}

# --- credentials ------------------------------------------------------------------------------
ROLES=(postgres replicator rewinder bloodmatch_owner bloodmatch_app bloodmatch_import bloodmatch_ops)
ensure_credentials() {
  [ -f "$CREDS" ] && return 0
  (umask 077; : >"$CREDS"; for r in "${ROLES[@]}"; do echo "$r=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >>"$CREDS"; done)
}
pw() { sed -n "s/^$1=//p" "$CREDS"; }

# --- layout -----------------------------------------------------------------------------------
prepare() {
  mkdir -p "$ROOT" "$RUN"
  [ -f "$ROOT/created-by-bloodmatch" ] || touch "$ROOT/created-by-bloodmatch"
  local u; u=$(svc_user)
  chown "$u" "$ROOT" "$RUN"; chmod 711 "$ROOT"; chmod 755 "$RUN"
  ensure_credentials
  for i in 1 2 3; do mkdir -p "$ROOT/etcd$i" "$ROOT/node$i/sock"; chown "$u" "$ROOT/etcd$i" "$ROOT/node$i" "$ROOT/node$i/sock"; chmod 700 "$ROOT/etcd$i" "$ROOT/node$i"; done
  write_patroni_configs
  write_haproxy_config
}

etcd_hosts() { local h=() p; for p in "${ETCD_CLIENT[@]}"; do h+=("127.0.0.1:$p"); done; (IFS=,; echo "${h[*]}"); }

write_patroni_configs() {
  local i n
  for i in 1 2 3; do
    n=$((i - 1))
    cat >"$ROOT/node$i/patroni.yml" <<YML
scope: $SCOPE
namespace: /bloodmatch-ha/
name: node$i
log:
  level: INFO
restapi:
  listen: 127.0.0.1:${REST_PORT[$n]}
  connect_address: 127.0.0.1:${REST_PORT[$n]}
# etcd's v2 API on purpose: Debian's Patroni 3.0.2 etcd3 client re-creates an expired leader key
# without checking who holds it now (upstream fix patroni#2689, in 3.0.3), so a primary frozen past
# the TTL took the key back from the promoted replica on SIGCONT (drill 2 caught it: split brain,
# acknowledged decisions lost). Its v2 client updates the key by compare-and-swap (prevValue).
etcd:
  hosts: $(etcd_hosts)
bootstrap:
  dcs:
    # A dead primary's leader key expires after ttl; a replica takes over within ttl + loop_wait.
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    # An acknowledged commit is on the primary and on the synchronous standby; with strict mode the
    # primary stops acknowledging writes rather than run without a synchronous standby.
    synchronous_mode: true
    synchronous_mode_strict: true
    synchronous_node_count: 1
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_connections: 120
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
        synchronous_commit: "on"
        shared_buffers: 128MB
        timezone: UTC
        log_timezone: UTC
        idle_in_transaction_session_timeout: 60s
        lock_timeout: 30s
        jit: "off"
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
    - data-checksums
postgresql:
  listen: 127.0.0.1:${PG_PORT[$n]}
  connect_address: 127.0.0.1:${PG_PORT[$n]}
  data_dir: $ROOT/node$i/data
  bin_dir: $PGBIN
  pgpass: $ROOT/node$i/pgpass
  authentication:
    superuser: {username: postgres, password: "$(pw postgres)"}
    replication: {username: replicator, password: "$(pw replicator)"}
    rewind: {username: rewinder, password: "$(pw rewinder)"}
  parameters:
    unix_socket_directories: $ROOT/node$i/sock
  pg_hba:
    - local all postgres peer
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
tags:
  nofailover: false
  noloadbalance: false
YML
    chown "$(svc_user)" "$ROOT/node$i/patroni.yml"; chmod 600 "$ROOT/node$i/patroni.yml"
  done
}

write_haproxy_config() {
  local i
  {
    cat <<CFG
global
  maxconn 1000
  stats socket $RUN/haproxy.sock mode 600 level admin
defaults
  log stdout format raw local0 info
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  timeout check 1s
# PostgreSQL: only the node whose Patroni answers 200 on /primary gets connections; when it is
# marked down every session to it is cut, so no client keeps writing to a demoted or frozen node.
listen pg_primary
  mode tcp
  bind 127.0.0.1:$HA_PRIMARY
  option httpchk GET /primary
  http-check expect status 200
  default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2 on-marked-down shutdown-sessions
CFG
    for i in 0 1 2; do echo "  server node$((i + 1)) 127.0.0.1:${PG_PORT[$i]} maxconn 100 check port ${REST_PORT[$i]}"; done
    cat <<CFG
# Read-only lookups: replicas streaming with less than $REPLICA_MAX_LAG_BYTES bytes of lag.
listen pg_replicas
  mode tcp
  bind 127.0.0.1:$HA_REPLICA
  balance roundrobin
  option httpchk GET /replica?lag=$REPLICA_MAX_LAG_BYTES
  http-check expect status 200
  default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2 on-marked-down shutdown-sessions
CFG
    for i in 0 1 2; do echo "  server node$((i + 1)) 127.0.0.1:${PG_PORT[$i]} maxconn 100 check port ${REST_PORT[$i]}"; done
    cat <<CFG
# The hospital API. Normally only instances answering 200 on /ready (database reachable, index
# current, access records writable) get requests. When none is ready (the database is taking over),
# requests go to every instance that still answers at all (/health 200 or 503), so the caller gets
# the service's own 503 "unable to verify", never HAProxy's bare 503. A connection refused is
# retried on another instance (nothing was sent, so it is safe for any method).
frontend bloodmatch_http
  mode http
  bind 127.0.0.1:$HA_HTTP
  timeout client 30s
  use_backend bm_ready if { nbsrv(bm_ready) gt 0 }
  default_backend bm_answering
backend bm_ready
  mode http
  balance roundrobin
  option httpchk GET /ready
  http-check expect status 200
  timeout check 2s
  retries 2
  option redispatch 1
  retry-on conn-failure
  timeout server 30s
  default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2
CFG
    for i in 0 1; do echo "  server bm$((i + 1)) 127.0.0.1:${SERVE_PORT[$i]} check"; done
    cat <<CFG
backend bm_answering
  mode http
  balance roundrobin
  option httpchk GET /health
  http-check expect rstatus ^(200|503)\$
  retries 2
  option redispatch 1
  retry-on conn-failure
  timeout server 30s
  default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2
CFG
    for i in 0 1; do echo "  server bm$((i + 1)) 127.0.0.1:${SERVE_PORT[$i]} check"; done
    cat <<CFG
listen stats
  mode http
  bind 127.0.0.1:$HA_STATS
  stats enable
  stats uri /
  stats refresh 2s
CFG
  } >"$ROOT/haproxy.cfg"
}

# --- pieces -----------------------------------------------------------------------------------
etcd_cluster() { local c=() i; for i in 0 1 2; do c+=("e$((i + 1))=http://127.0.0.1:${ETCD_PEER[$i]}"); done; (IFS=,; echo "${c[*]}"); }
start_etcd() {
  local i n state
  for i in 1 2 3; do
    n=$((i - 1))
    alive "etcd$i" "etcd" && continue
    state=new; [ -d "$ROOT/etcd$i/member" ] && state=existing
    spawn "etcd$i" "$ROOT/etcd$i.log" svc etcd --name "e$i" --data-dir "$ROOT/etcd$i" \
      --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT[$n]}" --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT[$n]}" \
      --listen-peer-urls "http://127.0.0.1:${ETCD_PEER[$n]}" --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER[$n]}" \
      --initial-cluster "$(etcd_cluster)" --initial-cluster-state "$state" --initial-cluster-token bloodmatch-ha \
      --heartbeat-interval 100 --election-timeout 1000 --enable-v2=true
  done
  for _ in $(seq 100); do
    ETCDCTL_API=3 etcdctl --endpoints "$(etcd_hosts)" --dial-timeout 1s endpoint health >/dev/null 2>&1 && { say info "etcd: 3 members healthy"; return 0; }
    sleep 0.3
  done
  die "etcd did not become healthy; see $ROOT/etcd*.log"
}

start_node() {
  local i=$1
  if alive "patroni$i" "patroni"; then return 0; fi
  # A postmaster left behind by a killed Patroni: stop it by its pid so Patroni starts from a clean state.
  local pm="$ROOT/node$i/data/postmaster.pid"
  if [ -s "$pm" ]; then
    local p; p=$(head -1 "$pm")
    if kill -0 "$p" 2>/dev/null && grep -q postgres "/proc/$p/comm" 2>/dev/null; then
      say warning "node$i: postmaster pid $p runs without its Patroni; stopping it (fast)"
      as_svc "$PGBIN/pg_ctl" -D "$ROOT/node$i/data" -m fast -w -t 30 stop >/dev/null 2>&1 || kill -KILL "$p" 2>/dev/null || true
    fi
  fi
  spawn "patroni$i" "$ROOT/node$i/patroni.log" svc patroni "$ROOT/node$i/patroni.yml"
}
# rest N PATH: the HTTP status of node N's Patroni endpoint.
rest() { curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:${REST_PORT[$(($1 - 1))]}$2" || true; }
leader_node() { local i; for i in 1 2 3; do [ "$(rest "$i" /primary)" = 200 ] && { echo "$i"; return 0; }; done; return 1; }

wait_cluster() {
  local i ok
  for _ in $(seq 240); do
    if leader_node >/dev/null; then
      ok=0; for i in 1 2 3; do [ "$(rest "$i" /replica)" = 200 ] && ok=$((ok + 1)); done
      [ $ok -ge 2 ] && [ "$(sync_count)" -ge 1 ] && { say info "PostgreSQL: primary node$(leader_node), 2 replicas streaming, 1 synchronous"; return 0; }
    fi
    sleep 0.5
  done
  die "the Patroni cluster did not reach 1 primary + 2 streaming replicas in 120 s; see $ROOT/node*/patroni.log"
}
sync_count() { local i c=0; for i in 1 2 3; do [ "$(rest "$i" /sync)" = 200 ] && c=$((c + 1)); done; echo $c; }

start_haproxy() {
  alive haproxy haproxy && return 0
  haproxy -c -q -f "$ROOT/haproxy.cfg" || die "haproxy refuses $ROOT/haproxy.cfg"
  local p
  for p in $HA_PRIMARY $HA_REPLICA $HA_HTTP $HA_STATS; do  # a haproxy that is still exiting
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || break; sleep 0.1; done
  done
  spawn haproxy "$ROOT/haproxy.log" svc haproxy -db -f "$ROOT/haproxy.cfg"
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$HA_STATS") 2>/dev/null && return 0; sleep 0.1; done
  die "haproxy does not listen; see $ROOT/haproxy.log"
}

psql_primary() { PGPASSWORD=$(pw postgres) PGCONNECT_TIMEOUT=5 psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$HA_PRIMARY" -U postgres "$@"; }
url_for() { echo "postgres://$1:$(pw "$1")@127.0.0.1:${2:-$HA_PRIMARY}/$DB?sslmode=disable"; }

bootstrap_database() {
  local ok=0
  for _ in $(seq 60); do psql_primary -d postgres -c "SELECT 1" >/dev/null 2>&1 && { ok=1; break; }; sleep 0.5; done
  [ $ok = 1 ] || die "no primary reachable through HAProxy on 127.0.0.1:$HA_PRIMARY"
  local sql="" r
  for r in bloodmatch_owner bloodmatch_app bloodmatch_import bloodmatch_ops; do
    sql+="DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$r') THEN CREATE ROLE $r LOGIN PASSWORD '$(pw "$r")'; END IF; END\$\$;"
  done
  # One login for operators and jobs (the CLI switches to the role each command needs, SET ROLE).
  sql+="GRANT bloodmatch_owner, bloodmatch_app, bloodmatch_import TO bloodmatch_ops;"
  # The owner creates named operator logins (`bloodmatch operator add`, migration 0009's groups).
  sql+="ALTER ROLE bloodmatch_owner CREATEROLE;"
  psql_primary -d postgres -c "$sql" >/dev/null
  if [ "$(psql_primary -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" = 0 ]; then
    psql_primary -d postgres -c "CREATE DATABASE $DB OWNER bloodmatch_owner ENCODING 'UTF8' TEMPLATE template0" >/dev/null
    psql_primary -d "$DB" -c "REVOKE ALL ON DATABASE $DB FROM PUBLIC; GRANT CONNECT ON DATABASE $DB TO bloodmatch_app, bloodmatch_import, bloodmatch_ops; REVOKE CREATE ON SCHEMA public FROM PUBLIC;" >/dev/null
    say info "created database $DB and the BloodMatch roles"
  fi
  [ -x "$BM" ] || die "no bloodmatch binary at $BM (set BLOODMATCH_BIN or build: swift build -c release --product bloodmatch)"
  (cd "$here" && DATABASE_URL=$(url_for bloodmatch_owner) BLOODMATCH_LOG_LEVEL=error "$BM" migrate >/dev/null) || die "bloodmatch migrate failed through HAProxy"
  say info "schema migrated through HAProxy"
}

start_serve() {
  local i=$1 n=$(($1 - 1))
  alive "serve$i" "serve" && return 0
  [ -x "$BM" ] || die "no bloodmatch binary at $BM"
  mkdir -p "$ROOT/serve$i"
  local pre=()
  if [ -n "${HA_SERVE_FAKETIME:-}" ]; then
    # The faketime wrapper, not a bare LD_PRELOAD: preloaded alone, libfaketime adds FAKETIME_SHARED
    # to the environment in its constructor, and the Swift binary then starts without its arguments
    # (seen here with libfaketime 0.9.10). The wrapper sets it before exec, and forks: the pid file
    # is moved to the child, the serve process itself.
    command -v faketime >/dev/null || die "faketime is not installed (apt-get install faketime)"
    pre=(faketime -f "$HA_SERVE_FAKETIME")
    export FAKETIME_DONT_FAKE_MONOTONIC=1
    say info "serve$i runs under libfaketime, FAKETIME=$HA_SERVE_FAKETIME"
  fi
  (cd "$here" && export DATABASE_URL=$(url_for bloodmatch_app) BLOODMATCH_LOG_LEVEL=${BLOODMATCH_LOG_LEVEL:-warning} &&
    spawn "serve$i" "$ROOT/serve$i.log" self "${pre[@]}" "$BM" serve --host 127.0.0.1 --port "${SERVE_PORT[$n]}" \
      --index "$ROOT/serve$i/inventory.bmidx" --rate-limit 1000 --rate-burst 2000)
  if ((${#pre[@]})); then
    local w child=""; w=$(cat "$(pidfile "serve$i")")
    for _ in $(seq 50); do child=$(ps -o pid= --ppid "$w" | tr -d ' ' | head -1); [ -n "$child" ] && break; sleep 0.1; done
    [ -n "$child" ] || die "serve$i: no child under the faketime wrapper (pid $w)"
    echo "$child" >"$(pidfile "serve$i")"
  fi
  for _ in $(seq 150); do
    [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:${SERVE_PORT[$n]}/health" || true)" = 200 ] && return 0
    alive "serve$i" serve || die "serve$i exited; see $ROOT/serve$i.log"
    sleep 0.2
  done
  die "serve$i does not answer /health; see $ROOT/serve$i.log"
}

start() {
  ensure_packages
  prepare
  start_etcd
  for i in 1 2 3; do start_node "$i"; done
  wait_cluster
  start_haproxy
  bootstrap_database
  for i in 1 2; do start_serve "$i"; done
  say info "up: PostgreSQL primary via 127.0.0.1:$HA_PRIMARY, replicas via :$HA_REPLICA, API via http://127.0.0.1:$HA_HTTP, stats http://127.0.0.1:$HA_STATS/"
}

stop() {
  [ -d "$RUN" ] || { say info "nothing to stop"; return 0; }
  local i l
  for i in 1 2; do stop_pid "serve$i" serve 20; done
  stop_pid haproxy haproxy 10
  # Replicas first, so the primary never fails over while the cluster is being stopped.
  l=$(leader_node || true)
  for i in 1 2 3; do [ "$i" = "$l" ] || stop_pid "patroni$i" patroni 60; done
  [ -n "$l" ] && stop_pid "patroni$l" patroni 60
  for i in 1 2 3; do stop_pid "patroni$i" patroni 60; done
  # A postmaster that outlived its Patroni (e.g. after a drill's kill -9 of Patroni alone).
  for i in 1 2 3; do
    local pm="$ROOT/node$i/data/postmaster.pid" p
    [ -s "$pm" ] || continue; p=$(head -1 "$pm")
    if kill -0 "$p" 2>/dev/null && grep -q postgres "/proc/$p/comm" 2>/dev/null; then
      as_svc "$PGBIN/pg_ctl" -D "$ROOT/node$i/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
  done
  for i in 1 2 3; do stop_pid "etcd$i" etcd 20; done
  say info "stopped"
}

status() {
  local i name word rc=0
  for name in etcd1:etcd etcd2:etcd etcd3:etcd patroni1:patroni patroni2:patroni patroni3:patroni haproxy:haproxy serve1:serve serve2:serve; do
    word=${name#*:}; name=${name%%:*}
    if alive "$name" "$word"; then echo "$name running pid $(cat "$(pidfile "$name")")"; else echo "$name not running"; rc=3; fi
  done
  [ -f "$ROOT/node1/patroni.yml" ] && patronictl -c "$ROOT/node1/patroni.yml" list 2>/dev/null || true
  if [ -S "$RUN/haproxy.sock" ]; then
    echo "show stat" | python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"show stat\n"); d=b""
while True:
    c=s.recv(65536)
    if not c: break
    d+=c
for l in d.decode().splitlines()[1:]:
    f=l.split(",")
    if len(f)>17 and f[1] not in ("FRONTEND","BACKEND"): print("haproxy %s/%s %s" % (f[0], f[1], f[17]))' "$RUN/haproxy.sock" 2>/dev/null || true
  fi
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env)
    [ -f "$CREDS" ] || die "no $CREDS: run Jobs/ha.sh start first"
    echo "export DATABASE_URL='$(url_for bloodmatch_ops)'"
    echo "export BLOODMATCH_HA_REPLICA_URL='$(url_for bloodmatch_app "$HA_REPLICA")'"
    echo "export BLOODMATCH_HA_API='http://127.0.0.1:$HA_HTTP'" ;;
  patronictl) shift; exec patronictl -c "$ROOT/node1/patroni.yml" "$@" ;;
  start-node) prepare; start_node "${2:?node 1-3}" ;;
  start-serve) start_serve "${2:?instance 1-2}" ;;
  stop-serve) stop_pid "serve${2:?instance 1-2}" serve 20 ;;
  restart-haproxy) prepare; stop_pid haproxy haproxy 10; start_haproxy ;;
  leader) leader_node ;;
  *) echo "usage: $0 start|stop|status|env|patronictl ARGS|start-node N|start-serve N|stop-serve N|leader" >&2; exit 2 ;;
esac
