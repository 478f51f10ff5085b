import Foundation
import PostgresNIO

extension PostgresInventoryImporter {
    /// Records a feed that could not be fetched as an import run with the outcome `fetch_failed`,
    /// with an event, so the failed-import metric and alerts count it like a refused snapshot.
    ///
    /// `source` is the feed's URL as given (it must carry no credentials: the row is append-only
    /// and readable by every role that reads import runs). The centre is `centre` when the control
    /// record arrived and named one, else the centre of the latest run recorded from the same
    /// `source` (a feed polled at a stable address), else unknown (NULL).
    public func recordFetchFailure(source: String, fileName: String, centre: String?, reason: String,
                                   durationMs: Int) async throws -> ImportReport {
        let logger = database.logger
        return try await database.withTransaction { conn in
            var runID: Int64 = 0
            var recordedCentre: String?
            for try await (id, centre) in try await conn.query("""
                INSERT INTO import_runs (source, file_name, centre, outcome, message, duration_ms)
                VALUES (\(source), \(fileName),
                  coalesce(\(centre), (SELECT r.centre FROM import_runs r WHERE r.source = \(source) AND r.centre IS NOT NULL
                                       ORDER BY r.run_id DESC LIMIT 1)),
                  \(ImportOutcome.fetchFailed.rawValue), \(reason), \(durationMs))
                RETURNING run_id, centre
                """, logger: logger).decode((Int64, String?).self) {
                runID = id
                recordedCentre = centre
            }
            let payload = """
                {"run_id":\(runID),"file":\(jsonString(fileName)),"outcome":"\(ImportOutcome.fetchFailed.rawValue)","source":\(jsonString(source))}
                """
            try await conn.query("""
                INSERT INTO event_log (actor, action, subject, payload)
                VALUES ('import', \("import." + ImportOutcome.fetchFailed.rawValue), \("centre:" + (recordedCentre ?? "?")), \(payload)::jsonb)
                """, logger: logger)
            return ImportReport(
                runID: runID, file: fileName, centre: recordedCentre, asOf: nil, sha256: nil, outcome: .fetchFailed,
                rowsTotal: 0, rowsAccepted: 0, rowsRejected: 0, conflicts: 0, snapshotID: nil, message: reason,
                durationMs: durationMs, sampleRejections: [])
        }
    }
}
