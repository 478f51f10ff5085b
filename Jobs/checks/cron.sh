#!/usr/bin/env bash
# Check: the job wrapper works under the real cron daemon, with cron's minimal environment.
#
# Puts a one-minute entry into /etc/cron.d/bloodmatch-check that runs
# `Jobs/run-job.sh import-check bloodmatch import --spool DIR` against a throwaway spool holding
# one generated snapshot and a throwaway database, starts cron if it is not running, and waits
# (at most 130 s) until the snapshot is in DIR/done/ and the job's log holds its JSON line with
# exit_code 0. Removes the entry, stops cron only if this script started it, drops the database.
# Needs root (cron.d and apt-get). Prints one JSON line; exits 1 on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=$(pwd)
started_at=$(date +%s)
say() { printf '{"ts":"%s","level":"info","logger":"check.cron","msg":"%s"}\n' "$(date -u +%FT%TZ)" "$1" >&2; }
result() {  # pass detail…
  printf '{"check":"cron","pass":%s,"cron_started_here":%s,"waited_s":%d,"moved_to_done":%d,"job_exit_code":%s,"job_log_line":%s,"detail":"%s"}\n' \
    "$1" "$cron_started" "$waited" "$moved" "${job_rc:-null}" "${job_line:-null}" "$2"
}
cron_started=false waited=0 moved=0 job_rc="" job_line=""

[ "$(id -u)" = 0 ] || { result false "needs root for /etc/cron.d"; exit 1; }
if [ -n "${DATABASE_URL:-}" ]; then
  echo '{"check":"cron","skipped":"DATABASE_URL is set; the check uses a throwaway database on the embedded cluster","pass":true}'
  exit 0
fi

# The cron daemon.
if ! command -v cron >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq cron >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq cron >/dev/null; }
fi
bm=.build/release/bloodmatch
{ [ -x .build/debug/bloodmatch ] && { [ ! -x "$bm" ] || [ .build/debug/bloodmatch -nt "$bm" ]; }; } && bm=.build/debug/bloodmatch
[ -x "$bm" ] || { result false "no bloodmatch binary; run swift build first"; exit 1; }
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env 2>/dev/null)"
sockdir=$(dirname "$BLOODMATCH_DB_SOCKET"); port=${BLOODMATCH_DB_SOCKET##*.}
db="bm_check_cron_$$"
work=$(mktemp -d /tmp/bm-check-cron.XXXXXX)
chmod 755 "$work"
cronfile=/etc/cron.d/bloodmatch-check
cron_pid=""
pg() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U postgres "$@"; }
cleanup() {
  rm -f "$cronfile"
  if [ -n "$cron_pid" ]; then kill "$cron_pid" 2>/dev/null || true; wait "$cron_pid" 2>/dev/null || true; fi
  pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# A throwaway database with one centre, and a spool holding one snapshot of it.
export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=warning
pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner TEMPLATE template0"
"$bm" migrate >/dev/null
printf 'site_id,name,kind,latitude,longitude,region,address\nCRON01,Cron Centre,distribution_centre,-33.895678,151.184272,AU-02,"Alexandria NSW 2015, Australia"\nH9002,Cron Hospital,hospital,-33.8688,151.2093,AU-02,"Sydney NSW 2000, Australia"\n' >"$work/sites.csv"
"$bm" sites import "$work/sites.csv" >/dev/null
"$bm" generate --seed 11 --sites-file "$work/sites.csv" --units 500 --as-of "$(date -u -d '-10 minutes' +%Y-%m-%dT%H:%M:%SZ)" --out "$work/gen" >/dev/null
mkdir -p "$work/spool"
name=$(basename "$(ls "$work"/gen/snapshots/*.csv)" .csv)
mv "$work/gen/snapshots/$name.csv" "$work/spool/"
mv "$work/gen/snapshots/$name.ctl.json" "$work/spool/"
log="$work/import-check.log"

# cron gives jobs a bare environment: everything the job needs is on the line.
cat >"$cronfile.tmp" <<CRON
SHELL=/bin/bash
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
* * * * * root cd $here && BLOODMATCH_DB_SOCKET=$BLOODMATCH_DB_SOCKET BLOODMATCH_DB_NAME=$db Jobs/run-job.sh import-check bloodmatch import --spool $work/spool >>$log 2>&1
CRON
chmod 644 "$cronfile.tmp"
mv "$cronfile.tmp" "$cronfile"

if ! pgrep -x cron >/dev/null; then
  cron -f -L 15 >"$work/cron.out" 2>&1 &
  cron_pid=$!
  cron_started=true
  sleep 1
  kill -0 "$cron_pid" 2>/dev/null || { result false "cron did not start: $(tr -d '"\n' <"$work/cron.out" | head -c 200)"; exit 1; }
else
  touch /etc/cron.d  # a running cron rereads cron.d when its time stamp changes
fi
say "waiting for cron to run the job (entry in $cronfile; at most 130 s)"

t0=$(date +%s)
while [ $(( $(date +%s) - t0 )) -lt 130 ]; do
  if [ -f "$work/spool/done/$name.csv" ] && [ -f "$work/spool/done/$name.ctl.json" ] && grep -q '"logger":"job.import-check".*"exit_code":0' "$log" 2>/dev/null; then
    break
  fi
  sleep 2
done
waited=$(( $(date +%s) - t0 ))
moved=$(ls "$work/spool/done" 2>/dev/null | wc -l)
line=$(grep '"logger":"job.import-check"' "$log" 2>/dev/null | tail -1 || true)
if [ -n "$line" ]; then
  job_line=$(printf '%s' "$line" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')
  job_rc=$(printf '%s' "$line" | sed -n 's/.*"exit_code":\([0-9]*\).*/\1/p')
fi
loaded=$(pg -d "$db" -c "SELECT count(*) FROM bm.import_runs WHERE outcome = 'loaded' AND centre = 'CRON01'")
if [ "$moved" -eq 2 ] && [ "${job_rc:-x}" = 0 ] && [ "$loaded" = 1 ]; then
  result true "the cron job imported $name (import_runs: 1 loaded) in ${waited}s"
else
  detail="done/ holds $moved files, job exit code ${job_rc:-none}, loaded runs $loaded"
  [ -s "$log" ] && detail="$detail; log: $(tail -c 300 "$log" | tr -d '"\n\\')"
  result false "$detail"
  exit 1
fi
