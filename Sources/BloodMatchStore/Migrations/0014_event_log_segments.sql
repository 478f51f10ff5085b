-- BloodMatch schema 0014: the event log and its chain are kept in segments, ranges of event numbers,
-- so that old events can later be exported and moved out whole while the chain stays verifiable.
--
-- Why: every API request adds an access record (measured: 845 bytes per event with its chain entry;
-- about 44 GB a day at 600 requests/s), and traceability records are kept for at least 30 years
-- (Data/SOURCES.md §S17, §S18): the log must be able to leave the online database by whole pieces,
-- never by deleting rows. The design is in Jobs/RUNBOOK.md#audit-growth.
--
-- - bm.event_log and bm.event_chain become range partitions on `seq`, one partition of each per
--   segment; the table as it was becomes segment 1, its range rounded up to the segment size. The
--   size (events per segment) is bm.audit_settings.segment_size, read when a segment is made:
--   50,000,000 (about a day at 600 requests/s) unless the database setting bm.audit_segment_size
--   said otherwise when this migration ran (the tests use small segments).
-- - PostgreSQL routes a row to its partition before row triggers run, so `seq` now comes from the
--   column's default, bm.event_log_next_seq(): the transaction id first, then the number, the order
--   0010's gap rule needs. The application roles may insert only the columns they give; `seq`, the
--   transaction id and the stamp stay the database's.
-- - Segments are made ahead, at least two beyond the one in use, by bm.audit_extend_segments()
--   (the sealer calls it after its passes; `migrate` and the checkpoint job too). It attaches empty
--   tables: ATTACH PARTITION does not stop inserts (measured: an insert waited behind it only while
--   the log had a foreign key on itself, so `corrects_seq` is now checked by the stamp trigger).
-- - The sealer chains no event of the next segment while an event of the current one may still
--   commit (0010's gaps): each segment's chain positions are one contiguous range holding exactly
--   its events. When it passes a boundary it records the segment as closed (its chain range and the
--   hash at its last position) in bm.audit_segments and as an `audit.segment_closed` event, which
--   the chain then covers.
-- - A closed segment leaves the database in three steps, each recorded in the chain: `audit archive`
--   writes its events to a file and reads the file back (bm.audit_segment_exported), and writes
--   every covered record whose latest `record.written` event lies in it again, as written there
--   (bm.audit_carry_forward), so the record check never needs an archived segment;
--   `audit detach` (the schema owner only) checks all of it and drops the two partitions
--   (bm.audit_detach_segment). Segments leave oldest first; `audit verify` then starts at the
--   first segment still attached, from the hash its predecessor's closing event holds.
-- - Chain positions are unique within a segment (each segment's own unique index, which also serves
--   every look-up by position); across segments the sealer's contiguity and `audit verify`'s check
--   that each position follows the one before keep them unique. Segment 1's index on positions is
--   built again by this migration (a primary key cannot stay on a partition of a table keyed by
--   `seq`): about a minute per 50 M events.

CREATE TABLE bm.audit_settings (
  singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  segment_size   bigint NOT NULL CHECK (segment_size >= 10),
  segments_ahead integer NOT NULL DEFAULT 2 CHECK (segments_ahead >= 1)
);
INSERT INTO bm.audit_settings (segment_size)
  VALUES (coalesce(nullif(current_setting('bm.audit_segment_size', true), '')::bigint, 50000000));

CREATE TABLE bm.audit_segments (
  segment      integer PRIMARY KEY,
  first_seq    bigint NOT NULL,
  end_seq      bigint NOT NULL,
  made_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- Set when the sealer has passed the segment's end: every event of it is chained.
  closed_at    timestamptz,
  chain_first  bigint,
  chain_last   bigint,
  last_hash    bytea,
  -- Written to an archive file (its SHA-256), its records carried forward, and moved out.
  exported_at     timestamptz,
  exported_sha256 text,
  carried_at      timestamptz,
  detached_at     timestamptz,
  CHECK (end_seq > first_seq)
);
REVOKE ALL ON bm.audit_settings, bm.audit_segments FROM PUBLIC;
GRANT SELECT ON bm.audit_settings, bm.audit_segments TO bloodmatch_app, bloodmatch_import, bloodmatch_operator;

-- No insert runs while the tables are rebuilt.
LOCK TABLE bm.event_log, bm.event_chain IN ACCESS EXCLUSIVE MODE;

-- The table as it was becomes segment 1: everything numbered so far and the rest of its last
-- segment-sized range.
CREATE FUNCTION pg_temp.first_end() RETURNS bigint LANGUAGE sql AS $$
  SELECT ((greatest(coalesce((SELECT max(seq) FROM bm.event_log), 0),
                    (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM bm.event_log_seq))
           / s.segment_size) + 1) * s.segment_size + 1
  FROM bm.audit_settings s
$$;
INSERT INTO bm.audit_segments (segment, first_seq, end_seq) SELECT 1, 1, pg_temp.first_end();

ALTER TABLE bm.event_log RENAME TO event_log_s000001;
ALTER INDEX bm.event_log_pkey RENAME TO event_log_s000001_pkey;
ALTER INDEX bm.event_log_action RENAME TO event_log_s000001_action;
ALTER INDEX bm.event_log_actor_action RENAME TO event_log_s000001_actor_action;
ALTER INDEX bm.event_log_subject RENAME TO event_log_s000001_subject;
ALTER INDEX bm.event_log_xid RENAME TO event_log_s000001_xid;
ALTER TABLE bm.event_log_s000001 DROP CONSTRAINT event_log_corrects_seq_fkey;
DROP TRIGGER event_log_append_only ON bm.event_log_s000001;
DROP TRIGGER event_log_no_truncate ON bm.event_log_s000001;
DROP TRIGGER event_log_stamp ON bm.event_log_s000001;
ALTER SEQUENCE bm.event_log_seq OWNED BY NONE;

CREATE TABLE bm.event_log (
  seq          bigint NOT NULL,
  occurred_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_role   text NOT NULL DEFAULT CURRENT_USER,
  actor        text NOT NULL,
  action       text NOT NULL,
  subject      text NOT NULL,
  payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
  request_id   text,
  trace_id     text,
  client_addr  text,
  corrects_seq bigint,
  xid          xid8,
  peer_addr    text,
  PRIMARY KEY (seq)
) PARTITION BY RANGE (seq);
DO $$
BEGIN
  ALTER TABLE bm.event_log ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE 'lz4 is not available on this server: pglz stays';
END $$;
CREATE INDEX event_log_action ON bm.event_log (action, seq);
CREATE INDEX event_log_actor_action ON bm.event_log (actor, action, seq);
CREATE INDEX event_log_subject ON bm.event_log (subject, seq);
CREATE INDEX event_log_xid ON bm.event_log (xid);
ALTER SEQUENCE bm.event_log_seq OWNED BY bm.event_log.seq;

-- The partition constraint, proved by a check first so that ATTACH does not scan again.
DO $$
BEGIN
  EXECUTE format('ALTER TABLE bm.event_log_s000001 ADD CONSTRAINT event_log_s000001_range CHECK (seq < %s)',
                 (SELECT end_seq FROM bm.audit_segments WHERE segment = 1));
  EXECUTE format('ALTER TABLE bm.event_log ATTACH PARTITION bm.event_log_s000001 FOR VALUES FROM (MINVALUE) TO (%s)',
                 (SELECT end_seq FROM bm.audit_segments WHERE segment = 1));
END $$;
ALTER TABLE bm.event_log_s000001 DROP CONSTRAINT event_log_s000001_range;

ALTER TABLE bm.event_chain RENAME TO event_chain_s000001;
ALTER INDEX bm.event_chain_seq_key RENAME TO event_chain_s000001_seq_key;
ALTER TABLE bm.event_chain_s000001 DROP CONSTRAINT event_chain_pkey;
ALTER TABLE bm.event_chain_s000001 ADD CONSTRAINT event_chain_s000001_position UNIQUE (chain_seq);
DROP TRIGGER event_chain_append_only ON bm.event_chain_s000001;
DROP TRIGGER event_chain_no_truncate ON bm.event_chain_s000001;

CREATE TABLE bm.event_chain (
  chain_seq  bigint NOT NULL,
  seq        bigint NOT NULL,
  format     smallint NOT NULL CONSTRAINT event_chain_format_check CHECK (format IN (1, 2)),
  prev_hash  bytea NOT NULL,
  row_hash   bytea NOT NULL,
  PRIMARY KEY (seq)
) PARTITION BY RANGE (seq);
DO $$
BEGIN
  EXECUTE format('ALTER TABLE bm.event_chain_s000001 ADD CONSTRAINT event_chain_s000001_range CHECK (seq < %s)',
                 (SELECT end_seq FROM bm.audit_segments WHERE segment = 1));
  EXECUTE format('ALTER TABLE bm.event_chain ATTACH PARTITION bm.event_chain_s000001 FOR VALUES FROM (MINVALUE) TO (%s)',
                 (SELECT end_seq FROM bm.audit_segments WHERE segment = 1));
END $$;
ALTER TABLE bm.event_chain_s000001 DROP CONSTRAINT event_chain_s000001_range;

-- Row triggers on the parents reach every segment; TRUNCATE is refused on the parents and on each
-- segment (a statement trigger fires only for the table named).
CREATE TRIGGER event_log_append_only BEFORE UPDATE OR DELETE ON bm.event_log
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON bm.event_log
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON bm.event_log_s000001
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER event_chain_append_only BEFORE UPDATE OR DELETE ON bm.event_chain
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER event_chain_no_truncate BEFORE TRUNCATE ON bm.event_chain
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();
CREATE TRIGGER event_chain_no_truncate BEFORE TRUNCATE ON bm.event_chain_s000001
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();

-- The event number: the transaction id first, then the number (0010's gap rule).
CREATE FUNCTION bm.event_log_next_seq() RETURNS bigint
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = bm, pg_catalog AS
$$
BEGIN
  PERFORM pg_current_xact_id();
  RETURN nextval('bm.event_log_seq');
END
$$;
REVOKE ALL ON FUNCTION bm.event_log_next_seq() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm.event_log_next_seq() TO bloodmatch_app, bloodmatch_import;
ALTER TABLE bm.event_log ALTER COLUMN seq SET DEFAULT bm.event_log_next_seq();

-- The stamp, as 0010's, without the number (the default gives it) and with the correction's
-- reference checked here: a foreign key of the log on itself would make attaching a segment wait
-- for every insert in progress, and every insert wait behind it.
CREATE OR REPLACE FUNCTION bm.event_log_stamp() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog AS
$$
BEGIN
  NEW.xid := pg_current_xact_id();
  NEW.occurred_at := clock_timestamp();
  NEW.actor_role := session_user;
  NEW.actor := bm.audit_actor(session_user, NEW.actor);
  NEW.client_addr := coalesce(host(inet_client_addr()), 'local');
  IF session_user <> 'bloodmatch_app' THEN NEW.peer_addr := NULL; END IF;
  NEW.request_id := coalesce(NEW.request_id, nullif(current_setting('bm.request_id', true), ''));
  NEW.trace_id := coalesce(NEW.trace_id, nullif(current_setting('bm.trace_id', true), ''));
  IF NEW.corrects_seq IS NOT NULL
     AND (NEW.corrects_seq >= NEW.seq
          OR NOT EXISTS (SELECT 1 FROM bm.event_log l WHERE l.seq = NEW.corrects_seq)
             -- an event of a segment moved to its archive is corrected by number
             AND NOT EXISTS (SELECT 1 FROM bm.audit_segments s WHERE s.detached_at IS NOT NULL
                               AND NEW.corrects_seq >= s.first_seq AND NEW.corrects_seq < s.end_seq)) THEN
    RAISE EXCEPTION 'corrects_seq % names no earlier event', NEW.corrects_seq USING ERRCODE = 'foreign_key_violation';
  END IF;
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

-- Who may write what: the application roles name only the columns they give.
REVOKE ALL ON bm.event_log_s000001, bm.event_chain_s000001 FROM PUBLIC, bloodmatch_app, bloodmatch_import, bloodmatch_operator;
REVOKE ALL ON bm.event_log, bm.event_chain FROM PUBLIC;
GRANT SELECT ON bm.event_log, bm.event_chain TO bloodmatch_app, bloodmatch_import, bloodmatch_operator;
GRANT INSERT (actor, action, subject, payload, request_id, trace_id, peer_addr, corrects_seq)
  ON bm.event_log TO bloodmatch_app, bloodmatch_import;

-- The canonical encoding takes the new table's row type (the old one went with the rename).
DROP FUNCTION bm.audit_canonical2(bm.event_log_s000001, bigint);
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

-- The segments wholly unused beyond the last number handed out, and those closed (every event
-- chained) and still attached: for the metrics, which cannot read the sequence themselves.
CREATE FUNCTION bm.audit_segment_status(OUT ahead integer, OUT closed integer, OUT last_seq bigint)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = bm, pg_catalog AS
$$
  SELECT count(*) FILTER (WHERE s.first_seq > q.n)::int, count(*) FILTER (WHERE s.closed_at IS NOT NULL)::int, q.n
  FROM (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS n FROM bm.event_log_seq) q
  LEFT JOIN bm.audit_segments s ON true
  GROUP BY q.n
$$;
REVOKE ALL ON FUNCTION bm.audit_segment_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm.audit_segment_status() TO bloodmatch_app, bloodmatch_import, bloodmatch_operator;

-- Makes segments until `segments_ahead` wholly unused ones follow the number in use; returns how
-- many it made. Attaching waits at most 200 ms for a lock (a long statement on the log, never an
-- insert); a call that cannot have it makes none and the next call tries again, long before the
-- segments ahead run out (an alert fires below two).
CREATE FUNCTION bm.audit_extend_segments() RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog SET lock_timeout = '200ms' AS
$$
DECLARE
  st bm.audit_settings;
  last bm.audit_segments;
  in_use bigint;
  made integer := 0;
  log_name text;
  chain_name text;
BEGIN
  SELECT * INTO st FROM bm.audit_settings;
  LOOP
    SELECT x.last_seq INTO in_use FROM bm.audit_segment_status() x;
    IF (SELECT count(*) FROM bm.audit_segments s WHERE s.first_seq > in_use) >= st.segments_ahead THEN
      RETURN made;
    END IF;
    -- One maker at a time; a second caller leaves it to the first.
    IF NOT pg_try_advisory_xact_lock(7301686512850213890) THEN RETURN made; END IF;
    SELECT * INTO last FROM bm.audit_segments ORDER BY segment DESC LIMIT 1;
    log_name := format('event_log_s%s', lpad((last.segment + 1)::text, 6, '0'));
    chain_name := format('event_chain_s%s', lpad((last.segment + 1)::text, 6, '0'));
    BEGIN
      EXECUTE format('CREATE TABLE bm.%I (LIKE bm.event_log INCLUDING DEFAULTS INCLUDING COMPRESSION INCLUDING STORAGE)', log_name);
      EXECUTE format('CREATE TABLE bm.%I (LIKE bm.event_chain INCLUDING CONSTRAINTS INCLUDING STORAGE, CONSTRAINT %I UNIQUE (chain_seq))',
                     chain_name, chain_name || '_position');
      EXECUTE format('REVOKE ALL ON bm.%I, bm.%I FROM PUBLIC', log_name, chain_name);
      EXECUTE format('CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON bm.%I FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change()', log_name);
      EXECUTE format('CREATE TRIGGER event_chain_no_truncate BEFORE TRUNCATE ON bm.%I FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change()', chain_name);
      EXECUTE format('ALTER TABLE bm.event_log ATTACH PARTITION bm.%I FOR VALUES FROM (%s) TO (%s)',
                     log_name, last.end_seq, last.end_seq + st.segment_size);
      EXECUTE format('ALTER TABLE bm.event_chain ATTACH PARTITION bm.%I FOR VALUES FROM (%s) TO (%s)',
                     chain_name, last.end_seq, last.end_seq + st.segment_size);
      INSERT INTO bm.audit_segments (segment, first_seq, end_seq)
        VALUES (last.segment + 1, last.end_seq, last.end_seq + st.segment_size);
    EXCEPTION WHEN lock_not_available THEN
      RETURN made;
    END;
    made := made + 1;
  END LOOP;
END
$$;
REVOKE ALL ON FUNCTION bm.audit_extend_segments() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm.audit_extend_segments() TO bloodmatch_app, bloodmatch_import, bloodmatch_operator;
SELECT bm.audit_extend_segments();

-- 0010's sealer with a barrier at each segment's end. A pass works in the segment holding the
-- lowest number not yet chained (the lowest gap, else next_seq) and chains nothing beyond it. Once a
-- committed row of a later segment is seen, every number of this one has been handed out (numbers
-- are given in order, CACHE 1), so the numbers it passed over become gaps as in 0010 and next_seq
-- moves to the boundary; when no gap of the segment is left, the segment is closed.
CREATE OR REPLACE FUNCTION bm.audit_seal(max_rows integer DEFAULT 50000)
  RETURNS TABLE (sealed integer, head_chain_seq bigint, more_waiting boolean)
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog
  SET enable_seqscan = off AS
$$
DECLARE
  h bm.audit_head;
  e bm.event_log;
  seg bm.audit_segments;
  n integer := 0;
  pos bigint;
  prev bytea;
  last_new bigint;
  lowest bigint;
  beyond boolean;
  mine xid8;
  positions bigint[] := '{}';
  seqs bigint[] := '{}';
  prevs bytea[] := '{}';
  hashes bytea[] := '{}';
BEGIN
  IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
    RAISE EXCEPTION 'bm.audit_seal must run in a transaction that has written nothing yet (its transaction id bounds the gaps it notes)'
      USING ERRCODE = 'invalid_transaction_state';
  END IF;
  IF NOT pg_try_advisory_xact_lock(7301686512850213889) THEN
    -- Another pass is at work: this caller should not try again at once.
    RETURN QUERY SELECT 0, (SELECT a.chain_seq FROM bm.audit_head a), false;
    RETURN;
  END IF;
  SELECT * INTO h FROM bm.audit_head;
  IF h.chain_seq > 0 AND NOT EXISTS (SELECT 1 FROM bm.event_chain c WHERE c.chain_seq = h.chain_seq AND c.row_hash = h.row_hash)
     OR coalesce((SELECT max(c.chain_seq) FROM bm.event_chain c), 0) > h.chain_seq THEN
    RETURN QUERY SELECT -1, h.chain_seq, false;
    RETURN;
  END IF;
  pos := h.chain_seq;
  prev := h.row_hash;
  last_new := h.next_seq - 1;
  lowest := least(h.next_seq, (SELECT min(g.seq) FROM bm.audit_gaps g));
  SELECT * INTO seg FROM bm.audit_segments s WHERE s.first_seq <= lowest AND lowest < s.end_seq;
  IF NOT FOUND THEN
    -- No segment holds the number: no row can carry it either (an insert finds no partition).
    RAISE EXCEPTION 'no audit segment holds event number %: bm.audit_extend_segments() has not run', lowest
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  FOR e IN SELECT x.* FROM (
        SELECT l.* FROM bm.audit_gaps g CROSS JOIN LATERAL (SELECT * FROM bm.event_log l WHERE l.seq = g.seq OFFSET 0) l
        WHERE g.seq < seg.end_seq
        UNION ALL
        (SELECT l.* FROM bm.event_log l WHERE l.seq >= h.next_seq AND l.seq < seg.end_seq ORDER BY l.seq LIMIT max_rows)) x
      WHERE NOT EXISTS (SELECT 1 FROM bm.event_chain c WHERE c.seq = x.seq OFFSET 0)
      ORDER BY x.seq LIMIT max_rows LOOP
    pos := pos + 1;
    positions := positions || pos;
    seqs := seqs || e.seq;
    prevs := prevs || prev;
    prev := sha256(prev || bm.audit_canonical2(e, pos));
    hashes := hashes || prev;
    IF e.seq >= h.next_seq THEN last_new := e.seq; END IF;
    n := n + 1;
  END LOOP;
  -- A committed row past the boundary: every number of this segment has been handed out, before
  -- that row's number, so before this pass takes its transaction id (below).
  beyond := n < max_rows AND EXISTS (SELECT 1 FROM bm.event_log l WHERE l.seq >= seg.end_seq OFFSET 0);
  IF beyond THEN last_new := seg.end_seq - 1; END IF;
  mine := pg_current_xact_id();
  IF n > 0 THEN
    INSERT INTO bm.event_chain (chain_seq, seq, format, prev_hash, row_hash)
      SELECT p, s, 2, ph, rh FROM unnest(positions, seqs, prevs, hashes) AS x(p, s, ph, rh);
    DELETE FROM bm.audit_gaps g WHERE g.seq = ANY (seqs);
  END IF;
  IF last_new >= h.next_seq THEN
    INSERT INTO bm.audit_gaps (seq, above_xid)
      SELECT x.s, mine
      FROM (SELECT generate_series(h.next_seq, last_new) AS s EXCEPT SELECT unnest(seqs)) x
      WHERE NOT EXISTS (SELECT 1 FROM bm.event_chain c WHERE c.seq = x.s OFFSET 0)
      ON CONFLICT (seq) DO NOTHING;
  END IF;
  DELETE FROM bm.audit_gaps g
    WHERE g.above_xid <= pg_snapshot_xmin(pg_current_snapshot())
      AND NOT EXISTS (SELECT 1 FROM bm.event_log l WHERE l.seq = g.seq OFFSET 0);
  UPDATE bm.audit_head SET chain_seq = pos, row_hash = prev, sealed_at = clock_timestamp(), next_seq = last_new + 1;
  -- Every number of the segment passed and none still open: the segment is closed.
  IF last_new + 1 >= seg.end_seq AND seg.closed_at IS NULL
     AND NOT EXISTS (SELECT 1 FROM bm.audit_gaps g WHERE g.seq < seg.end_seq) THEN
    UPDATE bm.audit_segments s SET closed_at = clock_timestamp(), chain_last = pos, last_hash = prev,
        chain_first = coalesce((SELECT p.chain_last FROM bm.audit_segments p WHERE p.segment = seg.segment - 1), 0) + 1
      WHERE s.segment = seg.segment
      RETURNING * INTO seg;
    INSERT INTO bm.event_log (actor, action, subject, payload)
    VALUES ('sealer', 'audit.segment_closed', 'segment:' || seg.segment,
            jsonb_build_object('segment', seg.segment, 'first_seq', seg.first_seq, 'end_seq', seg.end_seq,
                               'chain_first', seg.chain_first, 'chain_last', seg.chain_last,
                               'last_hash', encode(seg.last_hash, 'hex')));
  END IF;
  -- More waits when the pass stopped at its limit, or closed a segment (the next one's rows are
  -- for the next pass); not while a transaction open across the boundary holds the segment open.
  RETURN QUERY SELECT n, pos, n >= max_rows OR seg.closed_at IS NOT NULL AND beyond;
END
$$;

-- The archive of a closed segment was written and read back: its SHA-256, recorded in the segment's
-- row and in the chain.
CREATE FUNCTION bm.audit_segment_exported(n integer, sha256 text, file text, events bigint)
  RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog AS
$$
DECLARE
  seg bm.audit_segments;
BEGIN
  SELECT * INTO seg FROM bm.audit_segments WHERE segment = n FOR UPDATE;
  IF NOT FOUND OR seg.closed_at IS NULL OR seg.detached_at IS NOT NULL THEN
    RAISE EXCEPTION 'segment % is not a closed segment in the database', n USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF sha256 !~ '^[0-9a-f]{64}$' THEN
    RAISE EXCEPTION 'not a SHA-256: %', sha256 USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF events <> coalesce(seg.chain_last - seg.chain_first + 1, 0) THEN
    RAISE EXCEPTION 'segment % holds % events; the archive has %', n, seg.chain_last - seg.chain_first + 1, events
      USING ERRCODE = 'data_exception';
  END IF;
  UPDATE bm.audit_segments SET exported_at = clock_timestamp(), exported_sha256 = sha256 WHERE segment = n;
  INSERT INTO bm.event_log (actor, action, subject, payload)
  VALUES (session_user, 'audit.segment_exported', 'segment:' || n,
          jsonb_build_object('segment', n, 'file', file, 'sha256', sha256, 'events', events,
                             'chain_first', seg.chain_first, 'chain_last', seg.chain_last, 'last_hash', encode(seg.last_hash, 'hex')));
END
$$;

-- Every covered record whose latest `record.written` event lies in segment `n` is written again,
-- as that event recorded it (not as the row is now: a row changed behind the triggers stays a
-- mismatch), in `record.written` events with op "carried", 2,000 rows to an event. Returns how many
-- records were carried.
CREATE FUNCTION bm.audit_carry_forward(n integer)
  RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog SET TimeZone = 'UTC' SET extra_float_digits = 1 AS
$$
DECLARE
  seg bm.audit_segments;
  t record;
  moved bigint;
  total bigint := 0;
BEGIN
  SELECT * INTO seg FROM bm.audit_segments WHERE segment = n FOR UPDATE;
  IF NOT FOUND OR seg.closed_at IS NULL OR seg.detached_at IS NOT NULL THEN
    RAISE EXCEPTION 'segment % is not a closed segment in the database', n USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF seg.carried_at IS NOT NULL THEN
    RETURN 0;
  END IF;
  FOR t IN SELECT a.table_name AS name FROM bm.audited_tables a ORDER BY a.table_name LOOP
    EXECUTE format($q$
      WITH latest AS (
        SELECT DISTINCT ON (r->>'key') r->>'key' AS k, r AS entry, e.seq
        FROM bm.event_log e CROSS JOIN LATERAL jsonb_array_elements(e.payload->'rows') r
        WHERE e.action = 'record.written' AND e.subject = %L
        ORDER BY r->>'key', e.seq DESC),
      carried AS (
        SELECT k, entry, (row_number() OVER (ORDER BY k) - 1) / 2000 AS chunk FROM latest
        WHERE seq >= %s AND seq < %s),
      written AS (
        INSERT INTO bm.event_log (actor, action, subject, payload)
        SELECT session_user, 'record.written', %L,
               jsonb_build_object('table', %L, 'op', 'carried', 'from_segment', %s, 'rows', jsonb_agg(entry ORDER BY k))
        FROM carried GROUP BY chunk ORDER BY chunk
        RETURNING 1)
      SELECT count(*) FROM carried$q$,
      'table:' || t.name, seg.first_seq, seg.end_seq, 'table:' || t.name, t.name, n) INTO moved;
    total := total + moved;
  END LOOP;
  UPDATE bm.audit_segments SET carried_at = clock_timestamp() WHERE segment = n;
  INSERT INTO bm.event_log (actor, action, subject, payload)
  VALUES (session_user, 'audit.records_carried', 'segment:' || n, jsonb_build_object('segment', n, 'records', total));
  RETURN total;
END
$$;

-- Moves segment `n` out of the database: the oldest segment still attached, closed, exported with
-- this SHA-256 (the caller has read the archive back and hashed it), its records carried forward,
-- and its closing, export and carry events already chained in a later segment. Detaching takes a
-- lock that holds inserts back for its moment (at most `lock_timeout`, 5 s, then it gives up and
-- changes nothing). Only the schema owner may call it.
CREATE FUNCTION bm.audit_detach_segment(n integer, archive_sha256 text)
  RETURNS void LANGUAGE plpgsql SET search_path = bm, pg_catalog SET lock_timeout = '5s' AS
$$
DECLARE
  seg bm.audit_segments;
  action_name text;
BEGIN
  SELECT * INTO seg FROM bm.audit_segments WHERE segment = n FOR UPDATE;
  IF NOT FOUND OR seg.detached_at IS NOT NULL THEN
    RAISE EXCEPTION 'segment % is not in the database', n USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF EXISTS (SELECT 1 FROM bm.audit_segments s WHERE s.segment < n AND s.detached_at IS NULL) THEN
    RAISE EXCEPTION 'segment % is not the oldest in the database: segments leave oldest first', n
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF seg.closed_at IS NULL THEN
    RAISE EXCEPTION 'segment % is not closed', n USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF seg.exported_sha256 IS NULL OR seg.exported_sha256 <> archive_sha256 THEN
    RAISE EXCEPTION 'segment %''s archive has SHA-256 %, the export recorded %', n, archive_sha256, coalesce(seg.exported_sha256, 'none')
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF seg.carried_at IS NULL THEN
    RAISE EXCEPTION 'segment %''s records are not carried forward', n USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  FOREACH action_name IN ARRAY ARRAY['audit.segment_closed', 'audit.segment_exported', 'audit.records_carried'] LOOP
    IF NOT EXISTS (SELECT 1 FROM bm.event_log e JOIN bm.event_chain c ON c.seq = e.seq
                   WHERE e.action = action_name AND e.subject = 'segment:' || n AND e.seq >= seg.end_seq) THEN
      RAISE EXCEPTION 'segment %''s % event is not chained yet', n, action_name USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
  END LOOP;
  EXECUTE format('ALTER TABLE bm.event_log DETACH PARTITION bm.%I', format('event_log_s%s', lpad(n::text, 6, '0')));
  EXECUTE format('ALTER TABLE bm.event_chain DETACH PARTITION bm.%I', format('event_chain_s%s', lpad(n::text, 6, '0')));
  EXECUTE format('DROP TABLE bm.%I, bm.%I', format('event_log_s%s', lpad(n::text, 6, '0')), format('event_chain_s%s', lpad(n::text, 6, '0')));
  UPDATE bm.audit_segments SET detached_at = clock_timestamp() WHERE segment = n;
  INSERT INTO bm.event_log (actor, action, subject, payload)
  VALUES (session_user, 'audit.segment_detached', 'segment:' || n,
          jsonb_build_object('segment', n, 'sha256', archive_sha256, 'chain_first', seg.chain_first, 'chain_last', seg.chain_last,
                             'last_hash', encode(seg.last_hash, 'hex')));
END
$$;
REVOKE ALL ON FUNCTION bm.audit_segment_exported(integer, text, text, bigint), bm.audit_carry_forward(integer),
  bm.audit_detach_segment(integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm.audit_segment_exported(integer, text, text, bigint), bm.audit_carry_forward(integer)
  TO bloodmatch_app, bloodmatch_operator;
