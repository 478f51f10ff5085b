-- BloodMatch schema 0008: the unit's life after issue, and keys that belong to one operation.
--
-- available (in the snapshot in force) → held (reservation_units 'active') → issued (a distribution
-- record) → received (the hospital confirms receipt) → transfused | returned | discarded. Each step
-- after issue is one row of bm.unit_fates, append-only, written by one operation (`bloodmatch unit …`
-- or the hospital API), and checked here: receipt only of an issued unit and only once; a final fate
-- only after receipt and only once. A return also ends the hold row (`issued` → `returned`), so the
-- one-holder index lets the unit be held again, but only once its centre's feed lists it again in a
-- snapshot newer than the return (the centre inspects a returned unit before it re-enters stock;
-- enforced by the offer checks, which compare the return time with the snapshot's as_of).
-- 21 CFR 606.165 asks for receipt records beside distribution records; EU 2002/98/EC Art. 14 and
-- UK BSQR reg. 8 ask for each unit's final fate (Data/SOURCES.md).

CREATE TABLE bm.unit_fates (
  fate_id          uuid PRIMARY KEY,
  distribution_id  uuid NOT NULL REFERENCES bm.distributions,
  din              text NOT NULL,
  product_code     text NOT NULL,
  event            text NOT NULL CHECK (event IN ('received', 'transfused', 'returned', 'discarded')),
  -- A fixed list (BloodMatchCore.UnitFateReason); returned and discarded need one, the others none.
  reason           text CHECK (reason IN ('no_longer_required', 'ordered_in_error', 'wrong_product_supplied',
                     'expired', 'temperature_excursion', 'damaged_container', 'failed_visual_inspection',
                     'recalled', 'time_out_of_storage_exceeded')),
  note             text,
  hospital         text NOT NULL,
  recorded_by      text NOT NULL,
  recorded_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  idempotency_key  text NOT NULL UNIQUE,
  request_id       text,
  trace_id         text,
  CHECK ((event IN ('returned', 'discarded')) = (reason IS NOT NULL))
);
CREATE UNIQUE INDEX unit_fates_one_receipt ON bm.unit_fates (distribution_id) WHERE event = 'received';
CREATE UNIQUE INDEX unit_fates_one_final ON bm.unit_fates (distribution_id) WHERE event <> 'received';
CREATE INDEX unit_fates_unit ON bm.unit_fates (din, product_code);

-- The order of the life is the database's, whatever the client does.
CREATE FUNCTION bm.unit_fate_order() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  d bm.distributions;
BEGIN
  SELECT * INTO d FROM bm.distributions WHERE distribution_id = NEW.distribution_id;
  IF d.din <> NEW.din OR d.product_code <> NEW.product_code OR d.consignee <> NEW.hospital THEN
    RAISE EXCEPTION 'unit fate names % % at %, but distribution % is % % to %', NEW.din, NEW.product_code,
      NEW.hospital, NEW.distribution_id, d.din, d.product_code, d.consignee USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.event <> 'received' AND NOT EXISTS (
       SELECT 1 FROM bm.unit_fates f WHERE f.distribution_id = NEW.distribution_id AND f.event = 'received') THEN
    RAISE EXCEPTION 'unit % % cannot be % before its receipt is recorded', NEW.din, NEW.product_code, NEW.event
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  NEW.recorded_at := clock_timestamp();
  RETURN NEW;
END $$;
CREATE TRIGGER unit_fates_order BEFORE INSERT ON bm.unit_fates
  FOR EACH ROW EXECUTE FUNCTION bm.unit_fate_order();
CREATE TRIGGER unit_fates_append_only BEFORE UPDATE OR DELETE ON bm.unit_fates
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER unit_fates_no_truncate BEFORE TRUNCATE ON bm.unit_fates
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();

-- Hold rows: 'active' changes once to released, expired or issued; 'issued' changes once more, to
-- 'returned', and only together with a 'returned' fate (checked by the writer in one transaction).
ALTER TABLE bm.reservation_units DROP CONSTRAINT reservation_units_state_check;
ALTER TABLE bm.reservation_units ADD CONSTRAINT reservation_units_state_check
  CHECK (state IN ('active', 'released', 'expired', 'issued', 'returned'));
CREATE OR REPLACE FUNCTION bm.reservation_unit_transition() RETURNS trigger
  LANGUAGE plpgsql AS
$$
BEGIN
  IF NOT ((OLD.state = 'active' AND NEW.state IN ('released', 'expired', 'issued'))
          OR (OLD.state = 'issued' AND NEW.state = 'returned'))
     OR NEW.din <> OLD.din OR NEW.product_code <> OLD.product_code
     OR NEW.reservation_id <> OLD.reservation_id OR NEW.centre <> OLD.centre
     OR NEW.component <> OLD.component OR NEW.abo <> OLD.abo OR NEW.rhd <> OLD.rhd
     OR NEW.expires_at <> OLD.expires_at THEN
    RAISE EXCEPTION 'reservation unit % % of % cannot change from % to %', OLD.din, OLD.product_code,
      OLD.reservation_id, OLD.state, NEW.state USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.state = 'returned' AND NOT EXISTS (
       SELECT 1 FROM bm.unit_fates f JOIN bm.distributions d USING (distribution_id)
       WHERE d.reservation_id = OLD.reservation_id AND f.din = OLD.din AND f.product_code = OLD.product_code
         AND f.event = 'returned') THEN
    RAISE EXCEPTION 'reservation unit % % of % cannot become returned without a recorded return', OLD.din,
      OLD.product_code, OLD.reservation_id USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  NEW.state_changed_at := clock_timestamp();
  RETURN NEW;
END
$$;

-- Why a unit can no longer be held or issued from `centre`, read against the snapshots in force
-- (NULL when it is AVAILABLE there, unexpired, and current at no other centre). One function, so a
-- hold, an issue, `reservation show`, the API and `trace` give the same reason.
CREATE FUNCTION bm.iso_utc(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;
CREATE FUNCTION bm.unit_blocker(p_din text, p_code text, p_centre text) RETURNS text
  LANGUAGE sql STABLE AS
$$
  SELECT CASE
    WHEN cs.centre IS NULL THEN 'centre ' || p_centre || ' has no snapshot in force'
    WHEN here.status IS NULL AND elsewhere.centre IS NOT NULL
      THEN 'moved: no longer in the stock of ' || p_centre || ', now listed by ' || elsewhere.centre
    WHEN here.status IS NULL
      THEN 'no longer in the stock of ' || p_centre || ' (snapshot ' || cs.current_snapshot_id || ' as of ' || bm.iso_utc(cs.last_as_of) || ')'
    WHEN here.status <> 'AVAILABLE'
      THEN here.status || ' at ' || p_centre || ' (snapshot ' || cs.current_snapshot_id || ' as of ' || bm.iso_utc(cs.last_as_of) || ')'
    WHEN elsewhere.centre IS NOT NULL
      THEN 'also current at ' || elsewhere.centre || ': held for a human to resolve'
    WHEN here.expires_at <= now() THEN 'expired ' || bm.iso_utc(here.expires_at)
  END
  FROM (SELECT 1) one
  LEFT JOIN bm.centre_status cs ON cs.centre = p_centre
  LEFT JOIN LATERAL (SELECT u.status, u.expires_at FROM bm.inventory_units u
                     WHERE u.snapshot_id = cs.current_snapshot_id AND u.din = p_din AND u.product_code = p_code) here ON true
  LEFT JOIN LATERAL (SELECT s.centre FROM bm.inventory_units u JOIN bm.centre_status s ON s.current_snapshot_id = u.snapshot_id
                     WHERE u.din = p_din AND u.product_code = p_code AND s.centre <> p_centre
                     ORDER BY s.centre LIMIT 1) elsewhere ON true
$$;

-- An issue key belongs to one reservation: the records it wrote name it, and a second use of the key
-- for another reservation is refused by the writer (and cannot add rows: the key and unit are unique).
CREATE INDEX distributions_key ON bm.distributions (idempotency_key);

GRANT SELECT, INSERT ON bm.unit_fates TO bloodmatch_app;
GRANT SELECT ON bm.unit_fates TO bloodmatch_import;
