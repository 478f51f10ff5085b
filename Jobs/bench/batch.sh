#!/usr/bin/env bash
# Batch allocation benchmark: the national dataset of `bloodmatch generate` (500 sites, 1,000,000
# units, seed 42) in memory and 2,000 pending orders (about 5,000 units), planned by the optimiser;
# prints one JSON line with run time, peak memory, total cost and the greedy baseline's cost
# measured in the same run. Bar: run_s ≤ 10 on the 2-core development machine.
#   Jobs/bench/batch.sh [ORDERS]      (default 2000)
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product bloodmatch 2>&1 | grep -E "error|Build complete" || true
.build/release/bloodmatch batch bench --orders "${1:-2000}" --sites 500 --units 1000000 --seed 42
