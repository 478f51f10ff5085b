-- BloodMatch schema 0009: one tamper-evident chain over every record that matters, appended without
-- a lock and sealed in batches; named, authenticated operators; identity set by the database.
--
-- Why: with 0002 every bm.event_log insert took one advisory lock and held it through the commit's
-- WAL flush, so exactly one writing transaction was ever inside (369 audited decisions/s at 8
-- connections, falling with more). And the chain covered event rows only: the decisions,
-- reservations, distributions and fates the events point at could be rewritten unseen.
--
-- Append: a row gets its database-set fields here (position in insertion order `seq`, time, login
-- role, connection address, transaction id, acting identity) and no hash; nothing serialises writers.
-- Seal: bm.audit_seal() (one caller at a time; the service runs it every 250 ms, `bloodmatch audit
-- seal` from cron, `audit verify` before verifying) chains the committed rows not yet chained, in
-- `seq` order, into bm.event_chain, linking each to the stored head, and moves the head. A row is
-- therefore unchained for at most one sealing interval; verify reports the unchained tail and fails
-- when any of it is older than the bound (the model is the maximum merge delay of Certificate
-- Transparency logs, RFC 9162 §4.1 / RFC 6962 §3; Data/SOURCES.md §S25).
-- Which rows are new: a row's transaction id is recorded; after a pass that reached the end, every
-- transaction older than the snapshot's xmin has ended, so its rows are chained; the next pass
-- looks only at rows of transactions from that xmin on (`floor_xid`).
--
-- Records: each covered table has statement-level triggers that append one `record.written` event
-- per INSERT or UPDATE statement, listing each row's key and fields (values up to 64 characters as
-- they are, longer ones as their SHA-256), so the event that created or changed a row carries it into
-- the chain; `audit verify` compares every row's fields with the last such event for it and names the
-- table, the row and the field.

-- Roles. Operators and jobs log in as themselves (the database authenticates them: password, peer
-- map or client certificate), and are members of exactly one of the groups below; the groups say
-- what each may do (Data/POLICY.md, "Who may do what"). Creating them needs CREATEROLE on the owner.
DO $$
DECLARE
  g text;
BEGIN
  FOREACH g IN ARRAY ARRAY['bloodmatch_operator', 'bloodmatch_dispatcher', 'bloodmatch_supervisor', 'bloodmatch_job'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = g) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', g);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- another database's migration won
      END;
    END IF;
  END LOOP;
END $$;

DO $$
BEGIN
  GRANT bloodmatch_operator TO bloodmatch_dispatcher, bloodmatch_job;
  GRANT bloodmatch_dispatcher TO bloodmatch_supervisor;
  GRANT bloodmatch_app TO bloodmatch_dispatcher, bloodmatch_job;
  GRANT bloodmatch_import TO bloodmatch_job;
EXCEPTION WHEN unique_violation THEN NULL;  -- granted concurrently by another database's migration
END $$;

DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO bloodmatch_operator', current_database()); END $$;

-- The acting identity, derived from the login: an operator or job is always itself, whatever the
-- client claims; the API service may speak for the hospital whose key it verified (or `anonymous`);
-- any other role is recorded as itself.
-- plpgsql rather than SQL: an SQL function that cannot be inlined is planned again in every
-- transaction that calls it, and this one is called for every event (measured: planning was 16 % of
-- all CPU under load before).
CREATE FUNCTION bm.audit_actor(login name, claimed text) RETURNS text
  LANGUAGE plpgsql STABLE AS
$$
BEGIN
  IF login = 'bloodmatch_app' THEN
    IF claimed ~ '^(hospital:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}|anonymous)$' THEN RETURN claimed; END IF;
    RETURN 'role:bloodmatch_app';
  ELSIF login = 'bloodmatch_import' THEN
    RETURN 'job:bloodmatch_import';
  ELSIF login = 'bloodmatch_owner' OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = login AND rolsuper) THEN
    RETURN 'role:' || login;
  ELSIF pg_has_role(login, 'bloodmatch_job', 'MEMBER') THEN
    RETURN 'job:' || login;
  ELSIF pg_has_role(login, 'bloodmatch_operator', 'MEMBER') THEN
    RETURN 'operator:' || login;
  END IF;
  RETURN 'role:' || login;
END
$$;

-- event_log: the chain moves to bm.event_chain; rows get a database-assigned seq and transaction id.
CREATE TABLE bm.event_chain (
  chain_seq  bigint PRIMARY KEY,
  seq        bigint NOT NULL UNIQUE,
  format     smallint NOT NULL CHECK (format IN (1, 2)),
  prev_hash  bytea NOT NULL,
  row_hash   bytea NOT NULL
);
INSERT INTO bm.event_chain (chain_seq, seq, format, prev_hash, row_hash)
  SELECT chain_seq, seq, 1, prev_hash, row_hash FROM bm.event_log;

DROP TRIGGER event_log_chain ON bm.event_log;
DROP TRIGGER event_log_head ON bm.event_log;
DROP FUNCTION bm.audit_move_head();
DROP FUNCTION bm.audit_chain();
DROP FUNCTION bm.audit_canonical(bm.event_log);
DROP INDEX bm.event_log_action;
ALTER TABLE bm.event_log DROP COLUMN chain_seq, DROP COLUMN prev_hash, DROP COLUMN row_hash;
CREATE INDEX event_log_action ON bm.event_log (action, seq);

-- The application could set seq with OVERRIDING SYSTEM VALUE; now a trigger always takes it from
-- a sequence only the owner uses.
ALTER TABLE bm.event_log ALTER COLUMN seq DROP IDENTITY;
CREATE SEQUENCE bm.event_log_seq OWNED BY bm.event_log.seq;
SELECT setval('bm.event_log_seq', coalesce((SELECT max(seq) FROM bm.event_log), 0) + 1, false);
ALTER TABLE bm.event_log
  ADD COLUMN xid xid8,
  ADD COLUMN peer_addr text;
CREATE INDEX event_log_xid ON bm.event_log (xid);

ALTER TABLE bm.audit_head
  ADD COLUMN floor_xid xid8 NOT NULL DEFAULT '0'::xid8,
  ADD COLUMN sealed_at timestamptz;
UPDATE bm.audit_head SET floor_xid = pg_snapshot_xmin(pg_current_snapshot()), sealed_at = clock_timestamp();

-- Everything about who, when and from where is the database's. `peer_addr` is the HTTP client's
-- address as the API service saw it (only that service may give one); request and trace ids may
-- also come from the transaction's settings `bm.request_id` / `bm.trace_id`.
CREATE FUNCTION bm.event_log_stamp() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog AS
$$
BEGIN
  NEW.seq := nextval('bm.event_log_seq');
  NEW.occurred_at := clock_timestamp();
  NEW.actor_role := session_user;
  NEW.actor := bm.audit_actor(session_user, NEW.actor);
  NEW.client_addr := coalesce(host(inet_client_addr()), 'local');
  NEW.xid := pg_current_xact_id();
  IF session_user <> 'bloodmatch_app' THEN NEW.peer_addr := NULL; END IF;
  NEW.request_id := coalesce(NEW.request_id, nullif(current_setting('bm.request_id', true), ''));
  NEW.trace_id := coalesce(NEW.trace_id, nullif(current_setting('bm.trace_id', true), ''));
  -- A policy or settings file replaces the one in force only by a supervisor's hand: every process
  -- records the files it loads, and one that finds a different file than the last recorded is
  -- refused here unless its login is a supervisor (the first file of a new database is recorded
  -- by whoever loads it: there is nothing in force to change).
  IF NEW.action = 'configuration.changed' AND NOT pg_has_role(session_user, 'bloodmatch_supervisor', 'MEMBER')
     AND session_user <> 'bloodmatch_owner'
     AND EXISTS (SELECT 1 FROM bm.event_log l WHERE l.subject = NEW.subject AND l.action = 'configuration.changed') THEN
    RAISE EXCEPTION '% differs from the file in force (%): putting it in force needs a supervisor (`bloodmatch configuration record` as one)',
      NEW.subject, NEW.payload->>'path' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER event_log_stamp BEFORE INSERT ON bm.event_log
  FOR EACH ROW EXECUTE FUNCTION bm.event_log_stamp();

-- Format 2 of the canonical encoding: 0002's length-prefixed fields, now with seq, the transaction
-- id and the peer address (AuditChain.swift must stay byte-identical).
CREATE FUNCTION bm.audit_canonical2(e bm.event_log, chain_pos bigint) RETURNS bytea
  LANGUAGE sql STABLE PARALLEL SAFE AS
$$
  SELECT convert_to('bloodmatch-audit/2', 'UTF8')
    || bm.audit_field(chain_pos::text)
    || bm.audit_field(e.seq::text)
    || coalesce(bm.audit_field(e.xid::text), '\xffffffff'::bytea)
    || bm.audit_field(((extract(epoch FROM e.occurred_at) * 1000000)::bigint)::text)
    || coalesce(bm.audit_field(e.actor_role), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.actor), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.action), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.subject), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.payload::text), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.request_id), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.trace_id), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.client_addr), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.peer_addr), '\xffffffff'::bytea)
    || coalesce(bm.audit_field(e.corrects_seq::text), '\xffffffff'::bytea)
$$;

-- Chains up to `max_rows` committed, unchained rows; returns how many, the new head, and whether
-- more are waiting. One sealer at a time: a second caller returns at once with 0. The new rows link
-- to the stored head, never to "the last row in the table", so a removed tail stays a gap; and
-- when the head is not the last entry's position and hash (the tail or the head was changed),
-- nothing is sealed and -1 is returned: the chain is not extended from a damaged end, events wait
-- (still committed), `audit verify` names the damage and the unsealed-age alert fires.
CREATE FUNCTION bm.audit_seal(max_rows integer DEFAULT 50000)
  RETURNS TABLE (sealed integer, head_chain_seq bigint, more_waiting boolean)
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog AS
$$
DECLARE
  h bm.audit_head;
  horizon xid8;
  e bm.event_log;
  n integer := 0;
  pos bigint;
  prev bytea;
  positions bigint[] := '{}';
  seqs bigint[] := '{}';
  prevs bytea[] := '{}';
  hashes bytea[] := '{}';
BEGIN
  IF NOT pg_try_advisory_xact_lock(7301686512850213889) THEN
    RETURN QUERY SELECT 0, (SELECT a.chain_seq FROM bm.audit_head a), true;
    RETURN;
  END IF;
  SELECT * INTO h FROM bm.audit_head FOR UPDATE;
  IF h.chain_seq > 0 AND NOT EXISTS (SELECT 1 FROM bm.event_chain c WHERE c.chain_seq = h.chain_seq AND c.row_hash = h.row_hash)
     OR EXISTS (SELECT 1 FROM bm.event_chain c WHERE c.chain_seq > h.chain_seq) THEN
    RETURN QUERY SELECT -1, h.chain_seq, false;
    RETURN;
  END IF;
  horizon := pg_snapshot_xmin(pg_current_snapshot());
  pos := h.chain_seq;
  prev := h.row_hash;
  FOR e IN SELECT l.* FROM bm.event_log l
      WHERE l.xid >= h.floor_xid AND NOT EXISTS (SELECT 1 FROM bm.event_chain c WHERE c.seq = l.seq)
      ORDER BY l.seq LIMIT max_rows LOOP
    pos := pos + 1;
    positions := positions || pos;
    seqs := seqs || e.seq;
    prevs := prevs || prev;
    prev := sha256(prev || bm.audit_canonical2(e, pos));
    hashes := hashes || prev;
    n := n + 1;
  END LOOP;
  IF n > 0 THEN
    INSERT INTO bm.event_chain (chain_seq, seq, format, prev_hash, row_hash)
      SELECT p, s, 2, ph, rh FROM unnest(positions, seqs, prevs, hashes) AS x(p, s, ph, rh);
  END IF;
  UPDATE bm.audit_head SET chain_seq = pos, row_hash = prev, sealed_at = clock_timestamp(),
    floor_xid = CASE WHEN n < max_rows THEN horizon ELSE h.floor_xid END;
  RETURN QUERY SELECT n, pos, n >= max_rows;
END
$$;

CREATE TRIGGER event_chain_append_only BEFORE UPDATE OR DELETE ON bm.event_chain
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER event_chain_no_truncate BEFORE TRUNCATE ON bm.event_chain
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();

-- Records. The key is the primary key's values joined by '/'; the fields are every other column,
-- rendered as text in UTC with PostgreSQL's shortest exact float output (the function's own
-- settings), values over 64 characters as `sha256:<hex>`.
CREATE FUNCTION bm.audit_record_key(r jsonb, keys text[]) RETURNS text
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS
$$
DECLARE
  k text;
  out text;
BEGIN
  FOREACH k IN ARRAY keys LOOP
    out := CASE WHEN out IS NULL THEN coalesce(r->>k, '') ELSE out || '/' || coalesce(r->>k, '') END;
  END LOOP;
  RETURN out;
END
$$;

CREATE FUNCTION bm.audit_record_fields(r jsonb, keys text[]) RETURNS jsonb
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS
$$
DECLARE
  out jsonb;
BEGIN
  SELECT coalesce(jsonb_object_agg(k, CASE WHEN length(v) > 64
           THEN 'sha256:' || encode(sha256(convert_to(v, 'UTF8')), 'hex') ELSE v END), '{}')
    INTO out FROM jsonb_each_text(r) AS x(k, v) WHERE NOT k = ANY (keys);
  RETURN out;
END
$$;

-- The centres' data state (every centre's snapshot, as-of and age at the decision) was 11 KB of each
-- decision's 14.5 KB rationale, the same for every decision of a minute. It is stored once, by its
-- SHA-256, and each decision names it; `decision show` and the API put it back into the rationale.
CREATE TABLE bm.decision_data_states (
  digest       text PRIMARY KEY CHECK (digest ~ '^[0-9a-f]{64}$'),
  centres      jsonb NOT NULL,
  recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TRIGGER decision_data_states_append_only BEFORE UPDATE OR DELETE ON bm.decision_data_states
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER decision_data_states_no_truncate BEFORE TRUNCATE ON bm.decision_data_states
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();
ALTER TABLE bm.decisions ADD COLUMN data_state text REFERENCES bm.decision_data_states;
GRANT SELECT, INSERT ON bm.decision_data_states TO bloodmatch_app;
GRANT SELECT ON bm.decision_data_states TO bloodmatch_import;

-- Which tables are covered, and their keys (what `audit verify` walks).
CREATE TABLE bm.audited_tables (
  table_name  text PRIMARY KEY,
  key_columns text[] NOT NULL
);
INSERT INTO bm.audited_tables VALUES
  ('decisions', '{decision_id}'),
  ('decision_data_states', '{digest}'),
  ('decision_units', '{decision_id,rank}'),
  ('reservations', '{reservation_id}'),
  ('reservation_units', '{reservation_id,din,product_code}'),
  ('distributions', '{distribution_id}'),
  ('unit_fates', '{fate_id}'),
  ('orders', '{order_id}'),
  ('batch_runs', '{run_id}'),
  ('batch_shipments', '{run_id,shipment_no}'),
  ('batch_allocations', '{run_id,din,product_code}'),
  ('batch_order_outcomes', '{run_id,order_id}'),
  ('api_keys', '{key_id}'),
  ('sites', '{site_id}'),
  ('import_runs', '{run_id}');

-- Written as a loop of simple expressions (whose plans plpgsql keeps) rather than one INSERT … SELECT
-- over the transition table, which is planned again at every statement: 0.43 ms per one-row
-- INSERT of a decision instead of 1.07 ms (measured with the national dataset's decisions).
CREATE FUNCTION bm.audit_records() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog SET TimeZone = 'UTC' SET extra_float_digits = 1 AS
$$
DECLARE
  j jsonb;
  keys text[] := TG_ARGV::text[];
  found jsonb[] := '{}';
  request text;
BEGIN
  FOR j IN SELECT to_jsonb(r) FROM new_rows r LOOP
    found := found || jsonb_build_object('key', bm.audit_record_key(j, keys), 'fields', bm.audit_record_fields(j, keys));
    request := coalesce(request, j->>'request_id');
  END LOOP;
  IF cardinality(found) > 0 THEN
    INSERT INTO bm.event_log (actor, action, subject, request_id, payload)
    VALUES (session_user, 'record.written', 'table:' || TG_TABLE_NAME,
            coalesce(nullif(current_setting('bm.request_id', true), ''), request),
            jsonb_build_object('table', TG_TABLE_NAME, 'op', lower(TG_OP), 'rows', to_jsonb(found)));
  END IF;
  RETURN NULL;
END
$$;

DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT * FROM bm.audited_tables LOOP
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON bm.%I REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION bm.audit_records(%s)',
                   t.table_name || '_audit_insert', t.table_name, array_to_string(t.key_columns, ', '));
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON bm.%I REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION bm.audit_records(%s)',
                   t.table_name || '_audit_update', t.table_name, array_to_string(t.key_columns, ', '));
  END LOOP;
END $$;

-- Rows written before this migration enter the chain now, 2,000 to an event.
DO $$
DECLARE
  t record;
BEGIN
  SET LOCAL TimeZone = 'UTC';
  SET LOCAL extra_float_digits = 1;
  FOR t IN SELECT * FROM bm.audited_tables ORDER BY table_name LOOP
    EXECUTE format($q$
      INSERT INTO bm.event_log (actor, action, subject, payload)
      SELECT 'migration', 'record.written', 'table:' || %L,
             jsonb_build_object('table', %L, 'op', 'migration', 'rows', jsonb_agg(r ORDER BY k))
      FROM (SELECT bm.audit_record_key(to_jsonb(x), %L) AS k,
                   jsonb_build_object('key', bm.audit_record_key(to_jsonb(x), %L),
                                      'fields', bm.audit_record_fields(to_jsonb(x), %L)) AS r,
                   (row_number() OVER ()) / 2000 AS chunk
            FROM bm.%I x) y
      GROUP BY chunk ORDER BY chunk$q$,
      t.table_name, t.table_name, t.key_columns, t.key_columns, t.key_columns, t.table_name);
  END LOOP;
END $$;

-- Verification of the records: each covered row against the last event that wrote it. Returns
-- the differing fields (`(row)` when a row has no event, or an event's row is gone), at most
-- `max_rows` per table.
CREATE FUNCTION bm.audit_record_mismatches(max_rows integer DEFAULT 100)
  RETURNS TABLE (table_name text, row_key text, field text, expected text, actual text, event_seq bigint)
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = bm, pg_catalog SET TimeZone = 'UTC' SET extra_float_digits = 1 AS
$$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT a.table_name AS name, a.key_columns AS keys FROM bm.audited_tables a ORDER BY a.table_name LOOP
    RETURN QUERY EXECUTE format($q$
      WITH expected AS (
        SELECT DISTINCT ON (r->>'key') r->>'key' AS k, r->'fields' AS f, e.seq
        FROM bm.event_log e CROSS JOIN LATERAL jsonb_array_elements(e.payload->'rows') r
        WHERE e.action = 'record.written' AND e.subject = %L
        ORDER BY r->>'key', e.seq DESC),
      actual AS (
        SELECT bm.audit_record_key(y.j, %L) AS k, bm.audit_record_fields(y.j, %L) AS f
        FROM (SELECT to_jsonb(x) AS j FROM bm.%I x) y)
      SELECT %L::text, coalesce(a.k, x.k), d.field, d.ev, d.av, x.seq
      FROM expected x FULL JOIN actual a ON a.k = x.k
      CROSS JOIN LATERAL (
        SELECT coalesce(xe.key, ae.key) AS field, xe.value AS ev, ae.value AS av
        FROM jsonb_each_text(x.f) xe FULL JOIN jsonb_each_text(a.f) ae ON xe.key = ae.key
        WHERE x.k IS NOT NULL AND a.k IS NOT NULL AND xe.value IS DISTINCT FROM ae.value
        UNION ALL
        SELECT '(row)', CASE WHEN x.k IS NOT NULL THEN 'recorded' END, CASE WHEN a.k IS NOT NULL THEN 'present' END
        WHERE x.k IS NULL OR a.k IS NULL) d
      WHERE x.f IS DISTINCT FROM a.f
      ORDER BY 2, 3
      LIMIT %s$q$, 'table:' || t.name, t.keys, t.keys, t.name, t.name, max_rows);
  END LOOP;
END
$$;

CREATE FUNCTION bm.audit_record_count() RETURNS bigint
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = bm, pg_catalog AS
$$
DECLARE
  t record;
  n bigint;
  total bigint := 0;
BEGIN
  FOR t IN SELECT a.table_name AS name FROM bm.audited_tables a LOOP
    EXECUTE format('SELECT count(*) FROM bm.%I', t.name) INTO n;
    total := total + n;
  END LOOP;
  RETURN total;
END
$$;

-- Who wrote a record is the database's too: the "by" columns take the acting identity of the
-- login (an operator cannot write a distribution or a hold in another's name).
DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT * FROM (VALUES ('decisions', 'requested_by'), ('reservations', 'reserved_by'),
      ('distributions', 'issued_by'), ('unit_fates', 'recorded_by'), ('orders', 'placed_by'),
      ('batch_runs', 'operator'), ('api_keys', 'created_by')) AS v(tab, col) LOOP
    EXECUTE format('CREATE FUNCTION bm.%I() RETURNS trigger LANGUAGE plpgsql AS '
                   '$f$BEGIN NEW.%I := bm.audit_actor(session_user, NEW.%I); RETURN NEW; END$f$',
                   t.tab || '_stamp_actor', t.col, t.col);
    EXECUTE format('CREATE TRIGGER %I BEFORE INSERT ON bm.%I FOR EACH ROW EXECUTE FUNCTION bm.%I()',
                   t.tab || '_stamp_actor', t.tab, t.tab || '_stamp_actor');
  END LOOP;
END $$;

-- What each role may do, enforced here (Data/POLICY.md, "Who may do what"):
--   issuing a unit (a distribution record)          dispatcher, supervisor
--   creating or revoking hospital API keys           supervisor
--   putting a changed policy or settings file in force   supervisor (the event log's trigger)
--   matching, holding, releasing, orders, receipts   dispatcher, supervisor, job, the service
--   importing stock                                  job (and the import role)
REVOKE INSERT ON bm.distributions FROM bloodmatch_app;
GRANT INSERT ON bm.distributions TO bloodmatch_dispatcher;
GRANT SELECT, INSERT ON bm.api_keys TO bloodmatch_supervisor;
GRANT UPDATE (revoked_at, revoked_by) ON bm.api_keys TO bloodmatch_supervisor;
GRANT USAGE ON SCHEMA bm TO bloodmatch_operator;
GRANT SELECT ON ALL TABLES IN SCHEMA bm TO bloodmatch_operator;
REVOKE ALL ON bm.event_chain FROM PUBLIC;
GRANT SELECT ON bm.event_chain, bm.audited_tables TO bloodmatch_app, bloodmatch_import;
REVOKE ALL ON FUNCTION bm.audit_seal(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm.audit_seal(integer) TO bloodmatch_app, bloodmatch_import;
