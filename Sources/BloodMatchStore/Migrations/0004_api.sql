-- BloodMatch schema, version 4: hospital API keys.
-- A key is shown once when created; only the SHA-256 of its secret is stored. The key id is the
-- public part of the token (`bmk_<key id>.<secret>`), so lookup is by id and the secret is compared
-- by hash. A key is never deleted or re-enabled: revocation sets `revoked_at` once, and creation
-- and revocation are also appended to bm.event_log.

CREATE TABLE bm.api_keys (
  key_id         text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{16}$'),
  hospital       text NOT NULL REFERENCES bm.sites,
  secret_sha256  text NOT NULL CHECK (secret_sha256 ~ '^[0-9a-f]{64}$'),
  label          text NOT NULL DEFAULT '',
  created_at     timestamptz NOT NULL DEFAULT now(),
  created_by     text NOT NULL DEFAULT current_user,
  expires_at     timestamptz NOT NULL,
  revoked_at     timestamptz,
  revoked_by     text,
  CHECK (expires_at > created_at)
);
CREATE INDEX api_keys_hospital ON bm.api_keys (hospital, created_at DESC);

-- The only change ever allowed to a key: revoking it, once. Everything else is refused, even to
-- the owner, so a revoked or expired key cannot be brought back by mistake.
CREATE FUNCTION bm.api_keys_revoke_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
     AND (NEW.key_id, NEW.hospital, NEW.secret_sha256, NEW.label, NEW.created_at, NEW.created_by, NEW.expires_at)
         IS NOT DISTINCT FROM
         (OLD.key_id, OLD.hospital, OLD.secret_sha256, OLD.label, OLD.created_at, OLD.created_by, OLD.expires_at) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'bm.api_keys: % is refused: a key can only be revoked, once', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER api_keys_revoke_only BEFORE UPDATE OR DELETE ON bm.api_keys
  FOR EACH ROW EXECUTE FUNCTION bm.api_keys_revoke_only();
CREATE TRIGGER api_keys_no_truncate BEFORE TRUNCATE ON bm.api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION bm.refuse_change();

-- The service reads keys; key management runs as the owner (`bloodmatch hospital key …`).
GRANT SELECT ON bm.api_keys TO bloodmatch_app;

-- Access records are bm.event_log rows with action 'api.request' (subject = route); this index
-- serves "what did hospital H ask, and when".
CREATE INDEX event_log_actor_action ON bm.event_log (actor, action, seq);
