#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine (idempotent; quiet when all is there).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .run
need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v psql >/dev/null || need+=(postgresql-client-15)
command -v python3 >/dev/null || need+=(python3)
# The exact-optimum check of the batch optimiser solves MILPs with HiGHS through scipy (≥ 1.9).
python3 -c 'from scipy.optimize import milp' 2>/dev/null || need+=(python3-scipy python3-numpy)
if ((${#need[@]})); then
  [ "$(id -u)" = 0 ] || { echo "missing packages: ${need[*]}; run as root or install them" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
command -v swift >/dev/null || { echo "swift is not on PATH (expected Swift 6.3 at /opt/swift)" >&2; exit 1; }
