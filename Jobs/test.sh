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
swift test --skip-build --parallel --num-workers 2 2>&1 | tee .run/swift-test.log
for check in Jobs/checks/*.sh; do
  [ -e "$check" ] || continue
  echo "== $check"
  bash "$check"
done
