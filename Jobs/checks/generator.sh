#!/usr/bin/env bash
# `bloodmatch generate` writes real-shaped donations: units that share a DIN (one donation's red
# cells, plasma and platelets; the divisions A0, B0, … of a split product) with distinct product
# codes, one group and collection time per donation, no DIN and product code twice anywhere, and
# sites with a city-level address in the 7-column site list (Jobs/checks/generated_data.py checks
# each dataset). Also: the same seed gives byte-identical files; the committed Data/sites.csv read
# with --sites-file is written back byte for byte; a site list without addresses is written back
# in the 6-column form. No database. Prints one JSON line; exits 1 when a check fails.
#
#   Jobs/checks/generator.sh        env: GENERATOR_UNITS (30000), BLOODMATCH_BIN
set -euo pipefail
cd "$(dirname "$0")/../.."
bm=${BLOODMATCH_BIN:-.build/debug/bloodmatch}
[ -x "$bm" ] || swift build --product bloodmatch >/dev/null
units=${GENERATOR_UNITS:-30000}
work=$(mktemp -d /tmp/bm-generator.XXXXXX)
trap 'rm -rf "$work"' EXIT
as_of=2026-12-01T00:00:00Z
gen() { timeout 120 "$bm" generate --as-of "$as_of" "$@" >/dev/null; }
results=()
fail=0
ok() { results+=("\"$1\":\"ok\""); }
bad() { results+=("\"$1\":\"FAILED: $(printf '%s' "$2" | head -c 300 | tr -d '"\\\n')\""); fail=1; }

gen --seed 11 --sites 60 --units "$units" --out "$work/a"
gen --seed 11 --sites 60 --units "$units" --out "$work/b"
if diff -r "$work/a" "$work/b" >/dev/null; then ok deterministic; else bad deterministic "the same seed gave different files"; fi

facts=$(timeout 120 python3 Jobs/checks/generated_data.py "$work/a" --expect-units "$units") && ok drawn_sites || bad drawn_sites "$facts"

gen --seed 2026 --sites-file Data/sites.csv --units 6000 --out "$work/sample"
sample=$(timeout 120 python3 Jobs/checks/generated_data.py "$work/sample" --expect-units 6000) && ok committed_sites || bad committed_sites "$sample"
if cmp -s Data/sites.csv "$work/sample/sites.csv"; then ok sites_round_trip; else bad sites_round_trip "Data/sites.csv is not written back byte for byte"; fi

printf 'site_id,name,kind,latitude,longitude,region\nDC1,Old Centre,distribution_centre,-33.895678,151.184272,AU-02\nH1,Old Hospital,hospital,-33.868800,151.209300,AU-02\n' >"$work/old-sites.csv"
gen --seed 3 --sites-file "$work/old-sites.csv" --units 100 --out "$work/old"
if [ "$(head -1 "$work/old/sites.csv")" = "site_id,name,kind,latitude,longitude,region" ] && cmp -s "$work/old-sites.csv" "$work/old/sites.csv"; then
  ok sites_without_address
else
  bad sites_without_address "$(head -2 "$work/old/sites.csv")"
fi

pass=true; [ "$fail" -eq 0 ] || pass=false
printf '{"check":"generator","pass":%s,"units":%s,"drawn":%s,"results":{%s}}\n' "$pass" "$units" "${facts:-null}" "$(IFS=,; echo "${results[*]}")"
$pass
