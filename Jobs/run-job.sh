#!/usr/bin/env bash
# Wrapper for every scheduled job: one run at a time per job (flock), a time limit per run,
# JSON log lines on stderr, and the command's exit code passed through so the scheduler can tell
# the failures apart:
#   0 ok · 1 unexpected failure · 2 usage · 3 rows rejected or snapshot refused ·
#   4 feed unreachable · 5 database unavailable · 6 busy (another run holds the lock; nothing done) ·
#   7 audit chain does not verify · 124 the run exceeded its time limit and was stopped
#
#   Jobs/run-job.sh JOB_NAME bloodmatch ARGS…
#
# Time limit (seconds, a whole number ≥ 1): BLOODMATCH_JOB_TIME_LIMIT_<JOB> for one job (the job
# name upper-cased, any character other than A-Z and 0-9 made `_`: import-spool →
# BLOODMATCH_JOB_TIME_LIMIT_IMPORT_SPOOL), else BLOODMATCH_JOB_TIME_LIMIT, else 600. Jobs/crontab
# sets one per job, shorter than its schedule's interval. At the limit the run gets SIGTERM (it and
# every process it started: they share one process group), and SIGKILL
# BLOODMATCH_JOB_KILL_GRACE seconds later (default 10) if still running. The wrapper then logs
# which job overran which limit, records exit code 124, and exits 124; its lock goes with it, so
# the next run is not blocked. Whatever the run had not committed, the database rolls back.
# SIGINT, SIGTERM or SIGHUP sent to the wrapper are passed on to the run, which ends as it would.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
job=${1:?job name}; shift
mkdir -p "$here/var/locks" "$here/var/log"
log() { printf '{"ts":"%s","level":"%s","logger":"job.%s","msg":"%s"%s}\n' "$(date -u +%FT%T.%3NZ)" "$1" "$job" "$2" "${3:-}" >&2; }
limit_var="BLOODMATCH_JOB_TIME_LIMIT_$(printf '%s' "$job" | tr 'a-z' 'A-Z' | tr -c 'A-Z0-9' '_')"
if [ -n "${!limit_var:-}" ]; then limit=${!limit_var}; limit_from=$limit_var
else limit=${BLOODMATCH_JOB_TIME_LIMIT:-600}; limit_from=BLOODMATCH_JOB_TIME_LIMIT; fi
grace=${BLOODMATCH_JOB_KILL_GRACE:-10}
case "$limit" in ''|*[!0-9]*|0*) log error "$limit_from must be a whole number of seconds ≥ 1, not '$limit'; $job did not run" ',"exit_code":2'; exit 2 ;; esac
case "$grace" in ''|*[!0-9]*|0*) log error "BLOODMATCH_JOB_KILL_GRACE must be a whole number of seconds ≥ 1, not '$grace'; $job did not run" ',"exit_code":2'; exit 2 ;; esac
exec 9>"$here/var/locks/$job.lock"
if ! flock -n 9; then
  log warning "another run of $job is still running; this run did nothing" ',"exit_code":6'
  exit 6
fi
cd "$here"
bin="$here/.build/release/bloodmatch"; [ -x "$bin" ] || bin="$here/.build/debug/bloodmatch"
[ "${1:-}" = bloodmatch ] && shift
started=$(date +%s%N)
# timeout puts the run in a process group of its own and signals the whole group at the limit.
timeout -k "$grace" "$limit" "$bin" "$@" &
run_pid=$!
trap 'kill -TERM "$run_pid" 2>/dev/null' INT TERM HUP
rc=0; wait "$run_pid" || rc=$?
while kill -0 "$run_pid" 2>/dev/null; do rc=0; wait "$run_pid" || rc=$?; done  # a signal ended the wait
trap - INT TERM HUP
ms=$(( ($(date +%s%N) - started) / 1000000 ))
# timeout exits 124 when SIGTERM at the limit ended the run, 137 when SIGKILL had to follow.
how=""
if [ "$ms" -ge $(( limit * 1000 )) ]; then
  case $rc in
    124) how="stopped with SIGTERM" ;;
    137) how="killed with SIGKILL after a $grace s grace (it ignored SIGTERM)" ;;
  esac
fi
if [ -n "$how" ]; then
  rc=124
  log error "$job exceeded its time limit of $limit s ($limit_from) and was $how; work it had not committed was rolled back: see Jobs/RUNBOOK.md#job-time-limit" ",\"exit_code\":124,\"time_limit_s\":$limit,\"duration_ms\":$ms"
else case $rc in
  0) log info "$job finished" ",\"exit_code\":0,\"duration_ms\":$ms" ;;
  3) log error "$job finished with rejected rows or refused snapshots: see Jobs/RUNBOOK.md#$job" ",\"exit_code\":3,\"duration_ms\":$ms" ;;
  4) log error "$job could not reach a feed: see Jobs/RUNBOOK.md#$job" ",\"exit_code\":4,\"duration_ms\":$ms" ;;
  5) log critical "$job found the database unavailable: see Jobs/RUNBOOK.md#database-unavailable" ",\"exit_code\":5,\"duration_ms\":$ms" ;;
  7) log critical "$job found the audit chain broken: see Jobs/RUNBOOK.md#audit-checkpoint" ",\"exit_code\":7,\"duration_ms\":$ms" ;;
  *) log error "$job failed" ",\"exit_code\":$rc,\"duration_ms\":$ms" ;;
esac; fi
# Textfile metrics for the node exporter's textfile collector (and the BloodMatchJobFailing alert).
metrics="$here/var/metrics"; mkdir -p "$metrics"
now=$(date +%s)
last_ok=$now
if [ $rc -ne 0 ] && [ -f "$metrics/job_$job.prom" ]; then
  last_ok=$(awk '/^bloodmatch_job_last_success_timestamp_seconds/ {print $2}' "$metrics/job_$job.prom")
  [ -n "$last_ok" ] || last_ok=0
elif [ $rc -ne 0 ]; then
  last_ok=0
fi
cat >"$metrics/.job_$job.prom.tmp" <<PROM
# HELP bloodmatch_job_last_exit_code Exit code of the job's last run (see Jobs/RUNBOOK.md).
# TYPE bloodmatch_job_last_exit_code gauge
bloodmatch_job_last_exit_code{job_name="$job"} $rc
# HELP bloodmatch_job_last_run_timestamp_seconds When the job's last run ended.
# TYPE bloodmatch_job_last_run_timestamp_seconds gauge
bloodmatch_job_last_run_timestamp_seconds{job_name="$job"} $now
# HELP bloodmatch_job_last_success_timestamp_seconds When the job last ended with exit code 0.
# TYPE bloodmatch_job_last_success_timestamp_seconds gauge
bloodmatch_job_last_success_timestamp_seconds{job_name="$job"} $last_ok
# HELP bloodmatch_job_duration_seconds Duration of the job's last run.
# TYPE bloodmatch_job_duration_seconds gauge
bloodmatch_job_duration_seconds{job_name="$job"} $(awk "BEGIN {print $ms / 1000}")
PROM
mv "$metrics/.job_$job.prom.tmp" "$metrics/job_$job.prom"
exit $rc
