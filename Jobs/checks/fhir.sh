#!/usr/bin/env bash
# The FHIR face, driven by a real FHIR client (fhirpy) as a hospital system would, every resource
# validated against the R5 models of fhir.resources, each step asserted against the database:
# - the CapabilityStatement; a stock search by ABO/RhD code, product code and expiry whose total
#   is the database's own count; a read of a unit
# - a routine SupplyRequest (queued for the batch) and a stat one (matched at once, its units held);
#   the stat order's dispenses; a dispatcher issues them (CLI); the hospital posts the receipt and
#   the fate as updates of the dispenses; the routine order is cancelled (DELETE)
# - conditional create (If-None-Exist) and Idempotency-Key replays; another hospital's key is
#   refused on these orders
# - the corpus of malformed and hostile documents (Jobs/checks/fhir_corpus.py): each answered with
#   the expected status and a valid OperationOutcome naming the element, nothing stored
# - afterwards `audit verify` passes
# Prints one JSON line; exits 1 on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
source Jobs/lib/scratch-db.bash
server=""
on_cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; }
scratch_db_check fhir fhir
source Jobs/lib/paced-load.bash
export BLOODMATCH_LOG_LEVEL=error
started=$(date +%s)
iso() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
python3 -c 'import fhir.resources, fhirpy' 2>/dev/null || bad python_tools "fhir.resources and fhirpy are not installed (Jobs/setup.sh installs them)"

"$bm" migrate >/dev/null 2>&1 || bad migrate "exit $?"
scratch_operator fhirsup supervisor >/dev/null || bad operator "could not add a supervisor"
cat >"$work/sites.csv" <<'CSV'
site_id,name,kind,latitude,longitude,region,address
DCF1,FHIR Centre One,distribution_centre,-33.895678,151.184272,AU-02,"Alexandria NSW, Australia"
DCF2,FHIR Centre Two,distribution_centre,-32.926700,151.778900,AU-02,"Newcastle NSW, Australia"
HF1,FHIR Hospital,hospital,-33.868800,151.209300,AU-02,"Sydney NSW, Australia"
HF2,Other Hospital,hospital,-34.424000,150.893000,AU-02,"Wollongong NSW, Australia"
CSV
"$bm" sites import "$work/sites.csv" >/dev/null 2>&1 || bad sites "import failed"
col=$(iso '-3 days'); rbc=$(iso '+20 days'); rbc2=$(iso '+9 days'); plt=$(iso '+3 days'); short=$(iso '+10 hours')
rows1=("T000126100001,E0398V00,RBC,A,POS,$col,$rbc,DCF1,AVAILABLE,IRRADIATED;LEUKOREDUCED"
       "T000126100002,E0336V00,RBC,O,NEG,$col,$rbc,DCF1,AVAILABLE,"
       "T000126100003,E0336V00,RBC,O,NEG,$col,$rbc2,DCF1,AVAILABLE,"
       "T000126100004,E0336V00,RBC,O,NEG,$col,$rbc,DCF1,AVAILABLE,CMV_NEG"
       "T000126100005,E3046V00,PLT,O,POS,$col,$plt,DCF1,AVAILABLE,IRRADIATED"
       "T000126100006,E0336V00,RBC,O,NEG,$col,$rbc,DCF1,QUARANTINED,"
       "T000126100007,E0336V00,RBC,O,NEG,$col,$short,DCF1,AVAILABLE,")   # 10 h left: under red cells' 48 h, never listed
rows2=("T000126200001,E0336V00,RBC,O,NEG,$col,$rbc,DCF2,AVAILABLE,"
       "T000126200002,E0336V00,RBC,A,NEG,$col,$rbc2,DCF2,AVAILABLE,")
snapshot one DCF1 "$(iso '-10 minutes')" "${rows1[@]}"
snapshot two DCF2 "$(iso '-10 minutes')" "${rows2[@]}"
"$bm" import "$work/one.csv" "$work/two.csv" >"$work/import.out" 2>&1 || bad import "$(tail -2 "$work/import.out")"
"$bm" index build --out "$work/index.bmidx" >/dev/null 2>&1 || bad index "build failed"
key1=$(hospital_key HF1); key2=$(hospital_key HF2)
serve_on_free_port 18700 --rate-limit 500 --rate-burst 500   # the corpus arrives in one burst
# The client's CLI steps (issuing units) act as a dispatcher.
scratch_operator fhirdisp dispatcher >/dev/null || bad operator "could not add a dispatcher"

timeout 300 python3 Jobs/checks/fhir_check.py --base "http://127.0.0.1:$port/fhir" --key "$key1" --other-key "$key2" \
  --bm "$bm" --psql-host "$sockdir" --psql-port "$pgport" --db "$db" >"$work/fhir.json" 2>"$work/fhir.err"
rc=$?
if [ "$rc" -eq 0 ]; then
  ok "client_$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(str(d["steps"]) + "_steps_" + str(d["corpus"]) + "_corpus_" + str(d["validated"]) + "_validated")' "$work/fhir.json")"
else
  bad client "exit $rc: $(tail -c 1500 "$work/fhir.err")"
fi
kill -TERM "$server"; wait "$server" 2>/dev/null; server=""
"$bm" audit verify >"$work/verify.out" 2>&1 && ok audit_verify || bad audit_verify "$(tail -3 "$work/verify.out")"

printf '{"check":"fhir","seconds":%s,"pass":%s,%s}\n' "$(( $(date +%s) - started ))" "$([ "$fail" = 0 ] && echo true || echo false)" "$(IFS=,; echo "${results[*]}")"
exit "$fail"
