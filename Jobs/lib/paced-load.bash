# Sourced (after Jobs/lib/scratch-db.bash) by the checks that put paced load on `bloodmatch serve`
# (api-isolation.sh, write-stall.sh). Gives:
#   load MODE ARGS…        Jobs/checks/api_isolation.py (paced requests, latency from the scheduled start), bounded to 60 s
#   attack MODE ARGS…      the same, at lower CPU priority (nice 10): on a shared 2-core machine the
#                          attacking client's own CPU would otherwise delay the victim's client, which
#                          is not the server's isolation under test; the server still gets every request
#   field FILE a.b         one value of a JSON file ("" when absent)
#   sample_stock UNITS     migrate, a supervisor, the sample sites and UNITS generated units loaded, $work/index.bmidx built
#   hospital_key SITE      a new API key for SITE
#   serve_on_free_port BASE ARGS…   `serve` on a free port from BASE (sets $port and $server; index $work/index.bmidx), ready
load() { timeout 60 python3 Jobs/checks/api_isolation.py "$@"; }
attack() { nice -n 10 timeout 60 python3 Jobs/checks/api_isolation.py "$@"; }
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d
for k in sys.argv[2].split("."): v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)' "$1" "$2" 2>/dev/null; }
sample_stock() {
  "$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
  scratch_operator check supervisor >/dev/null || bad operator "could not add a supervisor"
  "$bm" sites import Data/sites.csv >/dev/null 2>&1
  "$bm" generate --seed 3 --sites-file Data/sites.csv --units "$1" --out "$work/gen" >/dev/null 2>&1
  "$bm" import "$work"/gen/snapshots/*.csv >/dev/null 2>&1
  "$bm" index build --out "$work/index.bmidx" >/dev/null 2>&1
}
hospital_key() { "$bm" hospital key create "$1" --label paced-load --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
serve_on_free_port() {
  local base=$1; shift
  port=$(( base + RANDOM % 100 )); while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$(( base + RANDOM % 100 )); done
  "$bm" serve --port "$port" --index "$work/index.bmidx" "$@" 2>"$work/serve.log" &
  server=$!
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -sf "http://127.0.0.1:$port/ready" >/dev/null && ok ready || bad ready "$(tail -2 "$work/serve.log")"
}
