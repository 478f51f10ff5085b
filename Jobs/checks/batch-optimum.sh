#!/usr/bin/env bash
# The batch optimiser against an exact solver: generated small instances (`bloodmatch batch solve`)
# solved exactly as a MILP by HiGHS through scipy (Jobs/checks/batch_optimum.py), with the
# stewardship rules of Data/SOURCES.md §S30 as constraints; fails when an allocation is infeasible,
# breaks a stewardship rule, serves fewer units at any urgency than the optimum, costs more than 1 %
# above it, or states a lower bound above it or a proven optimum that is not one.
set -euo pipefail
cd "$(dirname "$0")/../.."
bm=${BLOODMATCH_BIN:-.build/debug/bloodmatch}
[ -x "$bm" ] || swift build --product bloodmatch
python3 Jobs/checks/batch_optimum.py --bloodmatch "$bm" --instances "${BATCH_OPTIMUM_INSTANCES:-70}" --cut-instances "${BATCH_OPTIMUM_CUT_INSTANCES:-30}"
