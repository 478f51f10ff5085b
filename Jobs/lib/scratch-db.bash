# Sourced (not run) by checks and benches that work on a throwaway database in the private
# PostgreSQL cluster. After `scratch_db NAME`:
#   bm       the newest built bloodmatch (debug when newer than release), unless already set
#   sockdir, pgport   the cluster's socket directory and port; psql_pg runs psql as postgres there
#   db       bm_NAME_<pid>, created and owned by bloodmatch_owner; BLOODMATCH_DB_NAME points at it
#   work     a temporary directory
#   ok KEY / bad KEY WHY   collect results (`results`, `fail`)
#   scratch_operator NAME ROLE   act as a new operator login from then on (see below)
#   snapshot NAME CENTRE AS_OF ROWS…   write $work/NAME.csv and its control record
# On exit: the script's own `on_cleanup` (stop the processes it started, by pid), then the
# database is dropped and `work` removed.
# `scratch_db_check NAME CHECK` does the same for a check: with DATABASE_URL set (no private
# cluster to make databases in) it prints CHECK as skipped and exits 0.

scratch_db() {
  local name=$1
  if [ -z "${bm:-}" ]; then
    bm=.build/release/bloodmatch
    { [ -x .build/debug/bloodmatch ] && { [ ! -x "$bm" ] || [ .build/debug/bloodmatch -nt "$bm" ]; }; } && bm=.build/debug/bloodmatch
  fi
  Jobs/db.sh start >/dev/null 2>&1
  eval "$(Jobs/db.sh env 2>/dev/null)"
  sockdir=$(dirname "$BLOODMATCH_DB_SOCKET"); pgport=${BLOODMATCH_DB_SOCKET##*.}
  db="bm_${name}_$$"
  work=$(mktemp -d "/tmp/bm-$name.XXXXXX")
  trap scratch_db_cleanup EXIT
  psql_pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner" >/dev/null
  export BLOODMATCH_DB_NAME=$db
  fail=0
  results=()
}

scratch_db_check() {
  if [ -n "${DATABASE_URL:-}" ]; then echo "{\"check\":\"$2\",\"skipped\":\"DATABASE_URL is set\",\"pass\":true}"; exit 0; fi
  scratch_db "$1"
}

# scratch_operator NAME ROLE: after `migrate`, creates the operator login NAME_<pid> in ROLE
# (dispatcher, supervisor or job) with its password in $work, and acts as it from then on
# (BLOODMATCH_OPERATOR); the login is dropped on exit. Prints the login name.
scratch_operators=()
scratch_operator() {
  local login="$1_$$"
  "$bm" operator add "$login" --role "$2" --password-file "$work/$login.password" >/dev/null || return 1
  scratch_operators+=("$login")
  export BLOODMATCH_OPERATOR=$login BLOODMATCH_OPERATOR_PASSWORD_FILE="$work/$login.password"
  echo "$login"
}

scratch_db_cleanup() {
  declare -F on_cleanup >/dev/null && on_cleanup
  psql_pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  local r
  for r in "${scratch_operators[@]}"; do psql_pg -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1; done
  [ -n "${KEEP_WORK:-}" ] && cp -r "$work" "$KEEP_WORK"
  rm -rf "$work"
}

psql_pg() { runuser -u postgres -- psql -X -qAt -h "$sockdir" -p "$pgport" "$@"; }
ok() { results+=("\"$1\":\"ok\""); }
# bad NAME MESSAGE: the message is escaped for JSON (it may quote a tool's output).
bad() {
  local m=${2//\\/\\\\}; m=${m//\"/\\\"}; m=${m//$'\n'/\\n}; m=${m//$'\t'/ }; m=${m//$'\r'/}
  results+=("\"$1\":\"FAILED: $m\""); fail=1
}

# snapshot NAME CENTRE AS_OF ROWS…: writes NAME.csv and its control record (row count, SHA-256).
snapshot() {
  local name=$1 centre=$2 asof=$3; shift 3
  { echo "din,product_code,component,abo,rhd,collected_at,expires_at,site_id,status,attributes"; printf '%s\n' "$@"; } >"$work/$name.csv"
  python3 - "$work/$name.csv" "$centre" "$asof" <<'PY'
import hashlib, json, sys
path, centre, asof = sys.argv[1:]
data = open(path, 'rb').read()
rows = data.count(b'\n') - 1
json.dump({"format": "bloodmatch-inventory/1", "centre": centre, "as_of": asof, "row_count": rows,
           "sha256": hashlib.sha256(data).hexdigest(), "empty_stock": rows == 0}, open(path[:-4] + ".ctl.json", "w"))
PY
}
