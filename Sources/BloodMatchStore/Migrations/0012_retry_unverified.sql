-- BloodMatch schema 0012: an "unable to verify" answer is not final for its request id.
--
-- Why: a request id (an API Idempotency-Key, a CLI --request-id) was unique over all decisions, so
-- after a database or clock fault the recorded `unable_to_verify` was replayed for every retry with
-- the same key, for ever, although the README tells hospitals to retry with it. Now only a decision
-- that chose or refused units is final for its request id; a retry after an unverified answer is
-- evaluated again, and the new decision names the unverified one it follows (`retry_of`). Every
-- unverified attempt stays recorded; nothing is overwritten.
ALTER TABLE bm.decisions ADD COLUMN retry_of uuid REFERENCES bm.decisions;
ALTER TABLE bm.decisions DROP CONSTRAINT decisions_request_id_key;
-- At most one final decision per request id (the one a retry returns).
CREATE UNIQUE INDEX decisions_request_final ON bm.decisions (request_id) WHERE outcome <> 'unable_to_verify';
-- Every decision of a request id, newest first: the final one, or the attempts before it.
CREATE INDEX decisions_request ON bm.decisions (request_id, recorded_at DESC);
