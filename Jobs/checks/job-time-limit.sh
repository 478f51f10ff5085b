#!/usr/bin/env bash
# Check: Jobs/run-job.sh ends a run that overruns its time limit, says so, and frees its lock.
#
# Runs a copy of the wrapper in a throwaway folder whose `bloodmatch` is a stand-in script (no
# build, no database): a run that sleeps 60 s under a 2 s limit must end by SIGTERM within the
# limit plus a little (exit 124, a log line naming the job and the limit, exit code 124 in the
# job's textfile metrics, the child process it started ended too), and the next run must take the
# lock and succeed; a run that ignores SIGTERM must be killed after the grace (exit 124); a per-job
# limit (BLOODMATCH_JOB_TIME_LIMIT_<JOB>) must win over BLOODMATCH_JOB_TIME_LIMIT; a run within
# its limit still holds the lock (a second run exits 6) and exits 0; a malformed limit is refused
# (exit 2); SIGTERM sent to the wrapper ends its run and frees the lock; every job in Jobs/crontab
# has a limit of its own there. Every wrapper call is bounded with `timeout`. Prints one JSON line;
# exits 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
tmp=$(mktemp -d /tmp/bm-job-limit.XXXXXX)
alive() {  # the process in pid file $1 runs (a zombie, not yet reaped by init, does not)
  local pid state
  pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] || return 1
  state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
cleanup() {  # nothing the stand-in started may outlive the check (by pid, and only its sleeps)
  local f
  for f in "$tmp"/*.pid; do
    if alive "$f" && grep -q '^sleep' "/proc/$(cat "$f")/cmdline" 2>/dev/null; then kill -KILL "$(cat "$f")"; fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/Jobs" "$tmp/.build/debug"
cp Jobs/run-job.sh "$tmp/Jobs/"
cat >"$tmp/.build/debug/bloodmatch" <<'STANDIN'
#!/usr/bin/env bash
# Stand-in for the bloodmatch binary:
#   sleep S PIDFILE      sleeps S seconds in a child process whose pid goes to PIDFILE
#   stubborn S PIDFILE   the same, ignoring SIGTERM (the child inherits that)
#   ok                   exits 0 at once
case "$1" in
  sleep) sleep "$2" & echo $! >"$3"; wait ;;
  stubborn) trap '' TERM; sleep "$2" & echo $! >"$3"; while ! wait; do :; done ;;
  ok) exit 0 ;;
  *) exit 2 ;;
esac
STANDIN
chmod 755 "$tmp/.build/debug/bloodmatch"
wrapper="$tmp/Jobs/run-job.sh"
results=()
figures=()
fail=0
ok() { results+=("\"$1\":\"ok\""); }
bad() { results+=("\"$1\":\"FAILED: $2\""); fail=1; echo "job-time-limit $1: $2" >&2; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
out="" rc=0 took=0
run() {  # runs the wrapper (bounded), env assignments first; sets out (its stderr), rc, took (ms)
  local t0; t0=$(now_ms)
  # stderr to a file, not a pipe: a process left behind holding it must not stall the check
  env -u BLOODMATCH_JOB_TIME_LIMIT -u BLOODMATCH_JOB_KILL_GRACE "$@" >/dev/null 2>"$tmp/stderr"; rc=$?
  out=$(cat "$tmp/stderr")
  took=$(( $(now_ms) - t0 ))
}
lock_free() { flock -n "$tmp/var/locks/$1.lock" true; }
secs() { awk "BEGIN {printf \"%.2f\", $1 / 1000}"; }

# 1. A run that sleeps 60 s under a 2 s limit: stopped by SIGTERM at about 2 s.
run BLOODMATCH_JOB_TIME_LIMIT=2 BLOODMATCH_JOB_KILL_GRACE=2 timeout -k 5 15 "$wrapper" slow bloodmatch sleep 60 "$tmp/slow.pid"
figures+=("\"overrun_s\":$(secs "$took")")
if [ "$rc" = 124 ] && [ "$took" -ge 2000 ] && [ "$took" -lt 4500 ]; then ok overrun_stopped_in_time
else bad overrun_stopped_in_time "exit $rc after $(secs "$took") s (want 124 after 2-4.5 s)"; fi
if printf '%s' "$out" | grep '"logger":"job.slow"' | grep 'slow exceeded its time limit of 2 s' | grep -q '"exit_code":124,"time_limit_s":2'; then
  ok overrun_logged
else bad overrun_logged "no log line naming the job and its 2 s limit with exit_code 124: $(printf '%s' "$out" | tail -2 | tr -d '"\\')"; fi
grep -qx 'bloodmatch_job_last_exit_code{job_name="slow"} 124' "$tmp/var/metrics/job_slow.prom" 2>/dev/null \
  && ok overrun_metrics || bad overrun_metrics "job_slow.prom does not record exit code 124"
alive "$tmp/slow.pid" && bad overrun_child_ended "the run's child process still runs" || ok overrun_child_ended
lock_free slow && ok overrun_lock_released || bad overrun_lock_released "var/locks/slow.lock is still held"
run timeout -k 5 15 "$wrapper" slow bloodmatch ok
[ "$rc" = 0 ] && ok next_run_takes_lock || bad next_run_takes_lock "the next run exited $rc: $(printf '%s' "$out" | tail -1 | tr -d '"\\')"

# 2. A run that ignores SIGTERM: SIGKILL after the 2 s grace, so about 4 s.
run BLOODMATCH_JOB_TIME_LIMIT=2 BLOODMATCH_JOB_KILL_GRACE=2 timeout -k 5 15 "$wrapper" stubborn bloodmatch stubborn 60 "$tmp/stubborn.pid"
figures+=("\"ignores_term_s\":$(secs "$took")")
if [ "$rc" = 124 ] && [ "$took" -ge 4000 ] && [ "$took" -lt 6500 ] && printf '%s' "$out" | grep -q 'stubborn exceeded its time limit of 2 s.*killed with SIGKILL'; then
  ok ignores_term_killed
else bad ignores_term_killed "exit $rc after $(secs "$took") s (want 124 after 4-6.5 s, logged as killed)"; fi
alive "$tmp/stubborn.pid" && bad ignores_term_child_ended "the run's child process still runs" || ok ignores_term_child_ended
run timeout -k 5 15 "$wrapper" stubborn bloodmatch ok
[ "$rc" = 0 ] && ok ignores_term_next_run || bad ignores_term_next_run "the next run exited $rc"

# 3. A per-job limit wins over the general one.
run BLOODMATCH_JOB_TIME_LIMIT=300 BLOODMATCH_JOB_TIME_LIMIT_SLOW_2=1 BLOODMATCH_JOB_KILL_GRACE=2 timeout -k 5 15 "$wrapper" slow-2 bloodmatch sleep 60 "$tmp/slow2.pid"
if [ "$rc" = 124 ] && [ "$took" -lt 3000 ] && printf '%s' "$out" | grep -q 'time limit of 1 s (BLOODMATCH_JOB_TIME_LIMIT_SLOW_2)'; then
  ok per_job_limit
else bad per_job_limit "exit $rc after $(secs "$took") s (want 124 within 3 s naming BLOODMATCH_JOB_TIME_LIMIT_SLOW_2)"; fi

# 4. Within its limit a run holds the lock (a second run does nothing, exit 6) and exits 0.
(env BLOODMATCH_JOB_TIME_LIMIT=20 timeout -k 5 30 "$wrapper" steady bloodmatch sleep 2 "$tmp/steady.pid" >/dev/null 2>&1) &
first=$!
sleep 0.7
run BLOODMATCH_JOB_TIME_LIMIT=20 timeout -k 5 15 "$wrapper" steady bloodmatch ok
[ "$rc" = 6 ] && ok lock_held_while_running || bad lock_held_while_running "a second run exited $rc, not 6"
wait "$first"; first_rc=$?
[ "$first_rc" = 0 ] && ok within_limit_exit_0 || bad within_limit_exit_0 "the run within its limit exited $first_rc"

# 5. A malformed limit: refused before anything runs.
run BLOODMATCH_JOB_TIME_LIMIT=ten timeout -k 5 15 "$wrapper" slow bloodmatch ok
if [ "$rc" = 2 ] && printf '%s' "$out" | grep -q "BLOODMATCH_JOB_TIME_LIMIT must be a whole number of seconds"; then ok bad_limit_refused
else bad bad_limit_refused "exit $rc"; fi

# 6. SIGTERM to the wrapper (cron or a person stopping it) reaches the run; the lock is freed.
env BLOODMATCH_JOB_TIME_LIMIT=60 "$wrapper" stopped bloodmatch sleep 60 "$tmp/stopped.pid" >/dev/null 2>&1 &
wpid=$!  # env execs the wrapper: the same process
for _ in $(seq 50); do [ -s "$tmp/stopped.pid" ] && break; sleep 0.1; done
t0=$(now_ms)
kill -TERM "$wpid"
for _ in $(seq 50); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.1; done
took=$(( $(now_ms) - t0 ))
if kill -0 "$wpid" 2>/dev/null; then
  bad wrapper_sigterm_ends_run "the wrapper still runs 5 s after SIGTERM"; kill -KILL "$wpid" 2>/dev/null
elif alive "$tmp/stopped.pid"; then bad wrapper_sigterm_ends_run "the wrapper ended but left its run going"
elif ! lock_free stopped; then bad wrapper_sigterm_ends_run "var/locks/stopped.lock is still held"
else ok wrapper_sigterm_ends_run; fi
wait "$wpid" 2>/dev/null

# 7. Every job in Jobs/crontab has a limit of its own there.
missing=""
for j in $(grep -o 'run-job\.sh [a-z0-9-]*' Jobs/crontab | cut -d' ' -f2 | sort -u); do
  v="BLOODMATCH_JOB_TIME_LIMIT_$(printf '%s' "$j" | tr 'a-z' 'A-Z' | tr -c 'A-Z0-9' '_')"
  grep -qE "^$v=[1-9][0-9]*$" Jobs/crontab || missing="$missing $j"
done
[ -z "$missing" ] && ok crontab_limits || bad crontab_limits "no limit in Jobs/crontab for:$missing"

pass=$([ $fail = 0 ] && echo true || echo false)
echo "{\"check\":\"job-time-limit\",$(IFS=,; echo "${results[*]}"),$(IFS=,; echo "${figures[*]}"),\"pass\":$pass}"
exit $fail
