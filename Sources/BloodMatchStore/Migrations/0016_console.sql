-- BloodMatch schema 0016: the dispatcher console's viewers and its own events.
--
-- `bloodmatch_viewer`: a named login that may look (every table, as any operator) and do nothing
-- else: no decision, hold, issue, order or key. Viewers log in to the console like dispatchers
-- (the database authenticates them; pg_hba's `+bloodmatch_operator` line covers them too).
--
-- bm.console_record: how the console writes what a logged-in operator saw and did (log-in,
-- log-out, each page and data request, each refused request) into the event log, on that
-- operator's own connection. The function runs with its owner's rights so a viewer, who may not
-- insert into the log, can still be recorded; it takes `console.*` actions only, so no one can
-- write another kind of event through it; and the event log's stamp still sets the actor from the
-- login (`session_user`), so no one can be recorded as someone else.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bloodmatch_viewer') THEN
    BEGIN
      CREATE ROLE bloodmatch_viewer NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- another database's migration won
    END;
  END IF;
END $$;

DO $$
BEGIN
  GRANT bloodmatch_operator TO bloodmatch_viewer;
EXCEPTION WHEN unique_violation THEN NULL;  -- granted concurrently by another database's migration
END $$;

CREATE FUNCTION bm.console_record(action text, subject text, request_id text, payload jsonb) RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = bm, pg_catalog AS
$$
BEGIN
  IF action !~ '^console\.[a-z_.]{1,40}$' THEN
    RAISE EXCEPTION 'console_record writes console.* events only, not %', left(action, 60) USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT pg_has_role(session_user, 'bloodmatch_operator', 'MEMBER') THEN
    RAISE EXCEPTION 'console events are written on an operator''s own login, not as %', session_user USING ERRCODE = 'insufficient_privilege';
  END IF;
  INSERT INTO bm.event_log (actor, action, subject, request_id, payload)
  VALUES (session_user, action, left(subject, 200), nullif(left(request_id, 64), ''), payload);
END
$$;
REVOKE ALL ON FUNCTION bm.console_record(text, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bm.console_record(text, text, text, jsonb) TO bloodmatch_operator;
