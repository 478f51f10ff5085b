#!/usr/bin/env bash
# Check: availability counts are what a match could use, and the API and the CLI agree.
# - on the same data, GET /v1/availability and `bloodmatch stock --json` give the same units per
#   centre and group for several requests (groups, components, a requirement)
# - a request whose API total T is 1…99: a match for T + 1 units finds exactly T (nothing counted
#   that a match would not use: held, issued, or short of the minimum remaining life on arrival)
# - after those T units are held, both show T fewer, the narrow request 0; issued, still 0
# - a distribution centre that has never delivered a snapshot, at the hospital's own place, is
#   listed by both as "no data — stock unknown, confirm by phone" and named by a match as not checked
# - `stock` ends by its deadline with exit 5 (unable to verify) while a lock holds the centres' table
# Bounded: about 20 s. Prints one JSON line; exits 1 on failure. Stops only the server it started.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
servers=()
on_cleanup() { for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done; }
scratch_db_check check_avail availability
export BLOODMATCH_LOG_LEVEL=error
started=$(date +%s)

"$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
scratch_operator check supervisor >/dev/null || bad operator "could not add a supervisor"
"$bm" sites import Data/sites.csv >/dev/null 2>&1
"$bm" generate --seed 9 --sites-file Data/sites.csv --units 3000 --out "$work/gen" >/dev/null 2>&1
"$bm" import "$work"/gen/snapshots/*.csv >/dev/null 2>&1
"$bm" index build --out "$work/index.bmidx" >/dev/null 2>&1 || bad index "build failed"
key=$("$bm" hospital key create H0001 --label availability --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
[ -n "$key" ] || bad key "no token"

port=$(( 18300 + RANDOM % 100 )); while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$(( 18300 + RANDOM % 100 )); done
"$bm" serve --port "$port" --rate-limit 100 --rate-burst 100 --index "$work/index.bmidx" 2>"$work/serve.log" &
servers+=($!)
base="http://127.0.0.1:$port"
for _ in $(seq 1 150); do curl -sf "$base/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "$base/ready" >/dev/null && ok ready || bad ready "$(tail -2 "$work/serve.log")"

# api OUT COMPONENT ABO RHD [REQUIRE] / cli OUT COMPONENT ABO RHD [REQUIRE]: per-centre counts as JSON.
api() { curl -s -o "$1" -H "Authorization: Bearer $key" "$base/v1/availability?component=$2&abo=$3&rhd=$4&limit=100${5:+&require=$5}"; }
cli() { "$bm" stock --near H0001 --component "$2" --abo "$3" --rhd "$4" --limit 100 --index "$work/index.bmidx" ${5:+--require "$5"} --json >"$1" 2>"$1.err"; }
# counts FILE: "centre group=n …" lines, sorted, from either answer.
counts() { python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for c in sorted(d["centres"], key=lambda c: c["centre_id"]):
    print(c["centre_id"], " ".join(f"{g}={n}" for g, n in sorted(c["units_by_group"].items())), c["total_units"])' "$1" 2>/dev/null; }
total() { python3 -c 'import json,sys; print(sum(c["total_units"] for c in json.load(open(sys.argv[1]))["centres"]))' "$1" 2>/dev/null; }

queries=("RBC A POS" "RBC O NEG" "PLT O NEG" "PLASMA AB POS" "RBC B NEG IRRADIATED" "PLT A POS CMV_NEG" "RBC AB NEG" "WB O POS")
agree=0; narrow=""
for q in "${queries[@]}"; do
  set -- $q; name="$1-$2-$3${4:+-$4}"
  api "$work/api-$name.json" "$@"; cli "$work/cli-$name.json" "$@"
  if [ -n "$(counts "$work/api-$name.json")" ] && [ "$(counts "$work/api-$name.json")" = "$(counts "$work/cli-$name.json")" ]; then
    agree=$((agree + 1))
  else
    bad "agree_$name" "api $(counts "$work/api-$name.json" | head -3 | tr '\n' ';') cli $(counts "$work/cli-$name.json" | head -3 | tr '\n' ';') $(head -c 200 "$work/cli-$name.json.err")"
  fi
  t=$(total "$work/api-$name.json")
  if [ -z "$narrow" ] && [ -n "$t" ] && [ "$t" -ge 1 ] && [ "$t" -le 99 ]; then narrow="$q"; narrow_total=$t; fi
done
[ "$agree" = "${#queries[@]}" ] && ok "api_and_cli_agree_${agree}_requests"

if [ -z "$narrow" ]; then
  bad narrow_request "no request with 1…99 usable units"
else
  set -- $narrow
  want=$((narrow_total + 1))
  body="{\"component\":\"$1\",\"recipient\":{\"abo\":\"$2\",\"rhd\":\"$3\",\"sex\":\"male\",\"age\":60},\"quantity\":$want${4:+,\"requirements\":[\"$4\"]}}"
  curl -s -o "$work/m.json" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -H 'Idempotency-Key: avail-1' -d "$body" "$base/v1/matches"
  got=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["units"]))' "$work/m.json" 2>/dev/null)
  [ "$got" = "$narrow_total" ] && ok "match_uses_exactly_the_${narrow_total}_counted" || bad match_uses_exactly_the_counted "counted $narrow_total ($narrow), a match for $want found ${got:-?}: $(head -c 200 "$work/m.json")"
  decision=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["decision_id"])' "$work/m.json" 2>/dev/null)
  s=$(curl -s -o "$work/r.json" -w '%{http_code}' -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -H 'Idempotency-Key: avail-hold' \
      -d "{\"decision_id\":\"$decision\"}" "$base/v1/reservations")
  [ "$s" = 201 ] || bad hold "$s $(head -c 200 "$work/r.json")"
  name="$1-$2-$3${4:+-$4}"
  api "$work/api-after.json" "$@"; cli "$work/cli-after.json" "$@"
  a=$(total "$work/api-after.json"); c=$(total "$work/cli-after.json")
  { [ "$a" = 0 ] && [ "$c" = 0 ]; } && ok held_units_no_longer_counted || bad held_units_no_longer_counted "api $a, cli $c after holding $narrow_total"
  # Issued (dispatched) they stay out of both counts: the index built before the issue still holds them.
  rid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["reservation_id"])' "$work/r.json" 2>/dev/null)
  "$bm" reservation issue "$rid" --key avail-issue >"$work/issue.out" 2>&1 || bad issue "exit $?: $(tail -1 "$work/issue.out")"
  api "$work/api-issued.json" "$@"; cli "$work/cli-issued.json" "$@"
  { [ "$(total "$work/api-issued.json")" = 0 ] && [ "$(total "$work/cli-issued.json")" = 0 ]; } \
    && ok issued_units_not_counted || bad issued_units_not_counted "api $(total "$work/api-issued.json"), cli $(total "$work/cli-issued.json") after issuing $narrow_total"
  # A broader request over the same group drops by the same number in both.
  api "$work/api-broad.json" "$1" "$2" "$3"; cli "$work/cli-broad.json" "$1" "$2" "$3"
  before=$(total "$work/api-$1-$2-$3.json" 2>/dev/null || echo "")
  if [ -z "${4:-}" ]; then
    { [ "$(total "$work/api-broad.json")" = $((before - narrow_total)) ] && [ "$(counts "$work/api-broad.json")" = "$(counts "$work/cli-broad.json")" ]; } \
      && ok broad_request_drops_by_hold || bad broad_request_drops_by_hold "before $before, after api $(total "$work/api-broad.json") cli $(total "$work/cli-broad.json")"
  else
    [ "$(counts "$work/api-broad.json")" = "$(counts "$work/cli-broad.json")" ] && ok broad_request_agrees_after_hold || bad broad_request_agrees_after_hold "differs"
  fi
fi

# A centre with no data is never left out: at the hospital's coordinates, no snapshot.
{ cat Data/sites.csv; echo 'DCNODATA,Centre without data,distribution_centre,-34.425826,150.865021,AU-02,"Wollongong, New South Wales, Australia"'; } >"$work/sites-plus.csv"
"$bm" sites import "$work/sites-plus.csv" >"$work/sites-plus.out" 2>&1 || bad sites_plus "exit $?: $(tail -1 "$work/sites-plus.out")"
nodata() { python3 -c 'import json,sys; print(",".join(c["centre_id"] + ":" + c["warning"] for c in json.load(open(sys.argv[1])).get(sys.argv[2], [])))' "$1" "$2" 2>/dev/null; }
want="DCNODATA:no data — stock unknown, confirm by phone"
for _ in $(seq 1 20); do api "$work/api-nodata.json" RBC O NEG; [ "$(nodata "$work/api-nodata.json" centres_without_data)" = "$want" ] && break; sleep 0.25; done
cli "$work/cli-nodata.json" RBC O NEG
{ [ "$(nodata "$work/api-nodata.json" centres_without_data)" = "$want" ] && [ "$(nodata "$work/cli-nodata.json" centres_without_data)" = "$want" ]; } \
  && ok centre_without_data_listed || bad centre_without_data_listed "api '$(nodata "$work/api-nodata.json" centres_without_data)' cli '$(nodata "$work/cli-nodata.json" centres_without_data)'"
"$bm" stock --near H0001 --component RBC --index "$work/index.bmidx" >"$work/stock-nodata.txt" 2>&1
grep -q "DCNODATA .*NO DATA: no data — stock unknown, confirm by phone" "$work/stock-nodata.txt" && ok stock_table_says_no_data \
  || bad stock_table_says_no_data "$(grep DCNODATA "$work/stock-nodata.txt" | head -1)"
curl -s -o "$work/m-nodata.json" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -H 'Idempotency-Key: avail-nodata' \
  -d '{"component":"RBC","recipient":{"abo":"O","rhd":"NEG","sex":"male","age":60},"quantity":1}' "$base/v1/matches"
[ "$(nodata "$work/m-nodata.json" centres_not_checked)" = "$want" ] && ok match_names_centre_not_checked \
  || bad match_names_centre_not_checked "$(head -c 300 "$work/m-nodata.json")"

# `stock` answers by its deadline while a lock holds the centres' table (a paused import, say).
psql_pg -d "$db" -c "BEGIN; LOCK TABLE bm.centre_status IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(8); COMMIT" >/dev/null 2>&1 &
locker=$!; servers+=("$locker")
sleep 0.5
t0=$(date +%s.%N)
"$bm" stock --near H0001 --component RBC --index "$work/index.bmidx" --deadline-seconds 2 >"$work/stock-locked.txt" 2>&1; rc=$?
took=$(python3 -c "import sys; print(round($(date +%s.%N) - $t0, 1))")
kill "$locker" 2>/dev/null; wait "$locker" 2>/dev/null
{ [ "$rc" = 5 ] && python3 -c "import sys; sys.exit(0 if $took < 5 else 1)"; } && ok "stock_deadline_exit_5_in_${took}s" \
  || bad stock_deadline "exit $rc after ${took}s: $(tail -1 "$work/stock-locked.txt")"

printf '{"check":"availability","results":{%s},"seconds":%d,"pass":%s}\n' "$(IFS=,; echo "${results[*]}")" \
  $(( $(date +%s) - started )) "$([ "$fail" = 0 ] && echo true || echo false)"
exit "$fail"
