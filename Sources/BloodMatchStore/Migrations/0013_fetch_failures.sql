-- BloodMatch schema 0013: a feed that could not be fetched is an import run too.
--
-- Why: `bloodmatch import --url` failed before it reached the database (an unreachable host, a
-- certificate that does not verify, a body over the size cap, no complete answer by the deadline),
-- so nothing was recorded and the failed-import metric and alert never saw a feed that had stopped
-- answering. Such a run is now recorded with the outcome `fetch_failed`, its source URL and the
-- reason; the centre is the one its control record names when that arrived, else the centre of the
-- feed's latest run from the same URL, else NULL. Credentials are never part of the row.
ALTER TABLE bm.import_runs DROP CONSTRAINT import_runs_outcome_check;
ALTER TABLE bm.import_runs ADD CONSTRAINT import_runs_outcome_check
  CHECK (outcome IN ('loaded', 'loaded_with_rejections', 'refused', 'already_imported', 'replay_refused',
                     'failed', 'fetch_failed'));

-- The centre of a feed's latest run, looked up by its URL when a fetch fails before its control
-- record arrives.
CREATE INDEX import_runs_source ON bm.import_runs (source, run_id DESC);
-- Failed runs whose centre is not known, counted over the last hour by the health reader.
CREATE INDEX import_runs_without_centre ON bm.import_runs (finished_at) WHERE centre IS NULL;
