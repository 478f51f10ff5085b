#!/usr/bin/env bash
# Check: the monitoring works during the outage it watches. `bloodmatch serve` on a throwaway
# database; the database is then closed to the service (connections refused, open ones ended),
# so hospitals' requests fail safe and access records can no longer be written. Throughout:
# - /health and /metrics answer 200 on every request (a probe or a scrape is not a hospital's data
#   access); /ready answers 503 "unable to verify"
# - /metrics exposes `bloodmatch_database_up 0` within one collection interval (15 s) plus its
#   deadline, every metric with a `# HELP` line
# - the alert expression of BloodMatchDatabaseDown, taken from Jobs/alerts/bloodmatch.rules.yml,
#   selects the series exactly as scraped (promtool test rules on the scraped sample)
# - after the database comes back, /metrics shows it up and hospitals are answered again
# Bounded: about 40 s. Prints one JSON line; exits 1 on failure. Stops only the server it started.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
source Jobs/lib/scratch-db.bash
server=""
on_cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; }
scratch_db_check check_monitor monitoring-outage
export BLOODMATCH_LOG_LEVEL=error
command -v promtool >/dev/null || { echo "promtool missing: run Jobs/setup.sh" >&2; exit 1; }
started=$(date +%s)

"$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
scratch_operator check supervisor >/dev/null || bad operator "could not add a supervisor"
"$bm" sites import Data/sites.csv >/dev/null 2>&1
"$bm" generate --seed 5 --sites-file Data/sites.csv --units 1000 --out "$work/gen" >/dev/null 2>&1
"$bm" import "$work"/gen/snapshots/*.csv >/dev/null 2>&1
key=$("$bm" hospital key create H0001 --label monitoring --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
port=$(( 18500 + RANDOM % 100 )); while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$(( 18500 + RANDOM % 100 )); done
"$bm" serve --port "$port" --rate-limit 100 --rate-burst 100 2>"$work/serve.log" &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 150); do curl -sf "$base/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "$base/ready" >/dev/null && ok ready || bad ready "$(tail -2 "$work/serve.log")"
metric() { curl -s -m 3 "$base/metrics" | awk -v m="$1" '$1 == m {print $2 + 0; exit}'; }
[ "$(metric bloodmatch_database_up)" = 1 ] && ok database_up_before || bad database_up_before "'$(metric bloodmatch_database_up)'"

# The outage: the service's database refuses connections and its open ones are ended.
psql_pg -d postgres -c "ALTER DATABASE $db ALLOW_CONNECTIONS false" >/dev/null
psql_pg -d postgres -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '$db'" >/dev/null
outage_started=$(date +%s.%N)
avail=$(curl -s -m 10 -o "$work/down.json" -w '%{http_code}' -H "Authorization: Bearer $key" "$base/v1/availability?component=RBC&abo=O&rhd=NEG")
grep -q '"unable_to_verify"' "$work/down.json" && [ "$avail" = 503 ] && ok hospital_request_fails_safe \
  || bad hospital_request_fails_safe "$avail $(head -c 200 "$work/down.json")"
probes=0; probe_failures=0; down_after=""
for _ in $(seq 1 60); do
  for path in /health /metrics; do
    code=$(curl -s -m 3 -o "$work/probe.out" -w '%{http_code}' "$base$path")
    probes=$((probes + 1)); [ "$code" = 200 ] || { probe_failures=$((probe_failures + 1)); echo "$path $code $(head -c 200 "$work/probe.out")" >>"$work/probe-failures"; }
    [ "$path" = /metrics ] && [ "$code" = 200 ] && cp "$work/probe.out" "$work/metrics.txt"
  done
  # Hospitals keep asking: their requests are refused while nothing can be recorded.
  curl -s -m 10 -o /dev/null -H "Authorization: Bearer $key" "$base/v1/availability?component=RBC&abo=O&rhd=NEG"
  if awk '$1 == "bloodmatch_database_up" && $2 == 0 {f=1} END {exit !f}' "$work/metrics.txt" 2>/dev/null; then
    down_after=$(python3 -c "print(round($(date +%s.%N) - $outage_started, 1))"); break
  fi
  sleep 0.5
done
[ "$probe_failures" = 0 ] && ok "health_and_metrics_answered_${probes}_of_${probes}" \
  || bad health_and_metrics_answered "$probe_failures of $probes failed: $(head -3 "$work/probe-failures" | tr '\n' ';')"
[ -n "$down_after" ] && ok "database_up_0_after_${down_after}s" || bad database_up_0 "not exposed within the outage"
ready=$(curl -s -m 10 -o "$work/ready.json" -w '%{http_code}' "$base/ready")
{ [ "$ready" = 503 ] && grep -q '"unable_to_verify"' "$work/ready.json"; } && ok ready_503_unable_to_verify || bad ready_during_outage "$ready $(head -c 200 "$work/ready.json")"
no_help=$(python3 - "$work/metrics.txt" <<'EOF'
import sys
lines = open(sys.argv[1]).read().splitlines()
typed = [l.split()[2] for l in lines if l.startswith("# TYPE ")]
helped = {l.split()[2] for l in lines if l.startswith("# HELP ") and len(l.split()) > 3}
print(" ".join(n for n in typed if n not in helped))
EOF
)
[ -z "$no_help" ] && ok every_metric_has_help || bad every_metric_has_help "no # HELP: $no_help"

# The alert's own expression, on the series exactly as scraped during the outage.
value=$(awk '$1 == "bloodmatch_database_up" {print $2; exit}' "$work/metrics.txt")
expr=$(python3 -c '
import sys, yaml
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        if r.get("alert") == "BloodMatchDatabaseDown": print(r["expr"])' Jobs/alerts/bloodmatch.rules.yml)
cat >"$work/outage.test.yml" <<EOF
rule_files: ['$root/Jobs/alerts/bloodmatch.rules.yml']
evaluation_interval: 15s
tests:
- interval: 15s
  input_series:
  - series: 'bloodmatch_database_up{instance="serve"}'
    values: '${value:-1}x8'
  promql_expr_test:
  - expr: '$expr'
    eval_time: 2m
    exp_samples:
    - labels: 'bloodmatch_database_up{instance="serve"}'
      value: 0
EOF
(cd "$work" && promtool test rules outage.test.yml >"$work/promtool.out" 2>&1) && [ -n "$expr" ] && ok "alert_expression_selects_scraped_series" \
  || bad alert_expression "expr '$expr' on value '$value': $(tail -3 "$work/promtool.out" | tr '\n' ' ')"

# Back: the database answers again; so do hospitals, and the gauge says so.
psql_pg -d postgres -c "ALTER DATABASE $db ALLOW_CONNECTIONS true" >/dev/null
back=""
for _ in $(seq 1 60); do
  code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "$base/v1/availability?component=RBC&abo=O&rhd=NEG")
  [ "$code" = 200 ] && [ "$(metric bloodmatch_database_up)" = 1 ] && { back=yes; break; }
  sleep 0.5
done
[ -n "$back" ] && ok recovered || bad recovered "hospital $code, database_up $(metric bloodmatch_database_up)"

printf '{"check":"monitoring-outage","results":{%s},"seconds":%d,"pass":%s}\n' "$(IFS=,; echo "${results[*]}")" \
  $(( $(date +%s) - started )) "$([ "$fail" = 0 ] && echo true || echo false)"
exit "$fail"
