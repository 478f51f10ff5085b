import BloodMatchCore
import BloodMatchIngest
import Crypto
import Foundation
import Logging
import PostgresNIO

// An import's records: the run row, its rejected rows and its event; why a replay is refused.
extension PostgresInventoryImporter {
    /// Why a replay is refused; when the file's bytes (hashed here, whatever the control record
    /// says) equal an earlier snapshot's, it names that snapshot.
    func replayMessage(control: SnapshotControl, inForce: SnapshotInForce, csvPath: String,
                       on conn: PostgresConnection) async throws -> String {
        var message = "snapshot as of \(iso(control.asOf)) is older than the one in force (snapshot \(inForce.id), as of \(iso(inForce.asOf))); refused as a replay"
        guard let sha = Self.sha256(ofFileAt: csvPath, chunkSize: chunkSize, limit: limits.maximumFileBytes) else {
            return message + " (the file could not be read to compare its bytes with earlier snapshots)"
        }
        // The snapshot of the same as_of first: then it is literally that snapshot sent again.
        for try await (id, asOf, sameAsOf) in try await conn.query("""
            SELECT snapshot_id, as_of, as_of = \(control.asOf)::timestamptz FROM inventory_snapshots
            WHERE centre = \(control.centre) AND file_sha256 = \(sha)
            ORDER BY as_of = \(control.asOf)::timestamptz DESC, as_of DESC LIMIT 1
            """, logger: database.logger).decode((Int64, Date, Bool).self) {
            message += sameAsOf
                ? "; it is snapshot \(id) (same as_of and bytes, sha256=\(sha)) sent again"
                : "; its bytes (sha256=\(sha)) equal those of snapshot \(id), as of \(iso(asOf)), which does not make it newer"
        }
        if sha != control.sha256.lowercased() {
            message += "; the file's SHA-256 \(sha) is not the control record's \(control.sha256)"
        }
        return message
    }

    /// Lower-case hex SHA-256 of a file's bytes; nil when it cannot be read or exceeds `limit` bytes.
    static func sha256(ofFileAt path: String, chunkSize: Int, limit: Int) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var hasher = SHA256()
        var total = 0
        do {
            while let chunk = try handle.read(upToCount: chunkSize), !chunk.isEmpty {
                total += chunk.count
                if total > limit { return nil }
                hasher.update(data: chunk)
            }
        } catch {
            return nil
        }
        return hasher.finalize().lowercaseHex
    }

    /// Appends the run, its rejected rows and an event: on `connection` inside the caller's
    /// transaction when given, else in a transaction of their own.
    func recordRun(
        source: SnapshotSource, fileName: String, control: SnapshotControl?, outcome: ImportOutcome, message: String,
        rowsTotal: Int, accepted: Int, rejections: [RowRejection], rejectedCount: Int, conflicts: Int,
        snapshotID: Int64?, sha: String?, started: ContinuousClock.Instant, on connection: PostgresConnection? = nil
    ) async throws -> ImportReport {
        let logger = database.logger
        let elapsed = ContinuousClock.now - started
        let durationMs = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        let insert = { @Sendable (conn: PostgresConnection) async throws -> Int64 in
            var runID: Int64 = 0
            for try await (id,) in try await conn.query("""
                INSERT INTO import_runs (source, file_name, file_sha256, centre, as_of, rows_total, rows_accepted,
                  rows_rejected, outcome, message, snapshot_id, duration_ms)
                VALUES (\(source.origin), \(fileName), \(sha), \(control?.centre), \(control?.asOf), \(rowsTotal), \(accepted),
                  \(rejectedCount), \(outcome.rawValue), \(message), \(snapshotID), \(durationMs))
                RETURNING run_id
                """, logger: logger).decode((Int64,).self) { runID = id }
            if !rejections.isEmpty {
                for batch in stride(from: 0, to: rejections.count, by: 5000).map({ Array(rejections[$0..<min($0 + 5000, rejections.count)]) }) {
                    try await conn.query("""
                        INSERT INTO rejected_rows (run_id, file, line, field, value, reason, message)
                        SELECT \(runID), * FROM unnest(\(batch.map(\.file))::text[], \(batch.map(\.line))::int[],
                          \(batch.map { $0.field ?? "" })::text[], \(batch.map(\.value))::text[],
                          \(batch.map(\.reason.rawValue))::text[], \(batch.map(\.message))::text[])
                        """, logger: logger)
                }
            }
            let payload = """
                {"run_id":\(runID),"file":\(jsonString(fileName)),"outcome":"\(outcome.rawValue)","rows_accepted":\(accepted),"rows_rejected":\(rejectedCount),"snapshot_id":\(snapshotID.map(String.init) ?? "null"),"sha256":\(jsonString(sha ?? ""))}
                """
            try await conn.query("""
                INSERT INTO event_log (actor, action, subject, payload)
                VALUES ('import', \("import." + outcome.rawValue), \("centre:" + (control?.centre ?? "?")), \(payload)::jsonb)
                """, logger: logger)
            return runID
        }
        let runID = if let connection {
            try await insert(connection)
        } else {
            try await database.withTransaction { try await insert($0) }
        }
        return ImportReport(
            runID: runID, file: fileName, centre: control?.centre, asOf: control?.asOf, sha256: sha, outcome: outcome,
            rowsTotal: rowsTotal, rowsAccepted: accepted, rowsRejected: rejectedCount, conflicts: conflicts,
            snapshotID: snapshotID, message: message, durationMs: durationMs,
            sampleRejections: rejections.prefix(20).map(\.description))
    }
}

extension PostgresInventoryImporter {
    /// The id of the centre's snapshot in force when it is the one `control` describes (the same
    /// centre, `as_of` and SHA-256), else nil: a feed polled again need not send its CSV again.
    public func snapshotInForce(matching control: SnapshotControl) async throws -> Int64? {
        var id: Int64?
        for try await (snapshot,) in try await database.client.query("""
            SELECT s.current_snapshot_id FROM centre_status s JOIN inventory_snapshots n ON n.snapshot_id = s.current_snapshot_id
            WHERE s.centre = \(control.centre) AND s.last_as_of = \(control.asOf)::timestamptz AND n.file_sha256 = \(control.sha256.lowercased())
            """, logger: database.logger).decode((Int64,).self) { id = snapshot }
        return id
    }

    /// Records a feed whose control record named the snapshot in force (`snapshotInForce`): an
    /// `already_imported` run and its event, as when the same file is imported again; its CSV was
    /// not fetched. The bytes in force were verified when they loaded; a feed file that differs
    /// from its own control record would be refused, never loaded, so nothing is missed.
    /// The snapshot in force is read again under the centre's lock in the transaction that records
    /// the run: when a newer one has loaded since the control record was read, the run is a
    /// `replay_refused`, as importing the file itself would now be.
    public func recordAlreadyInForce(origin: String, fileName: String, control: SnapshotControl, snapshotID: Int64) async throws -> ImportReport {
        let logger = database.logger
        let source = SnapshotSource(csvPath: fileName, origin: origin)
        let sha = control.sha256.lowercased()
        return try await database.withTransaction { conn in
            _ = try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\("bloodmatch.centre:" + control.centre)))", logger: logger).collect()
            var current: (id: Int64, asOf: Date)?
            for try await (id, asOf) in try await conn.query(
                "SELECT current_snapshot_id, last_as_of FROM centre_status WHERE centre = \(control.centre)", logger: logger
            ).decode((Int64, Date).self) { current = (id, asOf) }
            if let current, current.id != snapshotID {
                return try await recordRun(
                    source: source, fileName: fileName, control: control, outcome: .replayRefused,
                    message: "snapshot as of \(iso(control.asOf)) was the snapshot in force (snapshot \(snapshotID)) when its control record was read; snapshot \(current.id), as of \(iso(current.asOf)), has loaded since; refused as a replay (the CSV was not fetched)",
                    rowsTotal: 0, accepted: 0, rejections: [], rejectedCount: 0, conflicts: 0, snapshotID: nil,
                    sha: sha, started: .now, on: conn)
            }
            return try await recordRun(
                source: source, fileName: fileName, control: control, outcome: .alreadyImported,
                message: "already imported sha256=\(sha) as snapshot \(snapshotID) (as of \(iso(control.asOf))), the snapshot in force: its control record says so, and the CSV was not fetched again; nothing changed",
                rowsTotal: 0, accepted: 0, rejections: [], rejectedCount: 0, conflicts: 0, snapshotID: nil,
                sha: sha, started: .now, on: conn)
        }
    }
}
