#!/usr/bin/env bash
# Per-request cost of tracing: `bloodmatch serve` of this tree against an anchor binary built
# without tracing (ANCHOR_BIN, e.g. the parent commit's build), same database, same requests, in
# the same run, alternating A/B ROUNDS times: wrk -t1 -c8 for SECONDS on GET /v1/availability
# with a `traceparent` header (the current tree continues it; the anchor ignores it). No OTLP
# collector: the configuration a deployment without one runs. Prints one JSON line with, for both,
# the server's CPU time per request (user + system, from /proc: the figure that tracing changes,
# and the one least disturbed by other load on the machine), requests per second and p99 latency.
#
#   ANCHOR_BIN=/path/to/old/bloodmatch Jobs/bench/trace-overhead.sh
#   env: BLOODMATCH_BIN (default .build/release/bloodmatch, else .build/debug), SECONDS_EACH (5), ROUNDS (3)
set -uo pipefail
cd "$(dirname "$0")/../.."
anchor=${ANCHOR_BIN:?set ANCHOR_BIN to a bloodmatch binary built without tracing}
bm=${BLOODMATCH_BIN:-.build/release/bloodmatch}; [ -x "$bm" ] || bm=.build/debug/bloodmatch
secs=${SECONDS_EACH:-5}; rounds=${ROUNDS:-3}
command -v wrk >/dev/null || { echo "wrk missing: run Jobs/setup.sh" >&2; exit 1; }
source Jobs/lib/scratch-db.bash
server=""
on_cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; }
scratch_db bench_trace
export BLOODMATCH_LOG_LEVEL=error
unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
"$bm" migrate >/dev/null 2>&1
scratch_operator bench supervisor >/dev/null
"$bm" sites import Data/sites.csv >/dev/null 2>&1
"$bm" generate --seed 5 --sites-file Data/sites.csv --units 5000 --out "$work/gen" >/dev/null 2>&1
"$bm" import "$work"/gen/snapshots/*.csv >/dev/null 2>&1
key=$("$bm" hospital key create H0001 --label bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

run() { # binary label round
  local port=$(( 18600 + RANDOM % 200 ))
  while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$(( 18600 + RANDOM % 200 )); done
  "$1" serve --port "$port" --rate-limit 1000000 --rate-burst 1000000 --max-concurrent 256 2>/dev/null &
  server=$!
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.2; done
  local q="http://127.0.0.1:$port/v1/availability?component=RBC&abo=O&rhd=NEG"
  wrk -t1 -c8 -d1s -H "Authorization: Bearer $key" "$q" >/dev/null 2>&1   # warm-up
  local before after
  before=$(awk '{print $14 + $15}' "/proc/$server/stat")
  wrk -t1 -c8 -d"${secs}s" --latency -H "Authorization: Bearer $key" \
    -H "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" "$q" >"$work/$2-$3.txt" 2>&1
  after=$(awk '{print $14 + $15}' "/proc/$server/stat")
  echo "cpu_ticks $((after - before)) $(getconf CLK_TCK)" >>"$work/$2-$3.txt"
  kill "$server"; wait "$server" 2>/dev/null; server=""
}
for r in $(seq 1 "$rounds"); do run "$anchor" anchor "$r"; run "$bm" traced "$r"; done
python3 - "$work" "$rounds" <<'PY'
import json, re, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def read(label):
    rps, p99, cpu = [], [], []
    for r in range(1, rounds + 1):
        text = open(f"{work}/{label}-{r}.txt").read()
        if "Non-2xx" in text: raise SystemExit(f"{label} round {r}: non-2xx responses")
        rps.append(float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)))
        m = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
        p99.append(float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)])
        requests = int(re.search(r"(\d+) requests in", text).group(1))
        ticks, hz = map(int, re.search(r"cpu_ticks (\d+) (\d+)", text).groups())
        cpu.append(round(ticks / hz * 1000 / max(requests, 1), 3))
    return rps, p99, cpu
a, t = read("anchor"), read("traced")
med = lambda xs: sorted(xs)[len(xs) // 2]
print(json.dumps({"bench": "trace-overhead", "rounds": rounds,
                  "anchor_cpu_ms_per_request": a[2], "traced_cpu_ms_per_request": t[2],
                  "median_cpu_ratio_traced_over_anchor": round(med(t[2]) / med(a[2]), 3),
                  "anchor_rps": a[0], "traced_rps": t[0], "anchor_p99_ms": a[1], "traced_p99_ms": t[1],
                  "median_rps_ratio_traced_over_anchor": round(med(t[0]) / med(a[0]), 3)}))
PY
