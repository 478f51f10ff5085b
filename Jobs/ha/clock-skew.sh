#!/usr/bin/env bash
# HA drill 6: clock skew on one service instance, with libfaketime (the `faketime` wrapper).
# serve2 is restarted with its clock SKEW_S (60 s) ahead: asked directly, its expiry-sensitive
# answers (availability, matches) must all be 503 "unable to verify" naming the clock (limit 30 s),
# and its /ready 503, while serve1 answers normally; through HAProxy the load must then get only
# real answers (HAProxy takes the skewed instance out on its /ready check). Then 5 s ahead, within
# the limit: it answers normally and reports the skew (warning level). serve2 is restarted without
# faketime at the end. Prints one JSON line; exit 1 on failure. About a minute.
#   env: BLOODMATCH_BIN, SKEW_S (60), LOAD_S (15)
source "$(dirname "$0")/common.sh"
SKEW_S=${SKEW_S:-60} LOAD_S=${LOAD_S:-15}
restore() { Jobs/ha.sh stop-serve 2 >/dev/null 2>&1; Jobs/ha.sh start-serve 2 >/dev/null 2>&1; cleanup_common; }
trap restore EXIT
seed_data
failures=()
# get PORT PATH [BODY KEY] -> "status code"
ask() {
  local port=$1 path=$2 body=${3:-} key=${4:-} out
  if [ -n "$body" ]; then
    out=$(curl -s -m 10 -w '\n%{http_code}' -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -H "Idempotency-Key: $key" -d "$body" "http://127.0.0.1:$port$path")
  else
    out=$(curl -s -m 10 -w '\n%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$port$path")
  fi
  local code; code=$(tail -1 <<<"$out")
  local err; err=$(head -n -1 <<<"$out" | python3 -c 'import json,sys
try: e=json.load(sys.stdin).get("error") or {}
except Exception: e={}
print((e.get("code") or "-") + ("|clock" if "clock" in (e.get("reason") or "") else ""))')
  echo "$code $err"
}
skew_metric() { curl -s -m 5 "http://127.0.0.1:$1/metrics" | awk '/^bloodmatch_clock_skew_seconds/ {print $2}'; }
match_body='{"component":"RBC","recipient":{"abo":"A","rhd":"POS","sex":"male","age":60},"quantity":1}'

# 1. Beyond the limit.
Jobs/ha.sh stop-serve 2 >/dev/null 2>&1
HA_SERVE_FAKETIME="+${SKEW_S}s" Jobs/ha.sh start-serve 2 2>>"$work/ha-start.log" || { echo "serve2 did not start under faketime" >&2; exit 1; }
sleep 1.5
skewed_ok=0; skewed_n=0; normal_ok=0; normal_n=0
for i in 1 2 3 4 5; do
  r=$(ask 55442 "/v1/availability?component=RBC&abo=O&rhd=NEG"); skewed_n=$((skewed_n + 1)); [ "$r" = "503 unable_to_verify|clock" ] && skewed_ok=$((skewed_ok + 1)) || echo "skewed availability: $r" >&2
  r=$(ask 55442 /v1/matches "$match_body" "$run_id-skew-$i"); skewed_n=$((skewed_n + 1)); [ "$r" = "503 unable_to_verify|clock" ] && skewed_ok=$((skewed_ok + 1)) || echo "skewed match: $r" >&2
  r=$(ask 55441 "/v1/availability?component=RBC&abo=O&rhd=NEG"); normal_n=$((normal_n + 1)); [ "${r%% *}" = 200 ] && normal_ok=$((normal_ok + 1)) || echo "normal availability: $r" >&2
  r=$(ask 55441 /v1/matches "$match_body" "$run_id-normal-$i"); normal_n=$((normal_n + 1)); [ "${r%% *}" = 201 ] && normal_ok=$((normal_ok + 1)) || echo "normal match: $r" >&2
done
skewed_ready=$(curl -s -o /dev/null -m 5 -w '%{http_code}' http://127.0.0.1:55442/ready)
skew_seen=$(skew_metric 55442)
[ $skewed_ok = $skewed_n ] || failures+=("skewed instance: $skewed_ok of $skewed_n expiry-sensitive answers were 'unable to verify' naming the clock")
[ $normal_ok = $normal_n ] || failures+=("normal instance: $normal_ok of $normal_n answered")
[ "$skewed_ready" = 503 ] || failures+=("skewed instance /ready answered $skewed_ready, not 503")
# Through HAProxy once it has taken serve2 out (fall 2 x inter 1 s).
sleep 3
python3 Jobs/ha/load.py --api "$API" --token "$token" --run "$run_id" --seconds "$LOAD_S" --workers 2 --out "$work/load.jsonl"
via=$(HA_PGPW=$pgpw python3 Jobs/ha/report.py --drill clock-skew-via-haproxy --log "$work/load.jsonl" --run "$run_id" --accept ok conflict)
via_pass=$?
[ $via_pass = 0 ] || failures+=("through HAProxy: not every answer was real")

# 2. Within the limit: answers, and the skew is reported.
Jobs/ha.sh stop-serve 2 >/dev/null 2>&1
HA_SERVE_FAKETIME="+5s" Jobs/ha.sh start-serve 2 2>>"$work/ha-start.log"
sleep 1.5
small=$(ask 55442 "/v1/availability?component=RBC&abo=O&rhd=NEG")
small_skew=$(skew_metric 55442)
[ "${small%% *}" = 200 ] || failures+=("5 s skew: availability answered $small")

pass=true; [ ${#failures[@]} = 0 ] || pass=false
python3 - "$pass" "$SKEW_S" "$skewed_ok" "$skewed_n" "$normal_ok" "$normal_n" "$skewed_ready" "${skew_seen:-null}" "$via" "$small" "${small_skew:-null}" "${failures[@]}" <<'PY'
import json, sys
a = sys.argv[1:]
via = json.loads(a[8]) if a[8].startswith("{") else None
print(json.dumps({"drill": "clock-skew", "pass": a[0] == "true", "skew_s": int(a[1]),
  "skewed_unable_to_verify": "%s/%s" % (a[2], a[3]), "normal_answered": "%s/%s" % (a[4], a[5]),
  "skewed_ready_status": int(a[6]), "skew_measured_s": None if a[7] == "null" else round(float(a[7]), 1),
  "via_haproxy": None if via is None else {k: via[k] for k in ("requests", "errors_by_class", "final_errors_by_class", "acked_lost", "duplicates")},
  "small_skew_5s": {"availability": a[9], "skew_measured_s": None if a[10] == "null" else round(float(a[10]), 1)},
  "failures": a[11:]}))
PY
$pass
