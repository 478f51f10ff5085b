#!/usr/bin/env bash
# Check: the CLI as a new user meets it, on a throwaway database.
# - a value the argument parser refuses (unknown --component, a missing option value, an unknown
#   option) exits 2, the documented usage code, with the reason on standard error
# - `match --latitude -33.87 --longitude 151.2` (the README's own form, no `=`) is answered
# - an unknown hospital exits 2 and says so in a plain line on standard error, not only in the log
# - `sites list` lists every site and says which centres have no data
# - a missing database socket is named as such, at once (exit 5), not "no answer within 5 s"
# - a bad value in a file the command is given (a site list it cannot read, matching settings it
#   refuses, a generator asked for more units than its DINs allow) exits 2; a file it cannot write
#   (its surroundings, not its input) exits 1 — both with the file named on standard error
# Bounded: about 10 s. Prints one JSON line; exits 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
scratch_db_check check_cli cli-usage
export BLOODMATCH_LOG_LEVEL=error
started=$(date +%s)
"$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
scratch_operator check supervisor >/dev/null || bad operator "could not add a supervisor"
"$bm" sites import Data/sites.csv >/dev/null 2>&1
"$bm" generate --seed 5 --sites-file Data/sites.csv --units 600 --out "$work/gen" >/dev/null 2>&1
"$bm" import "$work"/gen/snapshots/DC00[1-5]-*.csv >/dev/null 2>&1

expect_usage() {  # NAME ARGS…: exit 2 and a reason on standard error
  local name=$1; shift
  "$bm" "$@" >"$work/$name.out" 2>"$work/$name.err"; local rc=$?
  { [ "$rc" = 2 ] && grep -qi "error" "$work/$name.err"; } && ok "$name" || bad "$name" "exit $rc: $(head -c 160 "$work/$name.err")"
}
expect_usage unknown_component match --hospital H0001 --component XYZ --abo O --rhd NEG
expect_usage missing_value stock --near
expect_usage unknown_option sites list --colour red

"$bm" match --latitude -33.87 --longitude 151.2 --component RBC --abo O --rhd NEG --sex female --age 30 >"$work/neg.out" 2>"$work/neg.err"; rc=$?
{ [ "$rc" != 2 ] && grep -q "^Decision " "$work/neg.out"; } && ok negative_latitude_without_equals || bad negative_latitude_without_equals "exit $rc: $(head -c 160 "$work/neg.err")"

"$bm" match --hospital NOPE --component RBC --abo O --rhd NEG --sex female --age 30 >"$work/unknown.out" 2>"$work/unknown.err"; rc=$?
{ [ "$rc" = 2 ] && grep -q "^error: hospital 'NOPE': not a known hospital" "$work/unknown.err"; } && ok unknown_hospital_exit_2_said \
  || bad unknown_hospital "exit $rc: $(grep -v '^{' "$work/unknown.err" | head -c 160)"

"$bm" sites list >"$work/sites.out" 2>&1; rc=$?
sites=$(($(wc -l <Data/sites.csv) - 1))
{ [ "$rc" = 0 ] && grep -q "^$sites site(s); 12 distribution centre(s), 7 without data" "$work/sites.out" \
  && grep -q "^DC010 .*NO DATA" "$work/sites.out"; } && ok "sites_list_${sites}_sites_7_without_data" || bad sites_list "exit $rc: $(tail -1 "$work/sites.out")"

expect_usage site_list_unreadable sites import "$work/no-such-sites.csv"
echo '{"not": "matching settings"}' >"$work/matching.json"
BLOODMATCH_MATCHING="$work/matching.json" expect_usage matching_settings_refused match --hospital H0001 --component RBC --abo O --rhd NEG --sex female --age 30
expect_usage generator_units_beyond_dins generate --seed 5 --sites-file Data/sites.csv --units 2000000000 --out "$work/big"
# (A regular file where a folder must go: permissions would not stop root.)
echo file >"$work/ro"
"$bm" generate --seed 5 --sites-file Data/sites.csv --units 50 --out "$work/ro/gen" >"$work/ro.out" 2>"$work/ro.err"; rc=$?
{ [ "$rc" = 1 ] && grep -q "^error: .*$work/ro" "$work/ro.err"; } && ok unwritable_output_exit_1_named || bad unwritable_output "exit $rc: $(grep -v '^{' "$work/ro.err" | head -c 160)"

t0=$(date +%s.%N)
BLOODMATCH_DB_SOCKET=/nonexistent/.s.PGSQL.1 "$bm" sites list >"$work/nosock.out" 2>&1; rc=$?
took=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
{ [ "$rc" = 5 ] && grep -q "no server socket at /nonexistent/.s.PGSQL.1" "$work/nosock.out" && python3 -c "import sys; sys.exit(0 if $took < 2 else 1)"; } \
  && ok "missing_socket_named_in_${took}s" || bad missing_socket "exit $rc after ${took}s: $(tail -1 "$work/nosock.out")"

printf '{"check":"cli-usage","results":{%s},"seconds":%d,"pass":%s}\n' "$(IFS=,; echo "${results[*]}")" \
  $(( $(date +%s) - started )) "$([ "$fail" = 0 ] && echo true || echo false)"
exit "$fail"
