# Shared by the HA drills (sourced): brings the topology up, loads drill data, makes a hospital key,
# and gives the helpers the drills use. Kills only processes whose pid files Jobs/ha.sh wrote.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
export BLOODMATCH_BIN=${BLOODMATCH_BIN:-.build/release/bloodmatch}
case "$BLOODMATCH_BIN" in /*) bm=$BLOODMATCH_BIN ;; *) bm=$root/$BLOODMATCH_BIN ;; esac
[ -x "$bm" ] || { echo "no bloodmatch binary at $bm (set BLOODMATCH_BIN or: swift build -c release --product bloodmatch)" >&2; exit 1; }
HA=${HA_ROOT:-$root/.ha}
PG_PORT=(55410 55411 55412)
REST_PORT=(55420 55421 55422)
SERVE_PORT=(55441 55442)
API=http://127.0.0.1:55440
export BLOODMATCH_LOG_LEVEL=error
run_id="$(basename "$0" .sh)-$(date -u +%H%M%S)-$$"
work=$(mktemp -d "/tmp/bm-ha-drill.XXXXXX")

Jobs/ha.sh start 2>"$work/ha-start.log" || { cat "$work/ha-start.log" >&2; echo "Jobs/ha.sh start failed" >&2; exit 1; }
eval "$(Jobs/ha.sh env 2>/dev/null)"
pgpw=$(sed -n 's/^postgres=//p' "$HA/credentials")
# psql as the superuser: through HAProxy to the primary, or straight to node N (psql_node N …).
psql_primary() { PGPASSWORD=$pgpw PGCONNECT_TIMEOUT=5 psql -X -q -At -h 127.0.0.1 -p 55430 -U postgres "$@"; }
psql_node() { local n=$1; shift; PGPASSWORD=$pgpw PGCONNECT_TIMEOUT=3 psql -X -q -At -h 127.0.0.1 -p "${PG_PORT[$((n - 1))]}" -U postgres "$@"; }
rest() { curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:${REST_PORT[$(($1 - 1))]}$2" 2>/dev/null || true; }
now_ns() { date +%s%N; }

# Drill data: one centre and one hospital (Sydney), a fresh generated snapshot, and a key.
seed_data() {
  printf 'site_id,name,kind,latitude,longitude,region,address\nDRILL01,Drill Centre,distribution_centre,-33.895678,151.184272,AU-02,"Alexandria NSW 2015, Australia"\nH9001,Drill Hospital,hospital,-33.8688,151.2093,AU-02,"Sydney NSW 2000, Australia"\n' >"$work/sites.csv"
  "$bm" sites import "$work/sites.csv" >/dev/null || { echo "sites import failed" >&2; exit 1; }
  "$bm" generate --seed $(( $$ % 100000 )) --sites-file "$work/sites.csv" --units "${DRILL_UNITS:-6000}" \
    --as-of "$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ)" --out "$work/gen" >/dev/null
  "$bm" import "$work"/gen/snapshots/*.csv >/dev/null || { echo "import failed" >&2; exit 1; }
  # Keys are a supervisor's: a login of this drill's own.
  "$bm" operator add "ha_sup_$$" --role supervisor --password-file "$work/ha_sup.password" >/dev/null \
    || { echo "operator add failed" >&2; exit 1; }
  token=$(BLOODMATCH_OPERATOR="ha_sup_$$" BLOODMATCH_OPERATOR_PASSWORD_FILE="$work/ha_sup.password" \
    "$bm" hospital key create H9001 --label "$run_id" --expires-in-days 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  [ -n "$token" ] || { echo "no hospital key" >&2; exit 1; }
  psql_primary -d postgres -c "CREATE TABLE IF NOT EXISTS ha_probe (note text, at timestamptz DEFAULT now())" >/dev/null
  # Both instances must see the new snapshot before the load starts (each checks once a second).
  local i ok
  for _ in $(seq 60); do
    ok=0
    for i in 0 1; do
      curl -s -m 3 -H "Authorization: Bearer $token" "http://127.0.0.1:${SERVE_PORT[$i]}/v1/availability?component=RBC&abo=O&rhd=NEG" 2>/dev/null \
        | grep -q '"centres_with_stock":[1-9]' && ok=$((ok + 1))
    done
    [ $ok = 2 ] && return 0
    sleep 0.5
  done
  echo "the serve instances do not show the drill stock" >&2; exit 1
}

# The node pids: Patroni and its postmaster with every child.
node_pids() {
  local n=$1 pm kids
  pm=$(head -1 "$HA/node$n/data/postmaster.pid" 2>/dev/null)
  kids=$(ps -o pid= --ppid "$pm" 2>/dev/null | tr '\n' ' ')
  echo "$(cat "$HA/run/patroni$n.pid") $pm $kids"
}

# probe_writes N SECONDS: every 0.5 s, try to commit a row straight on node N (not through
# HAProxy), until it runs as a streaming replica or SECONDS pass. Prints "acked attempts replica_at_s".
probe_writes() {
  local n=$1 limit=$2 acked=0 tries=0 start; start=$(date +%s)
  while [ $(( $(date +%s) - start )) -lt "$limit" ]; do
    tries=$((tries + 1))
    if timeout 4 env PGPASSWORD="$pgpw" PGCONNECT_TIMEOUT=2 psql -X -q -At -h 127.0.0.1 -p "${PG_PORT[$((n - 1))]}" -U postgres -d postgres \
        -c "INSERT INTO ha_probe (note) VALUES ('$run_id-node$n-$tries')" >/dev/null 2>&1; then
      acked=$((acked + 1))
    fi
    if [ "$(rest "$n" /replica)" = 200 ] && [ "$(psql_node "$n" -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ]; then
      echo "$acked $tries $(( $(date +%s) - start ))"; return 0
    fi
    sleep 0.5
  done
  echo "$acked $tries -1"
}

cleanup_common() { psql_primary -d postgres -c "DROP ROLE IF EXISTS ha_sup_$$" >/dev/null 2>&1; rm -rf "$work"; }
