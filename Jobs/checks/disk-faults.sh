#!/usr/bin/env bash
# Drill (issue "no single point of failure", drill 5): a full disk and a read-only spool.
# On a small tmpfs made by this script (size-capped, unmounted at the end):
#   - `index build` into a full folder fails (exit 1), leaves no partial file, and the previous
#     index still loads;
#   - `audit checkpoint` into a full folder fails and writes nothing;
#   - `distribution export` / `audit export` redirected onto the full disk fail (exit 1) instead of
#     ending as if complete;
#   - `import --spool` from a read-only spool loads the snapshot (the database is the record) and
#     fails on moving the files; the next run, once writable, says "already imported" and moves
#     them: nothing lost, nothing loaded twice.
# Needs root (mount). Throwaway database on the embedded cluster. Prints one JSON line.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -n "${DATABASE_URL:-}" ]; then
  echo '{"drill":"disk-faults","skipped":"DATABASE_URL is set; the drill needs the embedded cluster","pass":true}'; exit 0
fi
[ "$(id -u)" = 0 ] || { echo "disk-faults needs root to mount a tmpfs" >&2; exit 1; }
bm=$(pwd)/${BLOODMATCH_BIN:-.build/debug/bloodmatch}
[ -x "$bm" ] || { echo "no bloodmatch binary at $bm" >&2; exit 1; }
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env 2>/dev/null)"
sockdir=$(dirname "$BLOODMATCH_DB_SOCKET"); port=${BLOODMATCH_DB_SOCKET##*.}
db="bm_drill_disk_$$"
work=$(mktemp -d /tmp/bm-drill-disk.XXXXXX)
full="$work/full"; spool="$work/spool"
mkdir -p "$full" "$spool"
mounted=()
pg() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U postgres "$@"; }
cleanup() {
  for m in "${mounted[@]:-}"; do [ -n "$m" ] && umount "$m" 2>/dev/null || true; done
  pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
failures=()
check() { if ! eval "$2"; then failures+=("$1"); echo "FAILED: $1" >&2; fi; }

export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner TEMPLATE template0"
"$bm" migrate >/dev/null
printf 'site_id,name,kind,latitude,longitude,region,address\nDRILL01,Drill Centre,distribution_centre,-33.895678,151.184272,AU-02,"Alexandria NSW 2015, Australia"\nH9001,Drill Hospital,hospital,-33.8688,151.2093,AU-02,"Sydney NSW 2000, Australia"\n' >"$work/sites.csv"
"$bm" sites import "$work/sites.csv" >/dev/null
"$bm" generate --seed 13 --sites-file "$work/sites.csv" --units 2000 --as-of "$(date -u -d '-20 minutes' +%Y-%m-%dT%H:%M:%SZ)" --out "$work/gen1" >/dev/null
"$bm" generate --seed 14 --sites-file "$work/sites.csv" --units 2000 --as-of "$(date -u -d '-10 minutes' +%Y-%m-%dT%H:%M:%SZ)" --out "$work/gen2" >/dev/null
"$bm" import "$work"/gen1/snapshots/*.csv >/dev/null

# --- a 2 MiB tmpfs: a first index fits, then the disk is filled
mount -t tmpfs -o size=2m tmpfs "$full"; mounted+=("$full")
"$bm" index build --out "$full/index.bmidx" >/dev/null
before=$(sha256sum "$full/index.bmidx" | cut -d' ' -f1)
"$bm" import "$work"/gen2/snapshots/*.csv >/dev/null
dd if=/dev/zero of="$full/filler" bs=64k 2>/dev/null || true
set +e
"$bm" index build --out "$full/index.bmidx" >"$work/index.out" 2>"$work/index.err"; index_rc=$?
"$bm" audit checkpoint --out "$full/checkpoint.json" >/dev/null 2>"$work/cp.err"; cp_rc=$?
"$bm" audit export >"$full/events.jsonl" 2>"$work/export.err"; export_rc=$?
"$bm" distribution export --from 2000-01-01T00:00:00Z --to 2100-01-01T00:00:00Z --format json >"$full/dist.json" 2>"$work/dist.err"; dist_rc=$?
set -e
check "index build on a full disk exits 1 (got $index_rc)" '[ $index_rc -eq 1 ]'
check "the index error names the file" 'grep -q "index.bmidx" "$work/index.err"'
check "no partial index file is left" '[ -z "$(ls -A "$full" | grep -v -e "^index.bmidx$" -e "^filler$" -e "^events.jsonl$" -e "^dist.json$")" ]'
check "the previous index is unchanged and still loads" '[ "$(sha256sum "$full/index.bmidx" | cut -d" " -f1)" = "$before" ] && "$bm" index show --file "$full/index.bmidx" >/dev/null 2>&1'
check "audit checkpoint on a full disk fails (got $cp_rc) and writes nothing" '[ $cp_rc -ne 0 ] && [ ! -e "$full/checkpoint.json" ]'
check "audit export onto a full disk exits 1 (got $export_rc)" '[ $export_rc -eq 1 ] && grep -q "incomplete" "$work/export.err"'
check "a small distribution export that cannot be written exits 1 (got $dist_rc)" '[ $dist_rc -eq 1 ]'

# --- a read-only spool (a read-only bind mount over it)
"$bm" generate --seed 15 --sites-file "$work/sites.csv" --units 500 --as-of "$(date -u -d '-1 minutes' +%Y-%m-%dT%H:%M:%SZ)" --out "$work/gen3" >/dev/null
cp "$work"/gen3/snapshots/* "$spool/"
mount --bind "$spool" "$spool"; mounted+=("$spool")
mount -o remount,ro,bind "$spool"
set +e; "$bm" import --spool "$spool" >"$work/ro.out" 2>"$work/ro.err"; ro_rc=$?; set -e
runs_after_ro=$(pg -d "$db" -c "SELECT count(*) FROM bm.import_runs WHERE outcome = 'loaded'")
umount "$spool"; mounted=("$full")
set +e; "$bm" import --spool "$spool" >"$work/rw.out" 2>"$work/rw.err"; rw_rc=$?; set -e
check "import from a read-only spool reports the failed move (exit $ro_rc, expected 1)" '[ $ro_rc -eq 1 ] && grep -q "NOT MOVED" "$work/ro.out"'
check "the snapshot loaded once, before and after the spool became writable" '[ "$runs_after_ro" = 3 ] && [ "$(pg -d "$db" -c "SELECT count(*) FROM bm.import_runs WHERE outcome = '"'"'loaded'"'"'")" = 3 ]'
check "the rerun says already imported and moves the files (exit $rw_rc)" '[ $rw_rc -eq 0 ] && [ "$(pg -d "$db" -c "SELECT count(*) FROM bm.import_runs WHERE outcome = '"'"'already_imported'"'"'")" = 1 ] && [ -z "$(ls "$spool" | grep -v -e "^done$" -e "^failed$")" ]'

pass=true; [ ${#failures[@]} -eq 0 ] || pass=false
printf '{"drill":"disk-faults","pass":%s,"index_build_rc":%s,"checkpoint_rc":%s,"audit_export_rc":%s,"distribution_export_rc":%s,"readonly_spool_rc":%s,"rerun_rc":%s,"failures":%s}\n' \
  "$pass" "$index_rc" "$cp_rc" "$export_rc" "$dist_rc" "$ro_rc" "$rw_rc" \
  "$(printf '%s\n' "${failures[@]:-}" | python3 -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin if l.strip()]))')"
$pass
