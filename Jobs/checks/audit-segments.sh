#!/usr/bin/env bash
# Check: the event log's segments on their way out, through the CLI (Jobs/RUNBOOK.md#audit-growth).
# With 40 events to a segment: closed segments are listed; `audit archive` writes a file that
# `audit verify-archive` proves from the file alone (two in order), and a changed byte in a copy
# is named with its line (exit 7), as is a changed archive found in the folder by `audit archive`
# (one without its manifest: exit 2); an open segment is not archived and segments leave oldest first
# (exit 2); the application role cannot detach; the owner's `audit detach` drops the segment's
# partitions; `audit verify` then passes from the first attached segment and says what is archived,
# with every covered record still matching. Uses a throwaway database. Prints one JSON line; exits
# 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
scratch_db_check check_segments audit-segments
export BLOODMATCH_LOG_LEVEL=warning
started=$SECONDS

psql_pg -d postgres -c "ALTER DATABASE $db SET bm.audit_segment_size = '40'" >/dev/null
"$bm" migrate >/dev/null 2>&1 || { bad migrate "exit $?"; }
"$bm" sites import Data/sites.csv >/dev/null 2>&1
events() { psql_pg -d "$db" -c "SET ROLE bloodmatch_app; INSERT INTO bm.event_log (actor, action, subject) SELECT 'anonymous', 'note', 'check:' || g FROM generate_series(1, $1) g" >/dev/null; }
# In steps, each followed by a seal (which makes segments ahead): one statement of more events
# than the segments made ahead would find no segment for its last rows.
for _ in 1 2 3 4 5; do events 30; "$bm" audit seal >/dev/null 2>&1; done
for _ in 1 2 3; do "$bm" audit seal >/dev/null 2>&1; done

"$bm" audit segments >"$work/segments.out" 2>&1; rc=$?
[ "$rc" = 0 ] && grep -q '^segment 1: events 1–.* chain 1–[0-9]* closed$' "$work/segments.out" && grep -q '^segment 2: .* closed$' "$work/segments.out" \
  && ok segments_listed || bad segments_listed "exit $rc: $(head -c 300 "$work/segments.out")"
open_segment=$("$bm" audit segments --json 2>/dev/null | grep '"state":"open"' | head -1 | sed 's/.*"segment":\([0-9]*\).*/\1/')

archive="$work/archive"
"$bm" audit archive --segment 1 --dir "$archive" >"$work/archive1.out" 2>&1; rc1=$?
"$bm" audit archive --segment 2 --dir "$archive" >"$work/archive2.out" 2>&1; rc2=$?
a1="$archive/bloodmatch-audit-s000001.jsonl"; a2="$archive/bloodmatch-audit-s000002.jsonl"
[ "$rc1" = 0 ] && [ "$rc2" = 0 ] && [ -s "$a1" ] && [ -s "$a1.manifest.json" ] && grep -q "records carried forward" "$work/archive1.out" \
  && ok archived || bad archived "exit $rc1/$rc2: $(head -c 300 "$work/archive1.out")"
carried=$(psql_pg -d "$db" -c "SELECT (payload->>'records')::int FROM bm.event_log WHERE action = 'audit.records_carried' AND subject = 'segment:1'")
[ "${carried:-0}" -gt 0 ] && ok records_carried || bad records_carried "carried '${carried}'"

"$bm" audit verify-archive "$a1" "$a2" >"$work/va.out" 2>&1; rc=$?
[ "$rc" = 0 ] && [ "$(grep -c ' intact, ' "$work/va.out")" = 2 ] && ok archives_verify || bad archives_verify "exit $rc: $(head -c 300 "$work/va.out")"
"$bm" audit verify-archive "$a2" "$a1" >"$work/va-order.out" 2>&1; rc=$?
[ "$rc" = 7 ] && grep -q "does not follow" "$work/va-order.out" && ok archive_order_checked || bad archive_order_checked "exit $rc"
cp "$a1" "$work/changed.jsonl"; cp "$a1.manifest.json" "$work/changed.jsonl.manifest.json"
sed -i '3s/"action":"/"action":"x/' "$work/changed.jsonl"
"$bm" audit verify-archive "$work/changed.jsonl" >"$work/va-changed.out" 2>&1; rc=$?
[ "$rc" = 7 ] && grep -q "changed.jsonl line 3: .*content_changed" "$work/va-changed.out" && ok changed_archive_named \
  || bad changed_archive_named "exit $rc: $(head -c 300 "$work/va-changed.out")"

# An archive already in the folder is verified before it is kept: a changed one is refused (7),
# one without its manifest named (2).
mkdir -p "$work/changed-dir" "$work/bare-dir"
cp "$a2" "$a2.manifest.json" "$work/changed-dir/"; sed -i '2s/"action":"/"action":"x/' "$work/changed-dir/$(basename "$a2")"
"$bm" audit archive --segment 2 --dir "$work/changed-dir" >"$work/rearchive.out" 2>&1; rc=$?
[ "$rc" = 7 ] && grep -q "ARCHIVE DOES NOT VERIFY: .* line 2: .*content_changed" "$work/rearchive.out" && ok changed_archive_in_folder_refused \
  || bad changed_archive_in_folder_refused "exit $rc: $(head -c 300 "$work/rearchive.out")"
cp "$a2" "$work/bare-dir/"
"$bm" audit archive --segment 2 --dir "$work/bare-dir" >"$work/bare.out" 2>&1; rc=$?
[ "$rc" = 2 ] && grep -q "without a readable manifest" "$work/bare.out" && ok archive_without_manifest_named || bad archive_without_manifest_named "exit $rc: $(head -c 300 "$work/bare.out")"

"$bm" audit archive --segment "${open_segment:-99}" --dir "$archive" >"$work/open.out" 2>&1; rc=$?
[ "$rc" = 2 ] && grep -q "not closed yet" "$work/open.out" && ok open_not_archived || bad open_not_archived "exit $rc: $(head -c 300 "$work/open.out")"
"$bm" audit detach --segment 2 --archive "$a2" >"$work/detach2.out" 2>&1; rc=$?
[ "$rc" = 2 ] && grep -q "not the oldest" "$work/detach2.out" && ok oldest_first || bad oldest_first "exit $rc: $(head -c 300 "$work/detach2.out")"
psql_pg -d "$db" -c "SET ROLE bloodmatch_app; SELECT bm.audit_detach_segment(1, 'x')" >/dev/null 2>"$work/app.err" \
  && bad app_cannot_detach "the application role detached" || { grep -q "permission denied" "$work/app.err" && ok app_cannot_detach || bad app_cannot_detach "$(head -c 200 "$work/app.err")"; }

t0=$(date +%s%N)
"$bm" audit detach --segment 1 --archive "$a1" >"$work/detach1.out" 2>&1; rc=$?
detach_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
gone=$(psql_pg -d "$db" -c "SELECT to_regclass('bm.event_log_s000001') IS NULL AND to_regclass('bm.event_chain_s000001') IS NULL")
[ "$rc" = 0 ] && [ "$gone" = t ] && ok detached || bad detached "exit $rc, partitions gone: $gone: $(head -c 300 "$work/detach1.out")"

"$bm" audit verify >"$work/verify.out" 2>&1; rc=$?
[ "$rc" = 0 ] && grep -q "are in the archives of segments 1–1" "$work/verify.out" && grep -q "covered rows match the chain" "$work/verify.out" \
  && ok verify_after_detach || bad verify_after_detach "exit $rc: $(head -c 400 "$work/verify.out")"
"$bm" audit segments >"$work/segments2.out" 2>&1
grep -q '^segment 1: .* detached sha256 [0-9a-f]\{64\}$' "$work/segments2.out" && ok detached_listed || bad detached_listed "$(head -c 200 "$work/segments2.out")"

pass=$([ $fail = 0 ] && echo true || echo false)
echo "{\"check\":\"audit-segments\",$(IFS=,; echo "${results[*]}"),\"detach_ms\":$detach_ms,\"seconds\":$((SECONDS - started)),\"pass\":$pass}"
exit $fail
