#!/usr/bin/env bash
# A centre's stock as a FHIR R5 Bundle instead of a CSV, through the CLI (Data/FHIR.md, "The feed"):
# - generated centres' snapshots written as Bundles (Jobs/checks/fhir_feed.py), each validated
#   against the R5 models of fhir.resources; `bloodmatch import FILE.json` loads one and the
#   stock in force is exactly the CSV's units (reserved and quarantined arrive as `unavailable`
#   and are never offered); the same file again is already imported
# - a spool folder with a Bundle and its control record: loaded and moved to done/
# - HL7's R5 red-cell example: as published (six-character division) it is refused by name; with
#   the two-character division, a component and a collection time it loads as E0398V00 A RhD
#   positive; a unit without an ABO/RhD property stays out, group unknown, never guessed
# - bad files: not JSON, a search Bundle, a timestamp other than as_of, a changed byte: exit 3,
#   the file and element named, the stock in force unchanged
# - afterwards `audit verify` passes
# Prints one JSON line; exits 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
scratch_db_check fhir_feed fhir-feed
export BLOODMATCH_LOG_LEVEL=error
started=$(date +%s)
python3 -c 'import fhir.resources' 2>/dev/null || bad python_tools "fhir.resources is not installed (Jobs/setup.sh installs it)"
q() { psql_pg -d "$db" -c "$1"; }

"$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
scratch_operator fhirfeed job >/dev/null || bad operator "could not add a job login"
"$bm" generate --seed 11 --sites-file Data/sites.csv --units 2000 --out "$work/gen" >/dev/null || bad generate "failed"
"$bm" sites import Data/sites.csv >/dev/null 2>&1 || bad sites "import failed"
mapfile -t snaps < <(ls "$work/gen/snapshots/" | grep '\.csv$' | head -3)
centre_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["centre"])' "$work/gen/snapshots/${1%.csv}.ctl.json"; }
in_force() {  # CENTRE: the centre's units in force as din|code|component|abo|rhd|status, sorted
  q "SELECT u.din || '|' || u.product_code || '|' || u.component || '|' || u.abo || '|' || u.rhd || '|' || u.status
     FROM bm.inventory_units u JOIN bm.centre_status c ON c.current_snapshot_id = u.snapshot_id WHERE c.centre = '$1'" | sort
}

# 1. A Bundle by file: validated, loaded, equal to the CSV's units.
s0=${snaps[0]}; c0=$(centre_of "$s0")
v=$(python3 Jobs/checks/fhir_feed.py bundle "$work/gen/snapshots/$s0" "$work/b0.json" --validate 2>"$work/v0.err")
[ "$(echo "$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["validated"])' 2>/dev/null)" = True ] \
  && ok r5_valid_bundle || bad r5_valid_bundle "$(tail -c 400 "$work/v0.err")"
"$bm" import "$work/b0.json" >"$work/i0.out" 2>&1; rc=$?
want=$(python3 Jobs/checks/fhir_feed.py stock "$work/gen/snapshots/$s0" | sort)
if [ "$rc" = 0 ] && [ "$(in_force "$c0")" = "$want" ]; then ok "bundle_loaded_$(echo "$want" | wc -l)_units"
else bad bundle_loaded "exit $rc, $(in_force "$c0" | wc -l) units in force against $(echo "$want" | wc -l): $(tail -1 "$work/i0.out" | cut -c1-200)"; fi
"$bm" import "$work/b0.json" >"$work/i0b.out" 2>&1; rc=$?
[ "$rc" = 0 ] && grep -q already "$work/i0b.out" && ok same_bundle_again || bad same_bundle_again "exit $rc: $(tail -1 "$work/i0b.out" | cut -c1-200)"

# 2. The spool.
s1=${snaps[1]}; c1=$(centre_of "$s1")
mkdir -p "$work/spool"
python3 Jobs/checks/fhir_feed.py bundle "$work/gen/snapshots/$s1" "$work/spool/${s1%.csv}.fhir.json" >/dev/null
"$bm" import --spool "$work/spool" >"$work/i1.out" 2>&1; rc=$?
want=$(python3 Jobs/checks/fhir_feed.py stock "$work/gen/snapshots/$s1" | sort)
if [ "$rc" = 0 ] && [ "$(in_force "$c1")" = "$want" ] && [ -f "$work/spool/done/${s1%.csv}.fhir.json" ]; then ok spool_bundle_loaded
else bad spool_bundle_loaded "exit $rc: $(tail -1 "$work/i1.out" | cut -c1-200); $(ls "$work/spool" "$work/spool/done" 2>&1 | tr '\n' ' ')"; fi

# 3. HL7's example: as published (refused by name), completed (loaded), no group (never guessed).
s2=${snaps[2]}; c2=$(centre_of "$s2")
python3 Jobs/checks/fhir_feed.py bundle "$work/gen/snapshots/$s2" "$work/hl7only.json" >/dev/null
python3 - "$work/hl7only.json" <<'PY'
import hashlib, json, sys
sys.path.insert(0, "Jobs/checks")
import fhir_feed
path = sys.argv[1]
doc = json.load(open(path))
doc["entry"] = [{"fullUrl": "urn:uuid:1", "resource": fhir_feed.hl7_red_cells()}]
data = json.dumps(doc).encode(); open(path, "wb").write(data)
ctl = json.load(open(path[:-5] + ".ctl.json")); ctl.update(row_count=1, sha256=hashlib.sha256(data).hexdigest(), empty_stock=False)
json.dump(ctl, open(path[:-5] + ".ctl.json", "w"))
from fhir.resources.bundle import Bundle
Bundle.model_validate_json(data)
PY
[ $? = 0 ] && ok hl7_example_r5_valid || bad hl7_example_r5_valid "the published example does not validate"
"$bm" import "$work/hl7only.json" >"$work/i2a.out" 2>&1; rc=$?
[ "$rc" = 3 ] && grep -q 'entry\[0\].resource.division' "$work/i2a.out" && grep -q "A00000" "$work/i2a.out" \
  && ok hl7_published_refused_by_division || bad hl7_published_refused_by_division "exit $rc: $(grep -v '^\s*$' "$work/i2a.out" | tail -2 | cut -c1-300)"
n=$(python3 Jobs/checks/fhir_feed.py bundle "$work/gen/snapshots/$s2" "$work/b2.json" --extra hl7-complete --extra no-group --extra hl7 --validate \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
"$bm" import "$work/b2.json" >"$work/i2.out" 2>&1; rc=$?
run=$(q "SELECT max(run_id) FROM bm.import_runs")
got=$(q "SELECT line || ' ' || field || ' ' || reason FROM bm.rejected_rows WHERE run_id = $run ORDER BY line")
want_rej="$((n - 1)) entry[$((n - 2))].resource.property[ABORhD] groupUnknown
$n entry[$((n - 1))].resource.division fhirStructure"
[ "$rc" = 3 ] && [ "$got" = "$want_rej" ] && ok "hl7_bundle_${n}_entries_2_rejected_by_entry" || bad hl7_bundle_rejections "exit $rc, rejections: $got"
[ "$(in_force "$c2" | grep '^A999921123456|')" = "A999921123456|E0398V00|RBC|A|POS|AVAILABLE" ] \
  && ok hl7_completed_loaded_as_A_pos || bad hl7_completed_loaded_as_A_pos "$(in_force "$c2" | grep '^A9999' || echo absent)"
[ "$(q "SELECT count(*) FROM bm.inventory_units WHERE din LIKE '%999' AND snapshot_id = (SELECT current_snapshot_id FROM bm.centre_status WHERE centre = '$c2')")" = 0 ] \
  && ok no_group_not_loaded || bad no_group_not_loaded "a unit without ABO/RhD is in stock"

# 4. Bad files, refused whole; the stock in force unchanged.
before=$(in_force "$c0")
bad_file() {  # NAME PYTHON-EDIT EXPECT-TEXT: a copy of b0.json changed by the edit, control record re-made
  python3 - "$work/b0.json" "$work/$1.json" "$2" <<'PY'
import hashlib, json, sys
src, out, edit = sys.argv[1:]
raw = open(src, "rb").read(); doc = json.loads(raw); ctl = json.load(open(src[:-5] + ".ctl.json"))
if edit == "notjson": data = raw[: len(raw) // 2]
elif edit == "searchset": doc["type"] = "searchset"; data = json.dumps(doc).encode()
elif edit == "timestamp": doc["timestamp"] = "2001-01-01T00:00:00Z"; data = json.dumps(doc).encode()
else: data = raw
ctl["sha256"] = hashlib.sha256(data).hexdigest()
if edit == "changed": data = data.replace(b'"RBC"', b'"PLT"', 1)
open(out, "wb").write(data); json.dump(ctl, open(out[:-5] + ".ctl.json", "w"))
PY
  # A newer as_of than the one in force, so the file is read, not refused as a replay.
  python3 - "$work/$1.ctl.json" <<'PY'
import datetime, json, sys
p = sys.argv[1]; c = json.load(open(p))
t = datetime.datetime.fromisoformat(c["as_of"].replace("Z", "+00:00")) + datetime.timedelta(seconds=30)
c["as_of"] = t.strftime("%Y-%m-%dT%H:%M:%SZ"); json.dump(c, open(p, "w"))
PY
  "$bm" import "$work/$1.json" >"$work/$1.out" 2>&1; local rc=$?
  if [ "$rc" = 3 ] && grep -q "$1.json" "$work/$1.out" && grep -q -- "$3" "$work/$1.out"; then ok "refused_$1"
  else bad "refused_$1" "exit $rc: $(grep -v '^\s*$' "$work/$1.out" | tail -1 | cut -c1-240)"; fi
}
bad_file notjson notjson "not valid JSON"
bad_file searchset searchset "collection or transaction"
bad_file timestamp timestamp "timestamp"
bad_file changed changed "checksumMismatch"
[ "$(in_force "$c0")" = "$before" ] && ok stock_unchanged_after_refusals || bad stock_unchanged_after_refusals "the stock in force changed"

"$bm" audit verify >"$work/verify.out" 2>&1 && ok audit_verify || bad audit_verify "$(tail -3 "$work/verify.out")"
printf '{"check":"fhir-feed","seconds":%s,"pass":%s,%s}\n' "$(( $(date +%s) - started ))" "$([ "$fail" = 0 ] && echo true || echo false)" "$(IFS=,; echo "${results[*]}")"
exit "$fail"
