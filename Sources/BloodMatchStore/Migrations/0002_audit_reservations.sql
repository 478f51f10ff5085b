-- BloodMatch schema 0002: a tamper-evident hash chain over bm.event_log, reservations that hold several
-- units with database-enforced exclusivity, and distribution records for recall.
--
-- Chain: row_hash = sha256(prev_hash || canonical(row)), computed by a BEFORE INSERT trigger that
-- holds a transaction-scoped advisory lock until commit, so the chain order is the commit order; the
-- previous row is read by the chain_seq index (rows earlier in the same statement are visible to it).
-- bm.audit_head keeps the last position and hash, updated once per statement, so removing rows
-- from the end is seen too. The canonical encoding is length-prefixed UTF-8 with the time as epoch
-- microseconds, so neither TimeZone nor DateStyle nor lc_* settings change it (Data/SOURCES.md §S21).
-- independently in Swift (BloodMatchStore/AuditChain.swift must stay byte-identical to bm.audit_canonical).
-- Sources: 21 CFR 11.10(e) "secure, computer-generated, time-stamped audit trails … Record changes shall
-- not obscure previously recorded information"; 21 CFR 606.165 distribution records.

CREATE TABLE bm.audit_head (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  chain_seq  bigint NOT NULL,
  row_hash   bytea NOT NULL
);
INSERT INTO bm.audit_head (chain_seq, row_hash) VALUES (0, decode(repeat('00', 32), 'hex'));

ALTER TABLE bm.event_log
  ADD COLUMN chain_seq bigint UNIQUE,
  ADD COLUMN prev_hash bytea,
  ADD COLUMN row_hash  bytea;

-- One field: 4-byte big-endian byte length, then the UTF-8 bytes; NULL is the length 0xFFFFFFFF alone
-- (the caller's coalesce). Declared STABLE and not STRICT so PostgreSQL inlines it.
CREATE FUNCTION bm.audit_field(value text) RETURNS bytea
  LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT int4send(octet_length(convert_to(value, 'UTF8'))) || convert_to(value, 'UTF8') $$;

CREATE FUNCTION bm.audit_canonical(e bm.event_log) RETURNS bytea
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS
$$
BEGIN
  RETURN convert_to('bloodmatch-audit/1', 'UTF8')
    || coalesce(bm.audit_field(e.chain_seq::text), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(((extract(epoch FROM e.occurred_at) * 1000000)::bigint)::text), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.actor_role), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.actor), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.action), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.subject), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.payload::text), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.request_id), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.trace_id), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.client_addr), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.corrects_seq::text), '\xffffffff'::bytea);
END
$$;

-- Runs as the owner (SECURITY DEFINER) so the writing roles never touch bm.audit_head themselves.
-- The database clock and the connected role are taken here, whatever the client sent. Writers use
-- READ COMMITTED: under REPEATABLE READ a concurrent append would make the unique chain_seq refuse
-- the insert (an error, never a fork).
CREATE FUNCTION bm.audit_chain() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog AS
$$
DECLARE
  last_seq bigint;
  last_hash bytea;
BEGIN
  PERFORM pg_advisory_xact_lock(7301686512850213888);
  SELECT e.chain_seq, e.row_hash INTO last_seq, last_hash FROM bm.event_log e
    WHERE e.chain_seq IS NOT NULL ORDER BY e.chain_seq DESC LIMIT 1;
  NEW.occurred_at := clock_timestamp();
  NEW.actor_role := session_user;
  NEW.client_addr := coalesce(NEW.client_addr, host(inet_client_addr()), 'local');
  NEW.chain_seq := coalesce(last_seq, 0) + 1;
  NEW.prev_hash := coalesce(last_hash, decode(repeat('00', 32), 'hex'));
  NEW.row_hash := sha256(NEW.prev_hash || bm.audit_canonical(NEW));
  RETURN NEW;
END
$$;

CREATE FUNCTION bm.audit_move_head() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog AS
$$
BEGIN
  UPDATE bm.audit_head h SET chain_seq = e.chain_seq, row_hash = e.row_hash
    FROM (SELECT chain_seq, row_hash FROM bm.event_log ORDER BY chain_seq DESC LIMIT 1) e;
  RETURN NULL;
END
$$;

-- Rows written before this migration join the chain in their sequence order.
DO $$
DECLARE
  r bm.event_log;
  head bm.audit_head;
BEGIN
  ALTER TABLE bm.event_log DISABLE TRIGGER event_log_append_only;
  FOR r IN SELECT * FROM bm.event_log ORDER BY seq LOOP
    SELECT * INTO head FROM bm.audit_head;
    r.chain_seq := head.chain_seq + 1;
    r.prev_hash := head.row_hash;
    r.client_addr := coalesce(r.client_addr, 'local');
    r.row_hash := sha256(r.prev_hash || bm.audit_canonical(r));
    UPDATE bm.event_log SET chain_seq = r.chain_seq, prev_hash = r.prev_hash, row_hash = r.row_hash,
      client_addr = r.client_addr WHERE seq = r.seq;
    UPDATE bm.audit_head SET chain_seq = r.chain_seq, row_hash = r.row_hash;
  END LOOP;
  ALTER TABLE bm.event_log ENABLE TRIGGER event_log_append_only;
END
$$;

ALTER TABLE bm.event_log
  ALTER COLUMN chain_seq SET NOT NULL,
  ALTER COLUMN prev_hash SET NOT NULL,
  ALTER COLUMN row_hash SET NOT NULL;

CREATE TRIGGER event_log_chain BEFORE INSERT ON bm.event_log
  FOR EACH ROW EXECUTE FUNCTION bm.audit_chain();
CREATE TRIGGER event_log_head AFTER INSERT ON bm.event_log
  FOR EACH STATEMENT EXECUTE FUNCTION bm.audit_move_head();

-- Reservations: one hold covers one or more units. The 0001 table held one unit per row and was
-- never written; it is replaced.
DROP TABLE bm.reservations;

CREATE TABLE bm.reservations (
  reservation_id       uuid PRIMARY KEY,
  source               text NOT NULL CHECK (source IN ('decision', 'batch', 'manual')),
  decision_id          uuid REFERENCES bm.decisions,
  batch_run_id         uuid,
  hospital             text NOT NULL,
  reserved_by          text NOT NULL,
  idempotency_key      text NOT NULL UNIQUE,
  request_fingerprint  text NOT NULL,
  held_until           timestamptz NOT NULL,
  created_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
  request_id           text,
  trace_id             text
);
CREATE INDEX reservations_hospital ON bm.reservations (hospital, created_at DESC);
CREATE INDEX reservations_decision ON bm.reservations (decision_id);

CREATE TABLE bm.reservation_units (
  reservation_id    uuid NOT NULL REFERENCES bm.reservations,
  din               text NOT NULL,
  centre            text NOT NULL,
  component         text NOT NULL,
  abo               text NOT NULL,
  rhd               text NOT NULL,
  expires_at        timestamptz NOT NULL,
  state             text NOT NULL CHECK (state IN ('active', 'released', 'expired', 'issued')),
  state_changed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (reservation_id, din)
);
-- No unit is ever held by two reservations, and an issued unit is never held or issued again.
CREATE UNIQUE INDEX reservation_units_one_holder ON bm.reservation_units (din)
  WHERE state IN ('active', 'issued');
CREATE INDEX reservation_units_din ON bm.reservation_units (din);

-- A unit leaves 'active' at most once, and 'released', 'expired' and 'issued' are final.
CREATE FUNCTION bm.reservation_unit_transition() RETURNS trigger
  LANGUAGE plpgsql AS
$$
BEGIN
  IF OLD.state <> 'active' OR NEW.state = 'active'
     OR NEW.din <> OLD.din OR NEW.reservation_id <> OLD.reservation_id OR NEW.centre <> OLD.centre
     OR NEW.component <> OLD.component OR NEW.abo <> OLD.abo OR NEW.rhd <> OLD.rhd
     OR NEW.expires_at <> OLD.expires_at THEN
    RAISE EXCEPTION 'reservation unit % of % cannot change from % to %', OLD.din, OLD.reservation_id,
      OLD.state, NEW.state USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  NEW.state_changed_at := clock_timestamp();
  RETURN NEW;
END
$$;
CREATE TRIGGER reservation_units_transition BEFORE UPDATE ON bm.reservation_units
  FOR EACH ROW EXECUTE FUNCTION bm.reservation_unit_transition();
CREATE TRIGGER reservation_units_no_delete BEFORE DELETE ON bm.reservation_units
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER reservations_append_only BEFORE UPDATE OR DELETE ON bm.reservations
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER reservations_no_truncate BEFORE TRUNCATE ON bm.reservations
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER reservation_units_no_truncate BEFORE TRUNCATE ON bm.reservation_units
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();

-- Distribution records (21 CFR 606.165): consignee, date, unit number, product, expiry, so the
-- distribution of each unit "can be readily determined to facilitate its recall".
CREATE TABLE bm.distributions (
  distribution_id   uuid PRIMARY KEY,
  reservation_id    uuid NOT NULL REFERENCES bm.reservations,
  din               text NOT NULL,
  consignee         text NOT NULL,
  consignee_name    text NOT NULL,
  consignee_place   text NOT NULL,
  centre            text NOT NULL,
  component         text NOT NULL,
  abo               text NOT NULL,
  rhd               text NOT NULL,
  quantity          integer NOT NULL DEFAULT 1 CHECK (quantity = 1),
  expires_at        timestamptz NOT NULL,
  issued_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  issued_by         text NOT NULL,
  idempotency_key   text NOT NULL,
  corrects          uuid REFERENCES bm.distributions,
  note              text,
  UNIQUE (idempotency_key, din)
);
CREATE INDEX distributions_din ON bm.distributions (din);
CREATE INDEX distributions_issued ON bm.distributions (issued_at);
CREATE TRIGGER distributions_append_only BEFORE UPDATE OR DELETE ON bm.distributions
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER distributions_no_truncate BEFORE TRUNCATE ON bm.distributions
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();

-- The append-only tables of 0001 also refuse TRUNCATE.
CREATE TRIGGER decision_units_no_truncate BEFORE TRUNCATE ON bm.decision_units
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER import_runs_no_truncate BEFORE TRUNCATE ON bm.import_runs
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER rejected_rows_no_truncate BEFORE TRUNCATE ON bm.rejected_rows
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();

-- Each unit's history across snapshots, written by the importer in the load's transaction: the
-- snapshot where it appeared, changed status or expiry, or disappeared (traceability for recall;
-- EU 2002/98/EC Art. 14, 30 years).
CREATE TABLE bm.unit_movements (
  din          text NOT NULL,
  centre       text NOT NULL,
  snapshot_id  bigint NOT NULL REFERENCES bm.inventory_snapshots,
  change       text NOT NULL CHECK (change IN ('appeared', 'changed', 'disappeared')),
  status       text NOT NULL,
  expires_at   timestamptz NOT NULL,
  PRIMARY KEY (din, snapshot_id)
);
CREATE TRIGGER unit_movements_append_only BEFORE UPDATE OR DELETE ON bm.unit_movements
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER unit_movements_no_truncate BEFORE TRUNCATE ON bm.unit_movements
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();
-- Stock loaded before this migration counts as having appeared in its current snapshot.
INSERT INTO bm.unit_movements (din, centre, snapshot_id, change, status, expires_at)
  SELECT u.din, s.centre, u.snapshot_id, 'appeared', u.status, u.expires_at
  FROM bm.inventory_units u JOIN bm.inventory_snapshots s USING (snapshot_id);
GRANT SELECT, INSERT ON bm.unit_movements TO bloodmatch_import;
GRANT SELECT ON bm.unit_movements TO bloodmatch_app;

REVOKE ALL ON bm.audit_head FROM PUBLIC;
GRANT SELECT ON bm.audit_head TO bloodmatch_app, bloodmatch_import;
GRANT SELECT, INSERT ON bm.reservations, bm.distributions TO bloodmatch_app;
GRANT SELECT, INSERT, UPDATE (state) ON bm.reservation_units TO bloodmatch_app;
GRANT SELECT ON bm.reservations, bm.reservation_units, bm.distributions TO bloodmatch_import;
