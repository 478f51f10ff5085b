#!/usr/bin/env bash
# Check: a spool CSV whose control record never comes (or a control record without its CSV) is
# reported once it has waited past the grace period (10 min by default): a warning log line naming
# the file and its age, an ORPHANED line, exit 3; it stays in place and is not imported. A CSV
# still inside the grace period is waited for in silence, and a longer --orphan-grace-minutes
# (or BLOODMATCH_SPOOL_ORPHAN_GRACE_MINUTES) quiets the report. Uses a throwaway database.
# Prints one JSON line; exits 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
scratch_db_check check_orphans spool-orphans
export BLOODMATCH_LOG_LEVEL=warning
unset BLOODMATCH_SPOOL_ORPHAN_GRACE_MINUTES

"$bm" migrate >/dev/null 2>&1
"$bm" generate --seed 7 --sites-file Data/sites.csv --units 200 --out "$work/gen" >/dev/null
"$bm" sites import Data/sites.csv >/dev/null 2>&1
spool="$work/spool"; mkdir -p "$spool"
mapfile -t snaps < <(ls "$work/gen/snapshots/" | grep '\.csv$' | head -4)
# A complete pair; a CSV without its control record for 20 min; one for 1 min; a control record
# without its CSV for 30 min.
cp "$work/gen/snapshots/${snaps[0]%.csv}".* "$spool/"
cp "$work/gen/snapshots/${snaps[1]}" "$spool/"; touch -d '-20 minutes' "$spool/${snaps[1]}"
cp "$work/gen/snapshots/${snaps[2]}" "$spool/"; touch -d '-1 minute' "$spool/${snaps[2]}"
lone="${snaps[3]%.csv}.ctl.json"
cp "$work/gen/snapshots/$lone" "$spool/"; touch -d '-30 minutes' "$spool/$lone"

"$bm" import --spool "$spool" >"$work/first.out" 2>"$work/first.err"; rc=$?
[ "$rc" = 3 ] && ok orphans_exit_3 || bad orphans_exit_3 "exit $rc"
grep -q "^ORPHANED: ${snaps[1]} — no ${snaps[1]%.csv}.ctl.json after 20 min" "$work/first.out" && ok orphan_csv_reported || bad orphan_csv_reported "$(head -c 300 "$work/first.out")"
grep -q "^ORPHANED: $lone — no ${snaps[3]} or ${snaps[3]%.csv}.fhir.json or ${snaps[3]%.csv}.json after 30 min" "$work/first.out" && ok orphan_control_reported || bad orphan_control_reported "not in output"
grep '"level":"warning"' "$work/first.err" | grep -F "\"file\":\"${snaps[1]}\"" | grep -q '"age_minutes":"20"' && ok orphan_logged || bad orphan_logged "no warning line naming the file and its age"
grep -q "${snaps[2]}" "$work/first.out" "$work/first.err" && bad fresh_csv_quiet "a CSV inside the grace period was reported" || ok fresh_csv_quiet
[ -f "$spool/${snaps[1]}" ] && [ -f "$spool/${snaps[2]}" ] && [ -f "$spool/done/${snaps[0]}" ] && ok files_in_place || bad files_in_place "$(ls -R "$spool" | tr '\n' ' ')"
loaded=$(psql_pg -d "$db" -c "SELECT count(*) FROM bm.import_runs WHERE outcome = 'loaded'")
[ "$loaded" = 1 ] && ok complete_pair_loaded || bad complete_pair_loaded "$loaded loaded runs"

"$bm" import --spool "$spool" --orphan-grace-minutes 60 >"$work/second.out" 2>&1; rc=$?
[ "$rc" = 0 ] && ! grep -q ORPHANED "$work/second.out" && ok longer_grace_quiet || bad longer_grace_quiet "exit $rc"
BLOODMATCH_SPOOL_ORPHAN_GRACE_MINUTES=25 "$bm" import --spool "$spool" >"$work/third.out" 2>&1; rc=$?
[ "$rc" = 3 ] && grep -q "ORPHANED: $lone" "$work/third.out" && ! grep -q "ORPHANED: ${snaps[1]}" "$work/third.out" \
  && ok grace_from_environment || bad grace_from_environment "exit $rc"
BLOODMATCH_SPOOL_ORPHAN_GRACE_MINUTES=0 "$bm" import --spool "$spool" >"$work/fourth.out" 2>&1; rc=$?
[ "$rc" = 2 ] && ok bad_grace_refused || bad bad_grace_refused "exit $rc"

pass=$([ $fail = 0 ] && echo true || echo false)
echo "{\"check\":\"spool-orphans\",$(IFS=,; echo "${results[*]}"),\"pass\":$pass}"
exit $fail
