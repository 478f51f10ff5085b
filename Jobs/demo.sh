#!/usr/bin/env bash
# The main job on the embedded default: build, start the private PostgreSQL (unless DATABASE_URL
# names another server), migrate, import the sample sites and today's sample stock, build the
# spatial index, and answer a sample nearest-unit query, showing the recorded decision.
set -euo pipefail
cd "$(dirname "$0")/.."
Jobs/setup.sh
echo "== building (release)"
swift build -c release --product bloodmatch 2>&1 | grep -E "error|warning: unre|Compiling bloodmatch|Build complete" || true
bm=.build/release/bloodmatch
[ -x "$bm" ] || { echo "build failed" >&2; exit 1; }
export BLOODMATCH_LOG_LEVEL=${BLOODMATCH_LOG_LEVEL:-warning}
echo "== database"
Jobs/db.sh start
if [ -z "${DATABASE_URL:-}" ]; then eval "$(Jobs/db.sh env)"; fi
$bm migrate
echo "== sample data: sites at real places (Data/sites.csv) and today's stock"
$bm sites import Data/sites.csv
rm -rf var/sample
$bm generate --seed 2026 --sites-file Data/sites.csv --units 6000 --out var/sample
$bm import var/sample/snapshots/*.csv
echo "== spatial index"
$bm index build
# The sample query is asked by a named dispatcher login (its password in
# ~/.config/bloodmatch/operators/demo_dispatcher), as every person acting on the system is.
if [ -z "${DATABASE_URL:-}" ]; then
  pwfile="${HOME:-/root}/.config/bloodmatch/operators/demo_dispatcher"
  $bm operator list | grep -q "^demo_dispatcher	" || { rm -f "$pwfile"; $bm operator add demo_dispatcher --role dispatcher; }
  [ -f "$pwfile" ] && export BLOODMATCH_OPERATOR=demo_dispatcher
fi
if $bm help match >/dev/null 2>&1; then
  echo "== Wollongong Hospital (H0001) needs 2 irradiated platelets for an O RhD-negative woman of 34"
  $bm match --hospital H0001 --component PLT --abo O --rhd NEG --quantity 2 --require IRRADIATED \
    --sex female --age 34 --urgency urgent --request-id "demo-$(date +%s)"
fi
echo "== next: the dispatcher console (README, \"Dispatcher console\"): as the schema owner add a login,"
echo "   '$bm operator add NAME --role supervisor', run '$bm console' and open http://127.0.0.1:8444/console"
