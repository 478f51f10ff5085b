-- BloodMatch schema 0003: hospitals' orders and batch allocation runs (shipments, allocations with
-- their rationale, per-order outcomes). A run's rows are written in one transaction together with
-- the reservations that hold its units (bm.reservations, source 'batch'), so a crash leaves the
-- previous allocation state intact. Runs as bloodmatch_owner inside one transaction.

CREATE TABLE bm.orders (
  order_id       text PRIMARY KEY CHECK (order_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
  hospital       text NOT NULL REFERENCES bm.sites,
  component      text NOT NULL CHECK (component IN ('RBC', 'PLT', 'PLASMA', 'CRYO', 'WB')),
  -- NULL group: not yet determined (emergency release rules apply).
  abo            text CHECK (abo IN ('O', 'A', 'B', 'AB')),
  rhd            text CHECK (rhd IN ('POS', 'NEG')),
  context        text NOT NULL DEFAULT '',            -- RecipientContext tokens, e.g. female,age=34
  quantity       integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
  requirements   text NOT NULL DEFAULT '',            -- attributes separated by ';'
  max_age_days   integer CHECK (max_age_days BETWEEN 0 AND 365),
  urgency        text NOT NULL CHECK (urgency IN ('emergency', 'urgent', 'routine')),
  needed_by      timestamptz,
  status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'allocated',
                    'partially_allocated', 'unfillable', 'cancelled')),
  status_reason  text,
  last_run_id    uuid,
  placed_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  placed_by      text NOT NULL,
  source         text NOT NULL,                       -- 'cli' or the imported file name
  updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  CHECK ((abo IS NULL) = (rhd IS NULL))
);
CREATE INDEX orders_pending ON bm.orders (placed_at) WHERE status = 'pending';
CREATE INDEX orders_hospital ON bm.orders (hospital, placed_at DESC);

CREATE TABLE bm.batch_runs (
  run_id               uuid PRIMARY KEY,
  run_key              text NOT NULL UNIQUE,          -- a retry with the same key changes nothing
  as_of                timestamptz NOT NULL,
  started_at           timestamptz NOT NULL,
  finished_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  operator             text NOT NULL,
  policy_version       text NOT NULL,
  index_version        text NOT NULL,
  orders_considered    integer NOT NULL,
  units_allocated      integer NOT NULL,
  shipments            integer NOT NULL,
  total_cost_minutes   double precision NOT NULL,
  greedy_cost_minutes  double precision NOT NULL,
  stale_centres        text[] NOT NULL DEFAULT '{}',
  solve_ms             integer NOT NULL,
  plan                 jsonb NOT NULL                 -- the whole BatchPlan, for `batch show`
);

CREATE TABLE bm.batch_shipments (
  run_id          uuid NOT NULL REFERENCES bm.batch_runs,
  shipment_no     integer NOT NULL,
  centre          text NOT NULL,
  hospital        text NOT NULL,
  units           integer NOT NULL,
  eta_minutes     double precision NOT NULL,
  needed_by_met   boolean,
  stale_centre    boolean NOT NULL,
  reservation_id  uuid NOT NULL REFERENCES bm.reservations,
  PRIMARY KEY (run_id, shipment_no)
);

CREATE TABLE bm.batch_allocations (
  run_id        uuid NOT NULL,
  shipment_no   integer NOT NULL,
  order_id      text NOT NULL REFERENCES bm.orders,
  din           text NOT NULL,
  centre        text NOT NULL,
  hospital      text NOT NULL,
  cost_minutes  double precision NOT NULL,
  rationale     text NOT NULL,
  PRIMARY KEY (run_id, din),
  FOREIGN KEY (run_id, shipment_no) REFERENCES bm.batch_shipments
);
CREATE INDEX batch_allocations_order ON bm.batch_allocations (order_id);
CREATE INDEX batch_allocations_din ON bm.batch_allocations (din);

CREATE TABLE bm.batch_order_outcomes (
  run_id     uuid NOT NULL REFERENCES bm.batch_runs,
  order_id   text NOT NULL REFERENCES bm.orders,
  status     text NOT NULL CHECK (status IN ('allocated', 'partially_allocated', 'unfillable')),
  quantity   integer NOT NULL,
  allocated  integer NOT NULL,
  reason     text,
  PRIMARY KEY (run_id, order_id)
);

CREATE TRIGGER batch_runs_append_only BEFORE UPDATE OR DELETE ON bm.batch_runs
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER batch_shipments_append_only BEFORE UPDATE OR DELETE ON bm.batch_shipments
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER batch_allocations_append_only BEFORE UPDATE OR DELETE ON bm.batch_allocations
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER batch_order_outcomes_append_only BEFORE UPDATE OR DELETE ON bm.batch_order_outcomes
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER batch_runs_no_truncate BEFORE TRUNCATE ON bm.batch_runs
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER batch_allocations_no_truncate BEFORE TRUNCATE ON bm.batch_allocations
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();

-- Orders change status (pending → allocated …, cancelled); runs and their rows are append-only.
GRANT SELECT, INSERT, UPDATE ON bm.orders TO bloodmatch_app;
GRANT SELECT, INSERT ON bm.batch_runs, bm.batch_shipments, bm.batch_allocations,
  bm.batch_order_outcomes TO bloodmatch_app;
GRANT SELECT ON bm.orders, bm.batch_runs, bm.batch_shipments, bm.batch_allocations,
  bm.batch_order_outcomes TO bloodmatch_import;
