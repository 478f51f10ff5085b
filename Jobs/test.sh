#!/usr/bin/env bash
# Runs every test: builds, starts the private PostgreSQL (or uses DATABASE_URL), runs the Swift test
# suites (unit and PostgreSQL integration tests; the latter fail, never skip, without a database),
# then the script-level checks in Jobs/checks/.
set -euo pipefail
cd "$(dirname "$0")/.."
Jobs/setup.sh
Jobs/db.sh start
if [ -z "${DATABASE_URL:-}" ]; then eval "$(Jobs/db.sh env)"; fi
export BLOODMATCH_TEST_DATABASE=1
swift build --build-tests
# A run that stops making progress is stopped after 15 min (a whole run takes 3-6 min): its test
# processes get SIGQUIT first, so the Swift runtime prints every thread's backtrace into the
# log, and the run fails (exit 124). A hang is a failure to fix, never retried.
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
run_swift_tests() {
  local log=$1 rc=0
  swift test --skip-build --parallel --num-workers 2 > >(tee "$log") 2>&1 &
  local driver=$! waited=0
  while kill -0 "$driver" 2>/dev/null; do
    sleep 5; waited=$((waited + 5))
    if [ "$waited" -ge "${SWIFT_TEST_TIMEOUT_S:-900}" ]; then
      echo "HUNG: swift test made no end after ${waited} s; backtraces follow" | tee -a "$log"
      local pids pid; pids=$(descendants "$driver")
      # Only the test process: the runner and tee must stay up to carry its backtraces to the log.
      for pid in $pids; do
        case "$(cat "/proc/$pid/cmdline" 2>/dev/null | tr '\0' ' ')" in *.xctest*) kill -QUIT "$pid" 2>/dev/null ;; esac
      done
      sleep 45
      for pid in $pids "$driver"; do kill -9 "$pid" 2>/dev/null; done
      wait "$driver" 2>/dev/null
      return 124
    fi
  done
  wait "$driver" || rc=$?
  return "$rc"
}
rc=0
run_swift_tests .run/swift-test.log || rc=$?
if [ "$rc" -eq 124 ]; then
  echo "== swift test hung: failed; thread backtraces are in .run/swift-test.log" >&2
  exit 124
elif [ "$rc" -ne 0 ]; then
  exit "$rc"
fi
for check in Jobs/checks/*.sh; do
  [ -e "$check" ] || continue
  echo "== $check"
  bash "$check"
done
