#!/usr/bin/env bash
# Migration benchmark: migrations 0006–0008 (unit identity, snapshot identity, unit lifecycle) on a
# database at schema 5 holding the national dataset (100 centres, 1,000,000 units in force, one
# movement per unit) and a history of decisions, holds and distribution records; next to it, in the
# same run, a `psql \copy` read of bm.inventory_units (the anchor: how long this server takes to
# touch the same rows). Schema 5 is built from the committed 0001–0005 files with psql and recorded
# as applied with their checksums, so `bloodmatch migrate` applies exactly 0006–0008.
#
#   Jobs/bench/migrate-identity.sh     (DECISIONS=50000 by default; generates var/bench/national once)
#
# Prints one JSON line: the migration's seconds, the rows it converted per table, the anchor's
# seconds, and whether `audit verify` is clean afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
data="$root/var/bench/national"
decisions=${DECISIONS:-50000}
Jobs/db.sh start >/dev/null 2>&1
eval "$(Jobs/db.sh env 2>/dev/null)"
bm=.build/release/bloodmatch
{ [ -x .build/debug/bloodmatch ] && { [ ! -x "$bm" ] || [ .build/debug/bloodmatch -nt "$bm" ]; }; } && bm=.build/debug/bloodmatch
[ -f "$data/sites.csv" ] || "$bm" generate --seed 42 --sites 500 --units 1000000 --out "$data" >/dev/null
sockdir=$(dirname "$BLOODMATCH_DB_SOCKET"); port=${BLOODMATCH_DB_SOCKET##*.}
db="bm_bench_migrate_$$"
work=$(mktemp -d /tmp/bm-bench-migrate.XXXXXX)
chmod 755 "$work"
export BLOODMATCH_DB_NAME=$db BLOODMATCH_LOG_LEVEL=error
pg() { runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" "$@"; }
trap 'pg -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
pg -d postgres -c "CREATE DATABASE $db OWNER bloodmatch_owner TEMPLATE template0"

# Schema 5, as `bloodmatch migrate` of a build before 0006 leaves it.
pg -d "$db" -c "CREATE SCHEMA bm_meta AUTHORIZATION bloodmatch_owner" \
  -c "CREATE TABLE bm_meta.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL DEFAULT current_user)" \
  -c "ALTER TABLE bm_meta.schema_migrations OWNER TO bloodmatch_owner"
for f in Sources/BloodMatchStore/Migrations/000[1-5]_*.sql; do
  base=$(basename "$f" .sql); version=$((10#${base%%_*})); name=${base#*_}
  cp "$f" "$work/m.sql"; chmod 644 "$work/m.sql"
  pg -d "$db" -1 -c "SET ROLE bloodmatch_owner" -f "$work/m.sql" >/dev/null
  pg -d "$db" -c "INSERT INTO bm_meta.schema_migrations (version, name, sha256) VALUES ($version, '$name', '$(sha256sum "$f" | cut -c1-64)')"
done

# The national stock in force: sites, one snapshot per centre, every unit, one 'appeared' movement each.
cp "$data/sites.csv" "$work/sites.csv"; chmod 644 "$work/sites.csv"
pg -d "$db" -c "\\copy bm.sites (site_id, name, kind, latitude, longitude, region) FROM '$work/sites.csv' CSV HEADER"
: >"$work/units.tsv"
n=0
for csv in "$data"/snapshots/*.csv; do
  n=$((n + 1))
  awk -F, -v OFS='\t' -v sid="$n" 'NR > 1 {print sid, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NR}' "$csv" >>"$work/units.tsv"
  centre=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["centre"])' "${csv%.csv}.ctl.json")
  echo "$n	$centre" >>"$work/centres.tsv"
done
pg -d "$db" -c "SET session_replication_role = replica" \
  -c "INSERT INTO bm.inventory_snapshots (centre, as_of, file_sha256, row_count) SELECT site_id, now() - interval '10 minutes', md5(site_id), 0 FROM bm.sites WHERE kind = 'distribution_centre' ORDER BY site_id" \
  -c "CREATE TEMP TABLE c (n bigint, centre text)" -c "\\copy c FROM '$work/centres.tsv'" \
  -c "CREATE TEMP TABLE u (LIKE bm.inventory_units)" -c "\\copy u FROM '$work/units.tsv'" \
  -c "INSERT INTO bm.inventory_units SELECT s.snapshot_id, u.din, u.product_code, u.component, u.abo, u.rhd, u.collected_at, u.expires_at, u.site_id, u.status, u.attributes, u.line FROM u JOIN c ON c.n = u.snapshot_id JOIN bm.inventory_snapshots s ON s.centre = c.centre" \
  -c "INSERT INTO bm.centre_status SELECT centre, snapshot_id, as_of, now() FROM bm.inventory_snapshots" \
  -c "INSERT INTO bm.unit_movements SELECT u.din, s.centre, u.snapshot_id, 'appeared', u.status, u.expires_at FROM bm.inventory_units u JOIN bm.inventory_snapshots s USING (snapshot_id)" \
  -c "INSERT INTO bm.decisions (decision_id, request_id, hospital, requested_by, outcome, request, rationale, policy_version, evaluated_at)
        SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'bench-' || g, 'H0001', 'bench', 'fulfilled', '{}', '{}', 'bench', now()
        FROM generate_series(1, $decisions) g" \
  -c "CREATE TEMP TABLE numbered AS SELECT din, site_id, row_number() OVER (ORDER BY din) AS k FROM bm.inventory_units" \
  -c "INSERT INTO bm.decision_units (decision_id, rank, din, centre, chosen, reason)
        SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, r, x.din, x.site_id, r = 1, 'bench'
        FROM generate_series(1, $decisions) g CROSS JOIN generate_series(1, 2) r
        JOIN numbered x ON x.k = 1 + ((g * 7919 + r * 104729) % (SELECT count(*) FROM numbered))" \
  -c "INSERT INTO bm.reservations (reservation_id, source, decision_id, hospital, reserved_by, idempotency_key, request_fingerprint, held_until)
        SELECT decision_id, 'decision', decision_id, 'H0001', 'bench', request_id, 'x', now() - interval '1 hour' FROM bm.decisions WHERE (hashtext(request_id) % 5) = 0" \
  -c "INSERT INTO bm.reservation_units (reservation_id, din, centre, component, abo, rhd, expires_at, state)
        SELECT r.reservation_id, du.din, du.centre, 'RBC', 'O', 'NEG', now() + interval '10 days', 'expired'
        FROM bm.reservations r JOIN bm.decision_units du ON du.decision_id = r.decision_id AND du.rank = 1" \
  -c "INSERT INTO bm.distributions (distribution_id, reservation_id, din, consignee, consignee_name, consignee_place, centre, component, abo, rhd, expires_at, issued_by, idempotency_key)
        SELECT gen_random_uuid(), ru.reservation_id, ru.din, 'H0001', 'Bench Hospital', 'AU-02', ru.centre, 'RBC', 'O', 'NEG', ru.expires_at, 'bench', 'i-' || ru.reservation_id
        FROM bm.reservation_units ru WHERE (hashtext(ru.din) % 2) = 0" >/dev/null
counts() { pg -d "$db" -c "SELECT (SELECT count(*) FROM bm.inventory_units) || ',' || (SELECT count(*) FROM bm.unit_movements) || ',' || (SELECT count(*) FROM bm.decision_units) || ',' || (SELECT count(*) FROM bm.reservation_units) || ',' || (SELECT count(*) FROM bm.distributions)"; }
IFS=, read -r units movements dunits runits dists < <(counts)
pg -d "$db" -c "VACUUM ANALYZE" -c "CHECKPOINT"

# Anchor: read the same stock with \copy.
t0=$(date +%s.%N)
pg -d "$db" -c "\\copy bm.inventory_units TO '/dev/null'"
anchor_s=$(python3 -c "import sys; print($(date +%s.%N) - $t0)")

t0=$(date +%s.%N)
"$bm" migrate >"$work/migrate.out" 2>&1 || { echo "migrate failed:" >&2; cat "$work/migrate.out" >&2; exit 1; }
migrate_s=$(python3 -c "import sys; print($(date +%s.%N) - $t0)")
unknown=$(pg -d "$db" -c "SELECT count(*) FROM bm.decision_units WHERE product_code = 'UNKNOWN'")
version=$(pg -d "$db" -c "SELECT max(version) FROM bm_meta.schema_migrations")
printf '{"bench":"migrate-identity","migrations":"0006-0008","schema_after":%s,"inventory_units":%s,"unit_movements":%s,"decision_units":%s,"reservation_units":%s,"distributions":%s,"legacy_rows_without_product_code":%s,"migrate_seconds":%.2f,"anchor_copy_read_seconds":%.2f,"ratio":%.2f}\n' \
  "$version" "$units" "$movements" "$dunits" "$runits" "$dists" "$unknown" "$migrate_s" "$anchor_s" "$(python3 -c "print($migrate_s / $anchor_s)")"
