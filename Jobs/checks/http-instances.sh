#!/usr/bin/env bash
# Check: two `bloodmatch serve` instances side by side on loopback (ports A and B) against one
# throwaway database are stateless, so any number can run behind a load balancer.
# - a match made through A, retried with the same Idempotency-Key through B: the original decision
#   (200, Idempotent-Replayed, same decision id);
# - a reservation made through A is seen (GET) and released (DELETE) through B, then answers 410
#   through A; a retried reservation key through B returns the original hold;
# - while A's reservation holds, a match through B (whose cached held-unit set has never seen it)
#   proposes none of the held units: every proposal is re-checked against the database;
# - rate limits are per instance: a hospital that exhausted its burst on A (429 + Retry-After) is
#   still served by B (N instances allow N × --rate-limit in aggregate; see README).
# Bounded: about 15 s. Prints one JSON line; exits 1 on failure. Stops only the servers it started.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
servers=()
on_cleanup() { for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done; }
scratch_db_check check_inst http-instances
export BLOODMATCH_LOG_LEVEL=error
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@" 2>/dev/null; }

"$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
scratch_operator check supervisor >/dev/null || bad operator "could not add a supervisor"
"$bm" sites import Data/sites.csv >/dev/null 2>&1
"$bm" generate --seed 7 --sites-file Data/sites.csv --units 2000 --out "$work/gen" >/dev/null 2>&1
"$bm" import "$work"/gen/snapshots/*.csv >/dev/null 2>&1
token() { "$bm" hospital key create "$1" --label instances --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
key=$(token H0001); key2=$(token H0002)
[ -n "$key" ] && [ -n "$key2" ] && ok keys_created || bad keys_created "no token"

free_port() { local p; p=$(( 18100 + RANDOM % 100 )); while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$(( 18100 + RANDOM % 100 )); done; echo "$p"; }
# Burst 6 per hospital per instance, refilled at 1/s: the flow below stays within it on each
# instance; the rate-limit step exhausts it on purpose with the second hospital.
start() {
  "$bm" serve --port "$1" --rate-limit 1 --rate-burst 6 --index "$work/none.bmidx" 2>"$work/serve-$1.log" &
  servers+=($!)
}
portA=$(free_port); start "$portA"
portB=$(free_port); while [ "$portB" = "$portA" ]; do portB=$(free_port); done; start "$portB"
A="http://127.0.0.1:$portA"; B="http://127.0.0.1:$portB"
for base in "$A" "$B"; do
  for _ in $(seq 1 150); do curl -sf "$base/ready" >/dev/null 2>&1 && break; sleep 0.2; done
done
curl -sf "$A/ready" >/dev/null && curl -sf "$B/ready" >/dev/null && ok both_ready || bad both_ready "A or B not ready"

post() {  # base path key idempotency-key body out -> status; headers in out.h
  curl -s -o "$6" -D "$6.h" -w '%{http_code}' -H "Authorization: Bearer $3" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: $4" -d "$5" "$1$2"
}
call() {  # method base path key out -> status
  curl -s -o "$5" -D "$5.h" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $4" "$2$3"
}
ask='{"component":"RBC","recipient":{"abo":"A","rhd":"POS","sex":"male","age":60},"quantity":2}'

# Idempotency across instances.
s1=$(post "$A" /v1/matches "$key" inst-match-1 "$ask" "$work/m1.json")
s2=$(post "$B" /v1/matches "$key" inst-match-1 "$ask" "$work/m2.json")
d1=$(field "$work/m1.json" 'd["decision_id"]'); d2=$(field "$work/m2.json" 'd["decision_id"]')
if [ "$s1" = 201 ] && [ "$s2" = 200 ] && [ -n "$d1" ] && [ "$d1" = "$d2" ] && grep -qi '^idempotent-replayed: true' "$work/m2.json.h"; then
  ok idempotency_key_across_instances
else
  bad idempotency_key_across_instances "A $s1 $d1, B $s2 $d2"
fi
held=$(field "$work/m1.json" '" ".join(sorted(u["din"] for u in d["units"]))')
[ -n "$held" ] || bad decision_units "decision $d1 chose no units: $(head -c 300 "$work/m1.json")"

# A reservation made through A, seen and released through B.
s=$(post "$A" /v1/reservations "$key" inst-hold-1 "{\"decision_id\":\"$d1\"}" "$work/r1.json")
rid=$(field "$work/r1.json" 'd["reservation_id"]')
[ "$s" = 201 ] && [ -n "$rid" ] && ok reserved_on_A || bad reserved_on_A "$s $(head -c 300 "$work/r1.json")"
s=$(post "$B" /v1/reservations "$key" inst-hold-1 "{\"decision_id\":\"$d1\"}" "$work/r2.json")
[ "$s" = 200 ] && [ "$(field "$work/r2.json" 'd["reservation_id"]')" = "$rid" ] && ok reservation_key_replayed_on_B || bad reservation_key_replayed_on_B "$s $(head -c 200 "$work/r2.json")"
s=$(call GET "$B" "/v1/reservations/$rid" "$key" "$work/g1.json")
[ "$s" = 200 ] && [ "$(field "$work/g1.json" '" ".join(sorted(u["din"] for u in d["units"]))')" = "$held" ] && ok reservation_seen_on_B || bad reservation_seen_on_B "$s $(head -c 200 "$work/g1.json")"

# While held: a match through B never proposes the held units.
s=$(post "$B" /v1/matches "$key" inst-match-2 "$ask" "$work/m3.json")
other=$(field "$work/m3.json" '" ".join(sorted(u["din"] for u in d["units"]))')
overlap=$(comm -12 <(tr ' ' '\n' <<<"$held" | sort) <(tr ' ' '\n' <<<"$other" | sort) | grep -c . || true)
[ "$s" = 201 ] && [ "$overlap" = 0 ] && ok held_units_not_proposed_on_B || bad held_units_not_proposed_on_B "$s overlap $overlap ($held / $other)"

s=$(call DELETE "$B" "/v1/reservations/$rid" "$key" "$work/d1.json")
[ "$s" = 200 ] && ok released_on_B || bad released_on_B "$s $(head -c 200 "$work/d1.json")"
s=$(call GET "$A" "/v1/reservations/$rid" "$key" "$work/g2.json")
[ "$s" = 410 ] && ok release_seen_on_A || bad release_seen_on_A "$s $(head -c 200 "$work/g2.json")"

# Rate limits are per instance.
q="/v1/availability?component=RBC&abo=O&rhd=NEG"
codes=""
for _ in $(seq 1 8); do codes+="$(call GET "$A" "$q" "$key2" "$work/a.json") "; done
retry=$(awk 'tolower($1)=="retry-after:" {print $2}' "$work/a.json.h" | tr -d '\r')
sB=$(call GET "$B" "$q" "$key2" "$work/b.json")
if [[ "$codes" == *429* ]] && [ -n "$retry" ] && [ "$sB" = 200 ]; then
  results+=("\"rate_limit_per_instance\":\"A: $codes(Retry-After $retry); B: $sB\"")
else
  bad rate_limit_per_instance "A: $codes; B: $sB"
fi

pass=$([ $fail = 0 ] && echo true || echo false)
echo "{\"check\":\"http-instances\",$(IFS=,; echo "${results[*]}"),\"pass\":$pass}"
[ $fail = 0 ] || tail -5 "$work"/serve-*.log >&2
exit $fail
