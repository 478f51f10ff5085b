-- BloodMatch schema 0006: a unit is its DIN and its product code.
--
-- One donation gives red cells, plasma and platelets under one DIN, and the divisions of a split
-- product share it too; they differ by the product code (ISBT 128 ST-001, Data Structures 001 and
-- 003; Data/SOURCES.md). Every table that names a unit gains `product_code`, and every key, unique
-- index and look-up moves from the DIN to the pair. Sites gain a postal address: a distribution
-- record names the consignee's name and address (21 CFR 606.165).
--
-- Rows written before this migration take the product code of the same DIN in stock (before 0006
-- a DIN appeared at most once per snapshot), else 'UNKNOWN'. Such a legacy row never equals a unit
-- in stock, so it can neither block nor be confused with a current unit; `trace DIN` still finds it.
-- The append-only triggers are disabled only for this backfill, inside the migration's transaction.
-- On the national dataset (1,000,000 units and movements, 100,000 decision units) 0006–0008 take
-- 14.7 s in one transaction, holding the tables' locks: apply outside peak hours
-- (Jobs/bench/migrate-identity.sh).

CREATE TEMPORARY TABLE legacy_product ON COMMIT DROP AS
  SELECT DISTINCT ON (din) din, product_code FROM bm.inventory_units ORDER BY din, snapshot_id DESC;
CREATE UNIQUE INDEX ON legacy_product (din);

-- Stock: the pair is the key within a snapshot; the DIN alone is an index for `trace` and recall.
ALTER TABLE bm.inventory_units DROP CONSTRAINT inventory_units_pkey;
ALTER TABLE bm.inventory_units ADD PRIMARY KEY (snapshot_id, din, product_code);
DROP INDEX bm.inventory_units_din;
CREATE INDEX inventory_units_unit ON bm.inventory_units (din, product_code);
-- ST-001 DS001: α (A–N, P–Z, 1–9) + four digits (the facility), two digits (year), six (sequence).
-- ST-001 DS003 shape: letter, six letters or digits (description, type of collection, division),
-- a lower-case letter or digit. Checked on new rows; rows loaded before the stricter parser stay.
ALTER TABLE bm.inventory_units
  ADD CONSTRAINT inventory_units_din_st001 CHECK (din ~ '^[A-NP-Z1-9][0-9]{12}$') NOT VALID,
  ADD CONSTRAINT inventory_units_product_code_st001 CHECK (product_code ~ '^[A-F][A-Z0-9]{6}[a-z0-9]$') NOT VALID;

-- Units reported current at two centres at once (a transfer in flight), by pair.
ALTER TABLE bm.unit_conflicts ADD COLUMN product_code text;
UPDATE bm.unit_conflicts c SET product_code = coalesce(l.product_code, 'UNKNOWN')
  FROM (SELECT conflict_id, din FROM bm.unit_conflicts) k LEFT JOIN legacy_product l USING (din)
  WHERE k.conflict_id = c.conflict_id;
ALTER TABLE bm.unit_conflicts ALTER COLUMN product_code SET NOT NULL;
DROP INDEX bm.unit_conflicts_din;
CREATE INDEX unit_conflicts_unit ON bm.unit_conflicts (din, product_code);

-- Each unit's history across snapshots.
ALTER TABLE bm.unit_movements DISABLE TRIGGER unit_movements_append_only;
ALTER TABLE bm.unit_movements ADD COLUMN product_code text;
UPDATE bm.unit_movements m SET product_code = coalesce(l.product_code, 'UNKNOWN')
  FROM (SELECT DISTINCT din FROM bm.unit_movements) k LEFT JOIN legacy_product l USING (din)
  WHERE k.din = m.din;
ALTER TABLE bm.unit_movements ENABLE TRIGGER unit_movements_append_only;
ALTER TABLE bm.unit_movements ALTER COLUMN product_code SET NOT NULL;
ALTER TABLE bm.unit_movements DROP CONSTRAINT unit_movements_pkey;
ALTER TABLE bm.unit_movements ADD PRIMARY KEY (din, product_code, snapshot_id);

-- Decisions: the units chosen and the best rejected ones.
ALTER TABLE bm.decision_units DISABLE TRIGGER decision_units_append_only;
ALTER TABLE bm.decision_units ADD COLUMN product_code text;
UPDATE bm.decision_units d SET product_code = coalesce(l.product_code, 'UNKNOWN')
  FROM (SELECT DISTINCT din FROM bm.decision_units) k LEFT JOIN legacy_product l USING (din)
  WHERE k.din = d.din;
ALTER TABLE bm.decision_units ENABLE TRIGGER decision_units_append_only;
ALTER TABLE bm.decision_units ALTER COLUMN product_code SET NOT NULL;
DROP INDEX bm.decision_units_din;
CREATE INDEX decision_units_unit ON bm.decision_units (din, product_code);

-- Holds: the one-holder index is on the pair. The transition trigger keeps the pair fixed too.
ALTER TABLE bm.reservation_units DISABLE TRIGGER reservation_units_transition;
ALTER TABLE bm.reservation_units ADD COLUMN product_code text;
UPDATE bm.reservation_units r SET product_code = coalesce(l.product_code, 'UNKNOWN')
  FROM (SELECT DISTINCT din FROM bm.reservation_units) k LEFT JOIN legacy_product l USING (din)
  WHERE k.din = r.din;
ALTER TABLE bm.reservation_units ENABLE TRIGGER reservation_units_transition;
ALTER TABLE bm.reservation_units ALTER COLUMN product_code SET NOT NULL;
ALTER TABLE bm.reservation_units DROP CONSTRAINT reservation_units_pkey;
ALTER TABLE bm.reservation_units ADD PRIMARY KEY (reservation_id, din, product_code);
DROP INDEX bm.reservation_units_one_holder;
CREATE UNIQUE INDEX reservation_units_one_holder ON bm.reservation_units (din, product_code)
  WHERE state IN ('active', 'issued');
DROP INDEX bm.reservation_units_din;
CREATE INDEX reservation_units_unit ON bm.reservation_units (din, product_code);

-- (The transition trigger is extended to the product code, and to returns, by 0008.)

-- Distribution records: product code and product name beside the component, and the consignee's
-- address (21 CFR 606.165). Legacy rows keep what they had; their address is marked as not recorded.
ALTER TABLE bm.distributions DISABLE TRIGGER distributions_append_only;
ALTER TABLE bm.distributions
  ADD COLUMN product_code text,
  ADD COLUMN product_name text,
  ADD COLUMN consignee_address text;
UPDATE bm.distributions d SET product_code = coalesce(l.product_code, 'UNKNOWN'),
  product_name = d.component || ' (recorded before product names)',
  consignee_address = 'not recorded (issued before addresses were kept)'
  FROM (SELECT distribution_id, din FROM bm.distributions) k LEFT JOIN legacy_product l USING (din)
  WHERE k.distribution_id = d.distribution_id;
ALTER TABLE bm.distributions ENABLE TRIGGER distributions_append_only;
ALTER TABLE bm.distributions
  ALTER COLUMN product_code SET NOT NULL,
  ALTER COLUMN product_name SET NOT NULL,
  ALTER COLUMN consignee_address SET NOT NULL;
ALTER TABLE bm.distributions DROP CONSTRAINT distributions_idempotency_key_din_key;
ALTER TABLE bm.distributions ADD CONSTRAINT distributions_key_unit UNIQUE (idempotency_key, din, product_code);
DROP INDEX bm.distributions_din;
CREATE INDEX distributions_unit ON bm.distributions (din, product_code);

-- Batch allocations.
ALTER TABLE bm.batch_allocations DISABLE TRIGGER batch_allocations_append_only;
ALTER TABLE bm.batch_allocations ADD COLUMN product_code text;
UPDATE bm.batch_allocations a SET product_code = coalesce(l.product_code, 'UNKNOWN')
  FROM (SELECT DISTINCT din FROM bm.batch_allocations) k LEFT JOIN legacy_product l USING (din)
  WHERE k.din = a.din;
ALTER TABLE bm.batch_allocations ENABLE TRIGGER batch_allocations_append_only;
ALTER TABLE bm.batch_allocations ALTER COLUMN product_code SET NOT NULL;
ALTER TABLE bm.batch_allocations DROP CONSTRAINT batch_allocations_pkey;
ALTER TABLE bm.batch_allocations ADD PRIMARY KEY (run_id, din, product_code);
DROP INDEX bm.batch_allocations_din;
CREATE INDEX batch_allocations_unit ON bm.batch_allocations (din, product_code);

-- Sites: a postal address (for hospitals, the consignee address of a distribution record).
ALTER TABLE bm.sites ADD COLUMN address text NOT NULL DEFAULT '';
