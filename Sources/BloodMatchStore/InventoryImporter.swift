import BloodMatchCore
import BloodMatchIngest
import Crypto
import Foundation
import Logging
import PostgresNIO

/// How one snapshot import ended; every outcome is recorded in `bm.import_runs`.
public enum ImportOutcome: String, Sendable, Codable {
    /// Loaded; nothing rejected.
    case loaded
    /// Loaded without the rejected rows (within the rejection policy).
    case loadedWithRejections = "loaded_with_rejections"
    /// Refused whole; the centre's previous snapshot stays in force.
    case refused
    /// The snapshot in force sent again: same centre, `as_of` and bytes (verified by reading the
    /// whole file); nothing changed. Same bytes with a newer `as_of` are a new snapshot and load.
    case alreadyImported = "already_imported"
    /// Older than the snapshot in force, whatever its bytes; refused as a replay.
    case replayRefused = "replay_refused"
    /// The server refused the load (a constraint, a lock timeout); nothing changed and the file
    /// may be retried. Losing the connection is not an outcome: it is thrown as unavailability.
    case failed
    /// A feed (`import --url`) could not be fetched: unreachable, no complete answer by the
    /// deadline, a certificate that does not verify, refused credentials, a body over the cap.
    /// Nothing was read into the database; the centre keeps its snapshot in force.
    case fetchFailed = "fetch_failed"
}

/// What an import did, for the log line, the exit code and the dispatcher.
public struct ImportReport: Sendable, Codable {
    /// The run's row in `bm.import_runs`.
    public var runID: Int64
    /// The CSV file.
    public var file: String
    /// Centre named by the control record (nil when the control record itself was unreadable).
    public var centre: String?
    /// The snapshot instant.
    public var asOf: Date?
    /// SHA-256 of the CSV bytes.
    public var sha256: String?
    /// Outcome.
    public var outcome: ImportOutcome
    /// Data rows read.
    public var rowsTotal: Int
    /// Rows loaded.
    public var rowsAccepted: Int
    /// Rows rejected (each stored in `bm.rejected_rows` up to the retention cap).
    public var rowsRejected: Int
    /// Units (DIN and product code) also current at another centre: recorded and held for review.
    public var conflicts: Int
    /// The snapshot now in force, when this run loaded one.
    public var snapshotID: Int64?
    /// A sentence for people.
    public var message: String
    /// Wall time.
    public var durationMs: Int
    /// The first rejections, for display.
    public var sampleRejections: [String]
}

/// Where a snapshot comes from: the CSV file and its control record beside it.
public struct SnapshotSource: Sendable {
    /// The CSV file.
    public var csvPath: String
    /// The control record file (`NAME.ctl.json`).
    public var controlPath: String
    /// Where it came from, for the run record (file path, spool path or URL).
    public var origin: String

    /// A snapshot on disk: `NAME.csv` with `NAME.ctl.json` beside it.
    public init(csvPath: String, origin: String? = nil) {
        self.csvPath = csvPath
        let url = URL(fileURLWithPath: csvPath)
        self.controlPath = url.deletingLastPathComponent()
            .appendingPathComponent(SnapshotControl.controlFileName(forSnapshot: url.lastPathComponent)).path
        self.origin = origin ?? csvPath
    }
}

/// Loads inventory snapshots into PostgreSQL: validated, atomic, idempotent, serialised per centre.
///
/// A snapshot is its centre and `as_of`; the control record's SHA-256 proves the bytes arrived
/// whole, it does not name the snapshot (a centre whose stock did not change sends the same bytes
/// with a newer `as_of`, and stock can return to an earlier state). Against the snapshot in force:
/// a newer `as_of` loads, whatever its bytes; an older one is refused as a replay; the same `as_of`
/// is read and verified in full first, then is already imported when its bytes are the same and
/// refused when they differ.
///
/// One transaction per snapshot: take the centre's advisory lock; compare with the snapshot in
/// force; COPY the validated rows under a new snapshot id; record units (DIN and product code) that
/// are current stock at another centre; swap the centre's pointer; record each unit's movements;
/// delete the superseded rows; record the run. A kill at any moment rolls the whole transaction
/// back, so the previous snapshot stays fully in force.
public struct PostgresInventoryImporter: Sendable {
    /// The pool, as `bloodmatch_import`.
    public let database: Database
    /// When to refuse a whole snapshot for its rejected rows.
    public var policy: RejectionPolicy
    /// Size and clock limits for decoding.
    public var limits: SnapshotLimits
    /// Shelf-life plausibility bounds.
    public var shelfLife: ShelfLifeBounds
    /// Bytes read per chunk.
    public var chunkSize = 1 << 20

    /// Creates an importer.
    public init(database: Database, policy: RejectionPolicy = .standard, limits: SnapshotLimits = .standard,
                shelfLife: ShelfLifeBounds = .standard) {
        self.database = database
        self.policy = policy
        self.limits = limits
        self.shelfLife = shelfLife
    }

    /// The error used inside the load transaction to roll it back while keeping what was learned.
    struct Rollback: Error {
        var outcome: ImportOutcome
        var message: String
        var summary: SnapshotSummary?
        var rowsTotal: Int
        var rejections: [RowRejection]
        var fileError: SnapshotFileError?
    }

    /// The centre's snapshot in force, and where the new snapshot's `as_of` falls against it.
    struct SnapshotInForce {
        var id: Int64
        var asOf: Date
        var sha256: String
        /// The new `as_of` compared by the server at its own precision (microseconds), the one the
        /// unique (centre, as_of) constraint uses: negative older, zero the same, positive newer.
        var order: Int
    }

    /// Imports one snapshot. Throws only when the database is unusable; every data problem is a
    /// recorded outcome instead.
    public func importSnapshot(_ source: SnapshotSource, now: Date) async throws -> ImportReport {
        let started = ContinuousClock.now
        let logger = database.logger
        let fileName = URL(fileURLWithPath: source.csvPath).lastPathComponent

        // The control record first: without it nothing vouches for the file.
        let control: SnapshotControl
        do {
            let controlURL = URL(fileURLWithPath: source.controlPath)
            guard !fileName.hasSuffix(".ctl.json") else {
                throw SnapshotFileError(kind: .controlRecordInvalid, file: fileName,
                                        message: "\(fileName) is a control record; import the snapshot it describes (NAME.csv or a FHIR Bundle NAME.json)")
            }
            guard FileManager.default.fileExists(atPath: source.csvPath) else {
                throw SnapshotFileError(kind: .controlRecordInvalid, file: fileName,
                                        message: "snapshot file \(source.csvPath) does not exist")
            }
            guard let bytes = try? Data(contentsOf: controlURL) else {
                throw SnapshotFileError(kind: .controlRecordInvalid, file: controlURL.lastPathComponent,
                                        message: "control record \(controlURL.lastPathComponent) is missing or unreadable; a snapshot without it is never loaded")
            }
            control = try SnapshotControl.decode(bytes, fileName: controlURL.lastPathComponent)
        } catch let error as SnapshotFileError {
            return try await recordRun(source: source, fileName: fileName, control: nil, outcome: .refused,
                                       message: error.description, rowsTotal: 0, accepted: 0, rejections: [],
                                       rejectedCount: 0, conflicts: 0, snapshotID: nil, sha: nil, started: started)
        }

        var rowsTotal = 0
        do {
            return try await database.client.withConnection { conn in
                try await database.transaction(on: conn, isExpectedRollback: { $0 is Rollback }) { conn -> ImportReport in
                    // Rows are drained so that a failure (a lock timeout) surfaces here, with its own SQLSTATE.
                    _ = try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\("bloodmatch.centre:" + control.centre)))", logger: logger).collect()
                    // The centre must be a known distribution centre.
                    var kind: String?
                    for try await (k,) in try await conn.query("SELECT kind FROM sites WHERE site_id = \(control.centre)", logger: logger).decode((String,).self) { kind = k }
                    guard kind == SiteKind.distributionCentre.rawValue else {
                        throw Rollback(outcome: .refused, message: kind == nil
                                       ? "centre '\(control.centre)' named by \(SnapshotControl.controlFileName(forSnapshot: fileName)) is not a known site; import the site list first"
                                       : "site '\(control.centre)' is a \(kind ?? "?"), not a distribution centre; only distribution centres hold stock",
                                       summary: nil, rowsTotal: 0, rejections: [], fileError: nil)
                    }
                    var inForce: SnapshotInForce?
                    for try await (id, asOf, sha, order) in try await conn.query("""
                        SELECT s.current_snapshot_id, s.last_as_of, n.file_sha256,
                          CASE WHEN \(control.asOf)::timestamptz < s.last_as_of THEN -1
                               WHEN \(control.asOf)::timestamptz = s.last_as_of THEN 0 ELSE 1 END
                        FROM centre_status s JOIN inventory_snapshots n ON n.snapshot_id = s.current_snapshot_id
                        WHERE s.centre = \(control.centre) FOR UPDATE OF s
                        """, logger: logger).decode((Int64, Date, String, Int).self) {
                        inForce = SnapshotInForce(id: id, asOf: asOf, sha256: sha, order: order)
                    }
                    var reader = SnapshotFileReader(
                        decoder: InventorySnapshotDecoder(fileName: fileName, control: control, now: now, limits: limits, shelfLife: shelfLife),
                        csvPath: source.csvPath, fileName: fileName, chunkSize: chunkSize, retainedRejections: limits.maximumRetainedRejections,
                        bundle: FHIRBundleSnapshotDecoder.isBundle(fileName)
                            ? .init(control: control, now: now, limits: limits, shelfLife: shelfLife) : nil)
                    defer { rowsTotal = reader.rowsTotal }

                    // An older snapshot than the one in force is a replay, even when its bytes equal an earlier snapshot's.
                    if let inForce, inForce.order < 0 {
                        throw Rollback(outcome: .replayRefused,
                                       message: try await replayMessage(control: control, inForce: inForce, csvPath: source.csvPath, on: conn),
                                       summary: nil, rowsTotal: 0, rejections: [], fileError: nil)
                    }
                    // The same as_of as the snapshot in force: read and verify the whole file (nothing is
                    // written); only its verified bytes tell the same snapshot again from a changed one.
                    if let inForce, inForce.order == 0 {
                        try await reader.read(copyingAs: nil) { _ in }
                        let summary = try reader.verifiedSummary()
                        if summary.sha256 == inForce.sha256 {
                            throw Rollback(outcome: .alreadyImported,
                                           message: "already imported sha256=\(summary.sha256) as snapshot \(inForce.id) (as of \(iso(inForce.asOf))), the snapshot in force; nothing changed",
                                           summary: nil, rowsTotal: 0, rejections: [], fileError: nil)
                        }
                        throw Rollback(outcome: .refused,
                                       message: "snapshot as of \(iso(control.asOf)) has the as_of of the snapshot in force (snapshot \(inForce.id)) but other bytes: "
                                           + "sha256=\(summary.sha256), the snapshot in force has sha256=\(inForce.sha256); a loaded snapshot is never changed, "
                                           + "so the centre must send its correction with a newer as_of",
                                       summary: summary, rowsTotal: reader.rowsTotal, rejections: reader.rejections, fileError: nil)
                    }
                    let current = inForce.map { ($0.id, $0.asOf) }

                    var snapshotID: Int64 = 0
                    for try await (id,) in try await conn.query("""
                        INSERT INTO inventory_snapshots (centre, as_of, file_sha256, row_count)
                        VALUES (\(control.centre), \(control.asOf), \(control.sha256.lowercased()), \(control.rowCount))
                        RETURNING snapshot_id
                        """, logger: logger).decode((Int64,).self) { snapshotID = id }

                    // Stream: read, decode and validate, COPY the accepted rows.
                    var copyOptions = PostgresCopyFromFormat.TextOptions()
                    copyOptions.delimiter = "\t"
                    let snapshotText = String(snapshotID)
                    try await conn.copyFrom(
                        table: "inventory_units",
                        columns: ["snapshot_id", "din", "product_code", "component", "abo", "rhd", "collected_at",
                                  "expires_at", "site_id", "status", "attributes", "line"],
                        format: .text(copyOptions), logger: logger
                    ) { writer in
                        try await reader.read(copyingAs: snapshotText) { try await writer.write($0) }
                    }
                    let summary = try reader.verifiedSummary()
                    let rejectedCount = reader.rejectedCount
                    let rejections = reader.rejections
                    if case .refuse(let refusal) = policy.verdict(for: summary) {
                        throw Rollback(outcome: .refused, message: refusal.description, summary: summary,
                                       rowsTotal: reader.rowsTotal, rejections: rejections, fileError: nil)
                    }

                    // Units (DIN and product code) that another centre also reports as current stock: a
                    // transfer in flight. One donation's other components elsewhere are other units.
                    var conflicts = 0
                    for try await (n,) in try await conn.query("""
                        WITH found AS (
                          INSERT INTO unit_conflicts (din, product_code, centre, other_centre, snapshot_id)
                          SELECT n.din, n.product_code, \(control.centre), s.centre, \(snapshotID)
                          FROM inventory_units n
                          JOIN inventory_units o ON o.din = n.din AND o.product_code = n.product_code AND o.snapshot_id <> n.snapshot_id
                          JOIN centre_status s ON s.current_snapshot_id = o.snapshot_id AND s.centre <> \(control.centre)
                          WHERE n.snapshot_id = \(snapshotID)
                          RETURNING 1)
                        SELECT count(*)::int FROM found
                        """, logger: logger).decode((Int,).self) { conflicts = n }

                    // Swap the pointer and drop the superseded rows.
                    try await conn.query("""
                        INSERT INTO centre_status (centre, current_snapshot_id, last_as_of, last_import_at)
                        VALUES (\(control.centre), \(snapshotID), \(control.asOf), now())
                        ON CONFLICT (centre) DO UPDATE SET current_snapshot_id = EXCLUDED.current_snapshot_id,
                          last_as_of = EXCLUDED.last_as_of, last_import_at = EXCLUDED.last_import_at
                        """, logger: logger)
                    // Each unit's history for a recall trace, by DIN and product code: the snapshots in which
                    // it appeared, changed status or expiry, and disappeared (the superseded rows are dropped).
                    try await conn.query("""
                        INSERT INTO unit_movements (din, product_code, centre, snapshot_id, change, status, expires_at)
                        SELECT coalesce(n.din, o.din), coalesce(n.product_code, o.product_code), \(control.centre), \(snapshotID),
                          CASE WHEN o.din IS NULL THEN 'appeared' WHEN n.din IS NULL THEN 'disappeared' ELSE 'changed' END,
                          coalesce(n.status, o.status), coalesce(n.expires_at, o.expires_at)
                        FROM (SELECT din, product_code, status, expires_at FROM inventory_units WHERE snapshot_id = \(snapshotID)) n
                        FULL JOIN (SELECT din, product_code, status, expires_at FROM inventory_units WHERE snapshot_id = \(current?.0 ?? -1)) o
                          ON o.din = n.din AND o.product_code = n.product_code
                        WHERE o.din IS NULL OR n.din IS NULL OR o.status <> n.status OR o.expires_at <> n.expires_at
                        """, logger: logger)
                    if let previous = current?.0 {
                        try await conn.query("DELETE FROM inventory_units WHERE snapshot_id = \(previous)", logger: logger)
                    }
                    _ = try await conn.query("SELECT pg_notify('bloodmatch_snapshots', \(control.centre + ":" + snapshotText))", logger: logger).collect()

                    // The run record commits with the stock it describes: no load is ever unrecorded.
                    let outcome: ImportOutcome = rejectedCount == 0 ? .loaded : .loadedWithRejections
                    var message = "loaded snapshot \(snapshotID) for \(control.centre) as of \(iso(control.asOf)): \(summary.acceptedCount) units"
                    if rejectedCount > 0 { message += ", \(rejectedCount) rows rejected (see bm.rejected_rows)" }
                    if conflicts > 0 { message += ", \(conflicts) units (DIN and product code) also current at another centre held for review" }
                    return try await recordRun(source: source, fileName: fileName, control: control, outcome: outcome,
                                               message: message, rowsTotal: summary.rowCount, accepted: summary.acceptedCount,
                                               rejections: rejections, rejectedCount: rejectedCount, conflicts: conflicts,
                                               snapshotID: snapshotID, sha: summary.sha256, started: started, on: conn)
                }
            }
        } catch let rollback as Rollback {
            return try await recordRun(source: source, fileName: fileName, control: control, outcome: rollback.outcome,
                                       message: rollback.message, rowsTotal: rollback.summary?.rowCount ?? rollback.rowsTotal,
                                       accepted: 0, rejections: rollback.rejections,
                                       rejectedCount: rollback.summary?.rejectedCount ?? rollback.rejections.count,
                                       conflicts: 0, snapshotID: nil, sha: rollback.summary?.sha256 ?? control.sha256, started: started)
        } catch where sqlState(error) != nil && !isConnectionFailure(error) {
            // The server refused a statement (the transaction rolled back): record it while the
            // connection still works. Losing the connection is thrown as unavailability instead.
            return try await recordRun(source: source, fileName: fileName, control: control, outcome: .failed,
                                       message: "the database refused the load (SQLSTATE \(sqlState(error) ?? "?")): \(serverMessage(error)); nothing changed",
                                       rowsTotal: rowsTotal, accepted: 0, rejections: [], rejectedCount: 0,
                                       conflicts: 0, snapshotID: nil, sha: control.sha256, started: started)
        }
    }
}
