-- BloodMatch schema 0007: a snapshot is its centre and its as_of, not its bytes.
--
-- Until now a centre's snapshots were unique by the SHA-256 of their CSV, and the importer called
-- any file whose control record named a known SHA-256 "already imported" before reading it. But two
-- real snapshots can hold the same bytes: a centre whose stock did not change re-sends it with a
-- newer as_of (a heartbeat), which must load, or its data age never refreshes and it shows stale
-- while its feed is on time; and stock can return to an earlier state (A quarantines a unit, B
-- releases it, C quarantines it again with A's very bytes), where refusing C kept B in force and
-- the quarantined unit on offer. The SHA-256 proves the bytes arrived whole; (centre, as_of) names
-- the snapshot. Against the snapshot in force the importer loads a newer as_of, refuses an older
-- one as a replay, and reads the same as_of in full before calling it already imported (same
-- bytes) or refusing it (other bytes).
--
-- Rows already stored satisfy the new constraint: only snapshots newer than the centre's snapshot
-- in force were ever loaded. The plain index on (centre, file_sha256) lets a refused replay name
-- the earlier snapshot whose bytes it repeats.

ALTER TABLE bm.inventory_snapshots DROP CONSTRAINT inventory_snapshots_centre_file_sha256_key;
ALTER TABLE bm.inventory_snapshots ADD CONSTRAINT inventory_snapshots_centre_as_of_key UNIQUE (centre, as_of);
CREATE INDEX inventory_snapshots_centre_sha256 ON bm.inventory_snapshots (centre, file_sha256);
