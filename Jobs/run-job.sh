#!/usr/bin/env bash
# Wrapper for every scheduled job: one run at a time per job (flock), JSON log lines on stderr,
# and the command's exit code passed through so the scheduler can tell the failures apart:
#   0 ok · 1 unexpected failure · 2 usage · 3 rows rejected or snapshot refused ·
#   4 feed unreachable · 5 database unavailable · 6 busy (another run holds the lock; nothing done) ·
#   7 audit chain does not verify
#
#   Jobs/run-job.sh JOB_NAME bloodmatch ARGS…
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
job=${1:?job name}; shift
mkdir -p "$here/var/locks" "$here/var/log"
log() { printf '{"ts":"%s","level":"%s","logger":"job.%s","msg":"%s"%s}\n' "$(date -u +%FT%T.%3NZ)" "$1" "$job" "$2" "${3:-}" >&2; }
exec 9>"$here/var/locks/$job.lock"
if ! flock -n 9; then
  log warning "another run of $job is still running; this run did nothing" ',"exit_code":6'
  exit 6
fi
cd "$here"
bin="$here/.build/release/bloodmatch"; [ -x "$bin" ] || bin="$here/.build/debug/bloodmatch"
[ "${1:-}" = bloodmatch ] && shift
started=$(date +%s%N)
"$bin" "$@"
rc=$?
ms=$(( ($(date +%s%N) - started) / 1000000 ))
case $rc in
  0) log info "$job finished" ",\"exit_code\":0,\"duration_ms\":$ms" ;;
  3) log error "$job finished with rejected rows or refused snapshots: see Jobs/RUNBOOK.md#$job" ",\"exit_code\":3,\"duration_ms\":$ms" ;;
  4) log error "$job could not reach a feed: see Jobs/RUNBOOK.md#$job" ",\"exit_code\":4,\"duration_ms\":$ms" ;;
  5) log critical "$job found the database unavailable: see Jobs/RUNBOOK.md#database-unavailable" ",\"exit_code\":5,\"duration_ms\":$ms" ;;
  7) log critical "$job found the audit chain broken: see Jobs/RUNBOOK.md#audit-checkpoint" ",\"exit_code\":7,\"duration_ms\":$ms" ;;
  *) log error "$job failed" ",\"exit_code\":$rc,\"duration_ms\":$ms" ;;
esac
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
