#!/usr/bin/env bash
# Runs every drill of the high-availability topology, one after the other, and prints each one's
# JSON line; exits 1 if any fails. Starts the topology if it is not running (Jobs/ha.sh start) and
# leaves it running (stop it with Jobs/ha.sh stop). About 5 minutes. Not part of Jobs/test.sh.
#
#   Jobs/ha/drills.sh          env: BLOODMATCH_BIN (default .build/release/bloodmatch)
cd "$(dirname "$0")/../.."
mkdir -p "${HA_ROOT:-.ha}"
rc=0
for drill in "primary.sh kill" "primary.sh freeze" "kill-serve.sh" "clock-skew.sh"; do
  # shellcheck disable=SC2086
  timeout 600 bash Jobs/ha/$drill 2>>"${HA_ROOT:-.ha}/drills.log" || rc=1
done
exit $rc
