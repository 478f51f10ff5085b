import BloodMatchCore
import Foundation
import Logging
import PostgresNIO

/// Everything recorded about one donation's units (every product code of a DIN, or one), for a
/// recall or an auditor's question "what happened to unit X and why".
public struct UnitTrace: Sendable {
    /// A snapshot in which the unit appeared, changed or disappeared.
    public struct Movement: Sendable, Hashable {
        /// The unit's product code.
        public var productCode: String
        /// Snapshot id.
        public var snapshotID: Int64
        /// Centre.
        public var centre: String
        /// The snapshot's as-of time.
        public var asOf: Date
        /// When it was loaded.
        public var importedAt: Date
        /// `appeared`, `changed`, `disappeared`.
        public var change: String
        /// Status in that snapshot (last known, for `disappeared`).
        public var status: String
        /// Expiry in that snapshot.
        public var expiresAt: Date
    }

    /// A decision that chose or considered the unit.
    public struct DecisionLine: Sendable, Hashable {
        /// The unit's product code.
        public var productCode: String
        /// Decision id.
        public var decisionID: UUID
        /// Recorded at (database clock).
        public var recordedAt: Date
        /// Hospital.
        public var hospital: String?
        /// Outcome of the whole decision.
        public var outcome: String
        /// Chosen or rejected.
        public var chosen: Bool
        /// Why.
        public var reason: String
        /// Policy version.
        public var policyVersion: String
    }

    /// A hold on the unit.
    public struct Hold: Sendable, Hashable {
        /// The unit's product code.
        public var productCode: String
        /// Reservation id.
        public var reservationID: UUID
        /// Hospital.
        public var hospital: String
        /// State of this unit in it.
        public var state: String
        /// For an active hold that can no longer be issued: why (against the snapshots in force).
        public var blocked: String?
        /// Created.
        public var createdAt: Date
        /// Held until.
        public var heldUntil: Date
        /// Last state change.
        public var stateChangedAt: Date
        /// Who reserved.
        public var reservedBy: String
    }

    /// The DIN.
    public var din: String
    /// The product code asked for, or nil for every component of the donation.
    public var productCode: String?
    /// The product codes seen under this DIN.
    public var productCodes: [String]
    /// Snapshot history.
    public var movements: [Movement]
    /// Decisions.
    public var decisions: [DecisionLine]
    /// Holds.
    public var holds: [Hold]
    /// Distribution records.
    public var distributions: [DistributionRecord]
    /// Receipts and fates after issue.
    public var fates: [UnitFateRecord]
    /// Times the unit was reported current at two centres.
    public var conflicts: [(productCode: String, centre: String, otherCentre: String, detectedAt: Date)]
    /// Audit events about it (reservations, issues, decisions that named it), in chain order.
    public var events: [AuditEvent]
}

/// Reads a unit's whole history from PostgreSQL.
public struct PostgresUnitTrace: Sendable {
    /// The pool.
    public let database: Database

    /// Creates the reader.
    public init(database: Database) { self.database = database }

    /// The history of every component of the donation `din`, or of the one unit `din` + `productCode`;
    /// empty parts when nothing was recorded.
    public func trace(din: String, productCode: String? = nil) async throws -> UnitTrace {
        let logger = database.logger
        let client = database.client
        var movements: [UnitTrace.Movement] = []
        for try await r in try await client.query("""
            SELECT m.product_code, m.snapshot_id, m.centre, s.as_of, s.imported_at, m.change, m.status, m.expires_at
            FROM unit_movements m JOIN inventory_snapshots s USING (snapshot_id)
            WHERE m.din = \(din) AND (\(productCode)::text IS NULL OR m.product_code = \(productCode))
            ORDER BY s.imported_at, m.snapshot_id, m.product_code
            """, logger: logger).decode((String, Int64, String, Date, Date, String, String, Date).self) {
            movements.append(.init(productCode: r.0, snapshotID: r.1, centre: r.2, asOf: r.3, importedAt: r.4, change: r.5, status: r.6, expiresAt: r.7))
        }
        var decisions: [UnitTrace.DecisionLine] = []
        for try await r in try await client.query("""
            SELECT u.product_code, d.decision_id, d.recorded_at, d.hospital, d.outcome, u.chosen, u.reason, d.policy_version
            FROM decision_units u JOIN decisions d USING (decision_id)
            WHERE u.din = \(din) AND (\(productCode)::text IS NULL OR u.product_code = \(productCode)) ORDER BY d.recorded_at
            """, logger: logger).decode((String, UUID, Date, String?, String, Bool, String, String).self) {
            decisions.append(.init(productCode: r.0, decisionID: r.1, recordedAt: r.2, hospital: r.3, outcome: r.4, chosen: r.5,
                                   reason: r.6, policyVersion: r.7))
        }
        var holds: [UnitTrace.Hold] = []
        for try await r in try await client.query("""
            SELECT u.product_code, r.reservation_id, r.hospital, u.state, r.created_at, r.held_until, u.state_changed_at, r.reserved_by,
              CASE WHEN u.state <> 'active' THEN NULL
                   WHEN r.held_until <= now() THEN 'hold overdue since ' || bm.iso_utc(r.held_until)
                   ELSE bm.unit_blocker(u.din, u.product_code, u.centre) END
            FROM reservation_units u JOIN reservations r USING (reservation_id)
            WHERE u.din = \(din) AND (\(productCode)::text IS NULL OR u.product_code = \(productCode)) ORDER BY r.created_at, u.product_code
            """, logger: logger).decode((String, UUID, String, String, Date, Date, Date, String, String?).self) {
            holds.append(.init(productCode: r.0, reservationID: r.1, hospital: r.2, state: r.3, blocked: r.8, createdAt: r.4, heldUntil: r.5,
                               stateChangedAt: r.6, reservedBy: r.7))
        }
        var conflicts: [(String, String, String, Date)] = []
        for try await r in try await client.query("""
            SELECT product_code, centre, other_centre, detected_at FROM unit_conflicts
            WHERE din = \(din) AND (\(productCode)::text IS NULL OR product_code = \(productCode)) ORDER BY detected_at
            """, logger: logger).decode((String, String, String, Date).self) { conflicts.append(r) }
        let distributions = try await PostgresReservationStore(database: database).distributions(din: din, productCode: productCode)
        let fates = try await PostgresUnitLifecycleStore(database: database).fates(din: din, productCode: productCode)
        let codes = Set(movements.map(\.productCode) + decisions.map(\.productCode) + holds.map(\.productCode)
                        + distributions.map(\.productCode) + fates.map(\.productCode)).sorted()
        let subjects = holds.map { "reservation:" + $0.reservationID.uuidString.lowercased() }
            + decisions.map { "decision:" + $0.decisionID.uuidString.lowercased() }
            + ["unit:" + din] + codes.map { "unit:" + UnitKey(din: din, productCode: $0).description }
        let audit = PostgresAuditLog(database: database)
        var events = try await audit.events(subjects: subjects)
        let seen = Set(events.map(\.seq))
        events += try await audit.events(mentioning: din).filter { !seen.contains($0.seq) }
        events.sort { $0.seq < $1.seq }
        return UnitTrace(din: din, productCode: productCode, productCodes: codes, movements: movements, decisions: decisions,
                         holds: holds, distributions: distributions, fates: fates,
                         conflicts: conflicts.map { (productCode: $0.0, centre: $0.1, otherCentre: $0.2, detectedAt: $0.3) }, events: events)
    }
}
