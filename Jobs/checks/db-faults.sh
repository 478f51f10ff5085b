#!/usr/bin/env bash
# Drill (Data/SOURCES.md §S20; issue "no single point of failure", drill 3): the database behind a
# TCP fault proxy (Jobs/chaos/tcpproxy.py) that adds latency, hangs (pause), swallows new
# connections (blackhole) or resets them. Through each fault, `bloodmatch match` and `reserve`
# must answer within their deadline (5 s for the database, plus start-up) with either a real answer
# or "UNABLE TO VERIFY — manual review required" and exit 5: never a hang, never "no units". After
# `heal`, the next answers are real again, and a reserve retried with the same key holds once.
# Throwaway database on the embedded cluster; the proxy is stopped by its pid. Prints one JSON line.
#
#   Jobs/checks/db-faults.sh        env: BLOODMATCH_BIN
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -n "${DATABASE_URL:-}" ]; then
  echo '{"drill":"db-faults","skipped":"DATABASE_URL is set; the drill needs the embedded cluster","pass":true}'
  exit 0
fi
bm=$(cd "$(dirname "${BLOODMATCH_BIN:-.build/debug/bloodmatch}")" && pwd)/$(basename "${BLOODMATCH_BIN:-.build/debug/bloodmatch}")
[ -x "$bm" ] || { echo "no bloodmatch binary at $bm; run swift build first" >&2; exit 1; }
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env 2>/dev/null)"
sockdir=$(dirname "$BLOODMATCH_DB_SOCKET"); port=${BLOODMATCH_DB_SOCKET##*.}
db="bm_drill_faults_$$"
work=$(mktemp -d /tmp/bm-drill-faults.XXXXXX)
proxy_pid=""
pg() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U postgres "$@"; }
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null || true
  pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
failures=()
results=()

export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner TEMPLATE template0"
"$bm" migrate >/dev/null
printf 'site_id,name,kind,latitude,longitude,region,address\nDRILL01,Drill Centre,distribution_centre,-33.895678,151.184272,AU-02,"Alexandria NSW 2015, Australia"\nH9001,Drill Hospital,hospital,-33.8688,151.2093,AU-02,"Sydney NSW 2000, Australia"\n' >"$work/sites.csv"
"$bm" sites import "$work/sites.csv" >/dev/null
"$bm" generate --seed 12 --sites-file "$work/sites.csv" --units 3000 --as-of "$(date -u -d '-10 minutes' +%Y-%m-%dT%H:%M:%SZ)" --out "$work/gen" >/dev/null
"$bm" import "$work"/gen/snapshots/*.csv >/dev/null
"$bm" index build --out "$work/index.bmidx" >/dev/null

# From here on the commands reach PostgreSQL only through the proxy, over TCP as bloodmatch_app.
python3 Jobs/chaos/tcpproxy.py --target "127.0.0.1:$port" --control "$work/proxy.sock" >"$work/proxy.out" &
proxy_pid=$!
for _ in $(seq 50); do grep -q listening "$work/proxy.out" 2>/dev/null && break; sleep 0.1; done
proxy_port=$(awk '/listening/ {print $2}' "$work/proxy.out")
app_pw=$(sed -n 's/^bloodmatch_app=//p' .pgdata/credentials)
export DATABASE_URL="postgres://bloodmatch_app:${app_pw}@127.0.0.1:${proxy_port}/${db}?sslmode=disable"
ctl() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall((sys.argv[2]+"\n").encode()); print(s.recv(200).decode().strip())' "$work/proxy.sock" "$1" >/dev/null; }

n=0
# run PHASE EXPECT CMD…: EXPECT is "answer" (exit 0 or 3 with a real answer) or "unverified"
# (exit 5 and UNABLE TO VERIFY on stdout); the command must end within 20 s either way.
run() {
  local phase=$1 expect=$2; shift 2
  n=$((n + 1))
  local start end rc ms verdict=ok
  start=$(date +%s%N)
  set +e; timeout 20 "$@" >"$work/out.$n" 2>"$work/err.$n"; rc=$?; set -e
  end=$(date +%s%N); ms=$(( (end - start) / 1000000 ))
  if [ $rc -eq 124 ]; then verdict="hung past 20 s"
  elif grep -qiE "none_compatible_available|no compatible unit" "$work/out.$n" && [ "$expect" = unverified ]; then verdict="said no units"
  elif [ "$expect" = unverified ] && { [ $rc -ne 5 ] || ! grep -q "UNABLE TO VERIFY" "$work/out.$n"; }; then verdict="expected UNABLE TO VERIFY and exit 5, got exit $rc"
  elif [ "$expect" = answer ] && [ $rc -ne 0 ]; then verdict="expected an answer, got exit $rc: $(head -c 200 "$work/out.$n")"
  fi
  [ "$verdict" = ok ] || { failures+=("$phase: $verdict"); echo "FAILED $phase: $verdict" >&2; }
  results+=("{\"phase\":\"$phase\",\"exit\":$rc,\"ms\":$ms,\"ok\":$([ "$verdict" = ok ] && echo true || echo false)}")
}
M=("$bm" match --hospital H9001 --component RBC --abo O --rhd NEG --quantity 1 --index "$work/index.bmidx" --request-id)

run baseline answer "${M[@]}" drill-m-1
ctl "delay 100";   run delay-100ms answer "${M[@]}" drill-m-2
ctl "heal"; ctl "blackhole"; run blackhole unverified "${M[@]}" drill-m-3
ctl "heal"; ctl "pause";     run pause unverified "${M[@]}" drill-m-4
ctl "heal"; ctl "reset";     run reset unverified "${M[@]}" drill-m-5
ctl "heal";                  run healed answer "${M[@]}" drill-m-6
"${M[@]}" drill-m-6 --json >"$work/decision.json" 2>/dev/null
decision=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["decisionID"])' "$work/decision.json")
ctl "blackhole";             run reserve-blackhole unverified "$bm" reserve "$decision" --key drill-r-1
ctl "heal";                  run reserve-healed answer "$bm" reserve "$decision" --key drill-r-1
run reserve-retry answer "$bm" reserve "$decision" --key drill-r-1
unset DATABASE_URL
holds=$(pg -d "$db" -c "SELECT count(*) FROM bm.reservations WHERE idempotency_key = 'drill-r-1'")
[ "$holds" = 1 ] || failures+=("reserve retried after the fault held $holds times")
verify_rc=0; "$bm" audit verify >/dev/null 2>&1 || verify_rc=$?
[ $verify_rc -eq 0 ] || failures+=("audit chain does not verify after the drill (exit $verify_rc)")

pass=true; [ ${#failures[@]} -eq 0 ] || pass=false
printf '{"drill":"db-faults","pass":%s,"phases":[%s],"failures":%s}\n' "$pass" "$(IFS=,; echo "${results[*]}")" \
  "$(printf '%s\n' "${failures[@]:-}" | python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin if l.strip()]))')"
$pass
