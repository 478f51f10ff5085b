-- BloodMatch schema 0015: orders placed through FHIR.
--
-- `client_identifier`: the hospital's own identifier of a SupplyRequest (`system|value`), unique
-- per hospital, so a conditional create (`If-None-Exist: identifier=…`) finds the order it
-- placed before instead of placing it twice, and the SupplyRequest is read back with it.
--
-- `routing`: NULL for orders the batch decides (every order before this migration, and FHIR
-- priorities routine and urgent); 'immediate' for FHIR priorities asap and stat, which cannot wait
-- for the next batch run: they are matched at once by the same engine as POST /v1/matches and
-- their units held through that decision (request id `order:ID`). The batch never takes them.
-- Both columns are nullable so the rows already covered by the audit chain keep their recorded
-- fields (a NULL column is not a changed field).
ALTER TABLE bm.orders ADD COLUMN client_identifier text CHECK (length(client_identifier) BETWEEN 3 AND 600);
ALTER TABLE bm.orders ADD COLUMN routing text CHECK (routing = 'immediate');
CREATE UNIQUE INDEX orders_client_identifier ON bm.orders (hospital, client_identifier) WHERE client_identifier IS NOT NULL;
