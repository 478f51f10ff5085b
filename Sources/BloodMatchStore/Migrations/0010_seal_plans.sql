-- BloodMatch schema 0010: the sealer reads only the rows it has not chained yet, however long the
-- log and whatever else runs on the server; large JSON values are compressed with lz4.
--
-- Why: each seal read the whole log (measured: 114,173 rows read per seal, 137 ms, four seals a
-- second, on a log of 114,173 rows; it grows with the log, so a log of millions of rows takes longer
-- to seal than the sealing interval). 0009 found new rows as "rows of transactions from floor_xid
-- on": PL/pgSQL kept a generic plan for that (made without the floor's value) from the sixth call of
-- a session, a walk of the primary key from the first row, and a log without statistics was
-- planned the same way. Worse, the floor is the oldest transaction running anywhere on the server:
-- one long transaction, in this database or in any other, kept every row written since it began
-- in every seal's scan (60,000 buffers a seal in the test suite, with other suites running).
--
-- Now the sealer keeps its place in the numbering instead: bm.audit_head.next_seq, below which every
-- number is chained, listed in bm.audit_gaps, or will never be used. A pass chains, in seq order,
-- the rows now visible among the gaps and the rows from next_seq on (primary-key reads, the same
-- plan whether generic or not, with or without statistics); the numbers it passed over with no
-- visible row become gaps. A gap is a row whose transaction has not committed yet, or a number that
-- will never be used (a rolled-back insert). Each gap is noted with the pass's own transaction id,
-- which is above the id of any transaction that holds the gap's number: the holder took its id
-- before its number (the stamp below), its number before the number of a row the pass saw
-- committed, so before the pass read the log; and the pass takes its id only after reading. Once
-- no transaction with a lower id than that is running, the gap's row is visible or will never exist,
-- and the gap is dropped. The rule needs numbers handed out in the order they are asked for:
-- bm.event_log_seq keeps CACHE 1. Measured on a 20,000-row log with a transaction left open and
-- generic plans forced: 28 buffers a seal (0009: 924).
-- The model is still Certificate Transparency's merge delay (RFC 9162 §4.1; Data/SOURCES.md §S25).

CREATE OR REPLACE FUNCTION bm.event_log_stamp() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog AS
$$
BEGIN
  -- The transaction id first, then the number (see the gap rule above).
  NEW.xid := pg_current_xact_id();
  NEW.seq := nextval('bm.event_log_seq');
  NEW.occurred_at := clock_timestamp();
  NEW.actor_role := session_user;
  NEW.actor := bm.audit_actor(session_user, NEW.actor);
  NEW.client_addr := coalesce(host(inet_client_addr()), 'local');
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

ALTER SEQUENCE bm.event_log_seq CACHE 1;

CREATE TABLE bm.audit_gaps (
  seq         bigint PRIMARY KEY,
  above_xid   xid8 NOT NULL
);
REVOKE ALL ON bm.audit_gaps FROM PUBLIC;
GRANT SELECT ON bm.audit_gaps TO bloodmatch_app, bloodmatch_import, bloodmatch_operator;

-- Where the sealer starts: no insert is in progress while this runs (SHARE waits for the writers
-- and holds new ones until the migration commits), so every row is visible. The rows 0009's sealer
-- has not chained yet become gaps (the next pass chains them); the next number is past the last row.
LOCK TABLE bm.event_log IN SHARE MODE;
INSERT INTO bm.audit_gaps (seq, above_xid)
  SELECT l.seq, pg_current_xact_id() FROM bm.event_log l
  WHERE NOT EXISTS (SELECT 1 FROM bm.event_chain c WHERE c.seq = l.seq);
ALTER TABLE bm.audit_head ADD COLUMN next_seq bigint;
UPDATE bm.audit_head SET next_seq = coalesce((SELECT max(l.seq) FROM bm.event_log l), 0) + 1;
ALTER TABLE bm.audit_head ALTER COLUMN next_seq SET NOT NULL, DROP COLUMN floor_xid;

-- Chains up to `max_rows` committed, unchained rows; returns how many, the new head, and whether
-- more are waiting. One sealer at a time: a second caller returns at once with 0. New rows link to
-- the stored head, never to "the last row in the table", so a removed tail stays a gap in the chain;
-- when the head is not the last entry's position and hash (the tail or the head was changed),
-- nothing is sealed and -1 is returned: the chain is not extended from a damaged end, events wait
-- (still committed), `audit verify` names the damage and the unsealed-age alert fires.
CREATE OR REPLACE FUNCTION bm.audit_seal(max_rows integer DEFAULT 50000)
  RETURNS TABLE (sealed integer, head_chain_seq bigint, more_waiting boolean)
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog
  -- The rows from `next_seq` on are read through the primary key whatever the planner believes:
  -- on a log without statistics (new, or between autovacuum runs after a bulk write) it guessed a
  -- third of the log and chose to scan and sort all of it at every pass.
  SET enable_seqscan = off AS
$$
DECLARE
  h bm.audit_head;
  e bm.event_log;
  n integer := 0;
  pos bigint;
  prev bytea;
  last_new bigint;
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
    RETURN QUERY SELECT 0, (SELECT a.chain_seq FROM bm.audit_head a), true;
    RETURN;
  END IF;
  -- No row lock here: the advisory lock already keeps other sealers out, and this pass must take
  -- its transaction id only after it has read the log (see the gap rule above).
  SELECT * INTO h FROM bm.audit_head;
  IF h.chain_seq > 0 AND NOT EXISTS (SELECT 1 FROM bm.event_chain c WHERE c.chain_seq = h.chain_seq AND c.row_hash = h.row_hash)
     OR coalesce((SELECT max(c.chain_seq) FROM bm.event_chain c), 0) > h.chain_seq THEN
    RETURN QUERY SELECT -1, h.chain_seq, false;
    RETURN;
  END IF;
  pos := h.chain_seq;
  prev := h.row_hash;
  last_new := h.next_seq - 1;
  -- Every look-up below goes by primary key, one row at a time: `OFFSET 0` keeps each subquery
  -- from being turned into a join, which, on a table without statistics (audit_gaps is small and
  -- new), was planned as a scan of the whole log; `enable_seqscan = off` (above) keeps the range
  -- read on the index.
  FOR e IN SELECT x.* FROM (
        SELECT l.* FROM bm.audit_gaps g CROSS JOIN LATERAL (SELECT * FROM bm.event_log l WHERE l.seq = g.seq OFFSET 0) l
        UNION ALL
        (SELECT l.* FROM bm.event_log l WHERE l.seq >= h.next_seq ORDER BY l.seq LIMIT max_rows)) x
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
  mine := pg_current_xact_id();
  IF n > 0 THEN
    INSERT INTO bm.event_chain (chain_seq, seq, format, prev_hash, row_hash)
      SELECT p, s, 2, ph, rh FROM unnest(positions, seqs, prevs, hashes) AS x(p, s, ph, rh);
    DELETE FROM bm.audit_gaps g WHERE g.seq = ANY (seqs);
  END IF;
  -- Numbers passed over without a row this pass saw become gaps, noted with this pass's id.
  IF last_new >= h.next_seq THEN
    INSERT INTO bm.audit_gaps (seq, above_xid)
      SELECT x.s, mine
      FROM (SELECT generate_series(h.next_seq, last_new) AS s EXCEPT SELECT unnest(seqs)) x
      WHERE NOT EXISTS (SELECT 1 FROM bm.event_chain c WHERE c.seq = x.s OFFSET 0)
      ON CONFLICT (seq) DO NOTHING;
  END IF;
  -- Gaps no running transaction can fill: their rows are visible now (chained by the next pass)
  -- or will never exist. One statement, one snapshot for both conditions.
  DELETE FROM bm.audit_gaps g
    WHERE g.above_xid <= pg_snapshot_xmin(pg_current_snapshot())
      AND NOT EXISTS (SELECT 1 FROM bm.event_log l WHERE l.seq = g.seq OFFSET 0);
  UPDATE bm.audit_head SET chain_seq = pos, row_hash = prev, sealed_at = clock_timestamp(), next_seq = last_new + 1;
  RETURN QUERY SELECT n, pos, n >= max_rows;
END
$$;

-- The large JSON values (each decision's rationale and request, event payloads, the centres' data
-- states) are compressed with lz4 instead of pglz where the server has it: writing a decision cost
-- 0.51 ms with pglz and 0.32-0.38 ms with lz4 (300 national-dataset decisions in one statement,
-- two runs each).
-- Values are unchanged, so nothing recorded or hashed differs; rows written before keep pglz.
-- A server built without lz4 keeps pglz.
DO $$
BEGIN
  ALTER TABLE bm.decisions ALTER COLUMN rationale SET COMPRESSION lz4, ALTER COLUMN request SET COMPRESSION lz4;
  ALTER TABLE bm.event_log ALTER COLUMN payload SET COMPRESSION lz4;
  ALTER TABLE bm.decision_data_states ALTER COLUMN centres SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE 'lz4 is not available on this server: pglz stays';
END $$;
