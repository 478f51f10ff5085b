-- BloodMatch schema 0011: late answers and what-if decisions.
--
-- A decision whose units were found but all arrive after the deadline (the urgency's time ceiling,
-- or the request's needed_by when sooner) is recorded with the outcome `late`, so it is never read
-- as a plain success (Data/SOURCES.md §S27).
ALTER TABLE bm.decisions DROP CONSTRAINT decisions_outcome_check;
ALTER TABLE bm.decisions ADD CONSTRAINT decisions_outcome_check
  CHECK (outcome IN ('fulfilled', 'partial', 'none_compatible_available', 'unable_to_verify', 'late'));

-- A what-if is a decision evaluated at an instant the caller chose (`match --as-of`) on the stock
-- in force now: it is recorded like any decision (its rationale carries "whatIf": true) but it
-- describes no real moment, so nothing may be held on its strength. The database refuses the hold
-- whatever the application does (SQLSTATE BM001); without a hold nothing can be issued.
CREATE FUNCTION bm.refuse_what_if_hold() RETURNS trigger
  LANGUAGE plpgsql SET search_path = bm, pg_catalog AS
$$
BEGIN
  IF NEW.decision_id IS NOT NULL AND EXISTS (
       SELECT 1 FROM bm.decisions d
       WHERE d.decision_id = NEW.decision_id AND coalesce((d.rationale->>'whatIf')::boolean, false)) THEN
    RAISE EXCEPTION 'decision % is a what-if (evaluated at a chosen instant on the stock in force now): it cannot be reserved or issued',
      NEW.decision_id USING ERRCODE = 'BM001';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER reservations_refuse_what_if BEFORE INSERT ON bm.reservations
  FOR EACH ROW EXECUTE FUNCTION bm.refuse_what_if_hold();
