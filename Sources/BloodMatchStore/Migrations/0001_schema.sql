-- BloodMatch schema, version 1: sites, inventory snapshots and units, import runs and rejected rows,
-- match requests and decisions with rationale, reservations, and the append-only event log.
-- Runs as bloodmatch_owner inside one transaction. Roles are cluster-wide and are created by the
-- database administrator (Jobs/db.sh for the embedded default); this file only grants to them.

CREATE SCHEMA bm AUTHORIZATION bloodmatch_owner;
REVOKE ALL ON SCHEMA bm FROM PUBLIC;
GRANT USAGE ON SCHEMA bm TO bloodmatch_app, bloodmatch_import;

-- Refuses any change to a row of an append-only table (privileges already refuse it to the
-- application and import roles; the trigger also stops the owner by mistake).
CREATE FUNCTION bm.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'bm.%: % is refused: this table is append-only; write a correcting row instead',
    TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TABLE bm.sites (
  site_id      text PRIMARY KEY CHECK (site_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
  name         text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('distribution_centre', 'hospital')),
  latitude     double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
  longitude    double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
  region       text NOT NULL,
  -- A centre with no good snapshot within this interval is stale.
  expected_feed_interval interval NOT NULL DEFAULT interval '30 minutes',
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bm.import_runs (
  run_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source        text NOT NULL,                -- file path, spool path or URL
  file_name     text NOT NULL,
  file_sha256   text,
  centre        text,
  as_of         timestamptz,
  started_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz NOT NULL DEFAULT now(),
  rows_total    integer NOT NULL DEFAULT 0,
  rows_accepted integer NOT NULL DEFAULT 0,
  rows_rejected integer NOT NULL DEFAULT 0,
  outcome       text NOT NULL CHECK (outcome IN ('loaded', 'loaded_with_rejections', 'refused',
                   'already_imported', 'replay_refused', 'failed')),
  message       text NOT NULL DEFAULT '',
  snapshot_id   bigint,
  duration_ms   integer NOT NULL DEFAULT 0,
  operator      text NOT NULL DEFAULT current_user
);
CREATE INDEX import_runs_centre ON bm.import_runs (centre, run_id DESC);

CREATE TABLE bm.rejected_rows (
  run_id   bigint NOT NULL REFERENCES bm.import_runs,
  file     text NOT NULL,
  line     integer NOT NULL,
  field    text NOT NULL,
  value    text NOT NULL,
  reason   text NOT NULL,
  message  text NOT NULL
);
CREATE INDEX rejected_rows_run ON bm.rejected_rows (run_id, line);

CREATE TABLE bm.inventory_snapshots (
  snapshot_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  centre       text NOT NULL REFERENCES bm.sites,
  as_of        timestamptz NOT NULL,
  file_sha256  text NOT NULL,
  row_count    integer NOT NULL,
  imported_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (centre, file_sha256)
);

-- The snapshot in force per centre: swapped in the same transaction that loads the new units.
CREATE TABLE bm.centre_status (
  centre               text PRIMARY KEY REFERENCES bm.sites,
  current_snapshot_id  bigint NOT NULL REFERENCES bm.inventory_snapshots,
  last_as_of           timestamptz NOT NULL,
  last_import_at       timestamptz NOT NULL
);

-- Units of the snapshots in force (and of superseded ones until pruned).
CREATE TABLE bm.inventory_units (
  snapshot_id   bigint NOT NULL REFERENCES bm.inventory_snapshots,
  din           text NOT NULL CHECK (din ~ '^[A-NP-Z1-9][A-Z0-9]{12}$'),
  product_code  text NOT NULL,
  component     text NOT NULL CHECK (component IN ('RBC', 'PLT', 'PLASMA', 'CRYO', 'WB')),
  abo           text NOT NULL CHECK (abo IN ('O', 'A', 'B', 'AB')),
  rhd           text NOT NULL CHECK (rhd IN ('POS', 'NEG')),
  collected_at  timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,
  site_id       text NOT NULL,
  status        text NOT NULL CHECK (status IN ('AVAILABLE', 'RESERVED', 'QUARANTINED')),
  attributes    text NOT NULL DEFAULT '',
  line          integer NOT NULL,
  PRIMARY KEY (snapshot_id, din),
  CHECK (collected_at < expires_at)
);
CREATE INDEX inventory_units_din ON bm.inventory_units (din);

-- DINs reported as current stock at two centres at once (a transfer in flight): held for review.
CREATE TABLE bm.unit_conflicts (
  conflict_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  din            text NOT NULL,
  centre         text NOT NULL,
  other_centre   text NOT NULL,
  snapshot_id    bigint NOT NULL REFERENCES bm.inventory_snapshots,
  detected_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX unit_conflicts_din ON bm.unit_conflicts (din);

CREATE TABLE bm.decisions (
  decision_id     uuid PRIMARY KEY,
  request_id      text NOT NULL UNIQUE,        -- client-supplied; a retry returns this row
  hospital        text,
  requested_by    text NOT NULL,
  outcome         text NOT NULL CHECK (outcome IN ('fulfilled', 'partial', 'none_compatible_available',
                     'unable_to_verify')),
  request         jsonb NOT NULL,
  rationale       jsonb NOT NULL,
  policy_version  text NOT NULL,
  index_version   text,
  evaluated_at    timestamptz NOT NULL,
  recorded_at     timestamptz NOT NULL DEFAULT now(),
  trace_id        text,
  corrects        uuid REFERENCES bm.decisions
);
CREATE INDEX decisions_hospital ON bm.decisions (hospital, recorded_at DESC);

CREATE TABLE bm.decision_units (
  decision_id  uuid NOT NULL REFERENCES bm.decisions,
  rank         integer NOT NULL,
  din          text NOT NULL,
  centre       text NOT NULL,
  chosen       boolean NOT NULL,
  reason       text NOT NULL,
  PRIMARY KEY (decision_id, rank)
);
CREATE INDEX decision_units_din ON bm.decision_units (din);

CREATE TABLE bm.reservations (
  reservation_id   uuid PRIMARY KEY,
  decision_id      uuid REFERENCES bm.decisions,
  din              text NOT NULL,
  hospital         text NOT NULL,
  state            text NOT NULL CHECK (state IN ('active', 'released', 'expired', 'issued')),
  held_until       timestamptz NOT NULL,
  idempotency_key  text NOT NULL UNIQUE,
  created_at       timestamptz NOT NULL DEFAULT now()
);
-- No unit is ever held by two active reservations.
CREATE UNIQUE INDEX reservations_one_active_per_unit ON bm.reservations (din) WHERE state = 'active';

CREATE TABLE bm.event_log (
  seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  occurred_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_role   text NOT NULL DEFAULT current_user,
  actor        text NOT NULL,
  action       text NOT NULL,
  subject      text NOT NULL,
  payload      jsonb NOT NULL DEFAULT '{}',
  request_id   text,
  trace_id     text,
  client_addr  text,
  corrects_seq bigint REFERENCES bm.event_log
);
CREATE INDEX event_log_subject ON bm.event_log (subject, seq);

CREATE TRIGGER event_log_append_only BEFORE UPDATE OR DELETE ON bm.event_log
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON bm.event_log
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON bm.decisions
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON bm.decisions
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER decision_units_append_only BEFORE UPDATE OR DELETE ON bm.decision_units
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER import_runs_append_only BEFORE UPDATE OR DELETE ON bm.import_runs
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER rejected_rows_append_only BEFORE UPDATE OR DELETE ON bm.rejected_rows
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();

-- Privileges: append-only tables get INSERT and SELECT, nothing more.
GRANT SELECT ON bm.sites, bm.inventory_snapshots, bm.centre_status, bm.inventory_units,
  bm.import_runs, bm.unit_conflicts TO bloodmatch_app;
GRANT SELECT, INSERT ON bm.decisions, bm.decision_units, bm.event_log TO bloodmatch_app;
GRANT SELECT, INSERT, UPDATE ON bm.reservations TO bloodmatch_app;

GRANT SELECT, INSERT, UPDATE ON bm.sites TO bloodmatch_import;
GRANT SELECT, INSERT ON bm.import_runs, bm.rejected_rows, bm.inventory_snapshots,
  bm.unit_conflicts, bm.event_log TO bloodmatch_import;
GRANT SELECT ON bm.decisions, bm.decision_units TO bloodmatch_import;
GRANT SELECT, INSERT, UPDATE ON bm.centre_status TO bloodmatch_import;
GRANT SELECT, INSERT, DELETE ON bm.inventory_units TO bloodmatch_import;
GRANT SELECT ON bm.reservations TO bloodmatch_import;
