import Foundation
import Logging
import PostgresNIO

/// Everything recorded about one unit, for a recall or an auditor's question "what happened to unit X and why".
public struct UnitTrace: Sendable {
    /// A snapshot in which the unit appeared, changed or disappeared.
    public struct Movement: Sendable, Hashable {
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
        /// Reservation id.
        public var reservationID: UUID
        /// Hospital.
        public var hospital: String
        /// State of this unit in it.
        public var state: String
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
    /// Snapshot history.
    public var movements: [Movement]
    /// Decisions.
    public var decisions: [DecisionLine]
    /// Holds.
    public var holds: [Hold]
    /// Distribution records.
    public var distributions: [DistributionRecord]
    /// Times the unit was reported current at two centres.
    public var conflicts: [(centre: String, otherCentre: String, detectedAt: Date)]
    /// Audit events about it (reservations, issues, decisions that named it), in chain order.
    public var events: [AuditEvent]
}

/// Reads a unit's whole history from PostgreSQL.
public struct PostgresUnitTrace: Sendable {
    /// The pool.
    public let database: Database

    /// Creates the reader.
    public init(database: Database) { self.database = database }

    /// The unit's history; empty parts when nothing was recorded.
    public func trace(din: String) async throws -> UnitTrace {
        let logger = database.logger
        let client = database.client
        var movements: [UnitTrace.Movement] = []
        for try await r in try await client.query("""
            SELECT m.snapshot_id, m.centre, s.as_of, s.imported_at, m.change, m.status, m.expires_at
            FROM unit_movements m JOIN inventory_snapshots s USING (snapshot_id)
            WHERE m.din = \(din) ORDER BY s.imported_at, m.snapshot_id
            """, logger: logger).decode((Int64, String, Date, Date, String, String, Date).self) {
            movements.append(.init(snapshotID: r.0, centre: r.1, asOf: r.2, importedAt: r.3, change: r.4, status: r.5, expiresAt: r.6))
        }
        var decisions: [UnitTrace.DecisionLine] = []
        for try await r in try await client.query("""
            SELECT d.decision_id, d.recorded_at, d.hospital, d.outcome, u.chosen, u.reason, d.policy_version
            FROM decision_units u JOIN decisions d USING (decision_id)
            WHERE u.din = \(din) ORDER BY d.recorded_at
            """, logger: logger).decode((UUID, Date, String?, String, Bool, String, String).self) {
            decisions.append(.init(decisionID: r.0, recordedAt: r.1, hospital: r.2, outcome: r.3, chosen: r.4, reason: r.5, policyVersion: r.6))
        }
        var holds: [UnitTrace.Hold] = []
        for try await r in try await client.query("""
            SELECT r.reservation_id, r.hospital, u.state, r.created_at, r.held_until, u.state_changed_at, r.reserved_by
            FROM reservation_units u JOIN reservations r USING (reservation_id)
            WHERE u.din = \(din) ORDER BY r.created_at
            """, logger: logger).decode((UUID, String, String, Date, Date, Date, String).self) {
            holds.append(.init(reservationID: r.0, hospital: r.1, state: r.2, createdAt: r.3, heldUntil: r.4, stateChangedAt: r.5, reservedBy: r.6))
        }
        var conflicts: [(String, String, Date)] = []
        for try await r in try await client.query(
            "SELECT centre, other_centre, detected_at FROM unit_conflicts WHERE din = \(din) ORDER BY detected_at",
            logger: logger).decode((String, String, Date).self) { conflicts.append(r) }
        let distributions = try await PostgresReservationStore(database: database).distributions(din: din)
        let subjects = holds.map { "reservation:" + $0.reservationID.uuidString.lowercased() }
            + decisions.map { "decision:" + $0.decisionID.uuidString.lowercased() } + ["unit:" + din]
        let audit = PostgresAuditLog(database: database)
        var events = try await audit.events(subjects: subjects)
        let seen = Set(events.map(\.chainSeq))
        events += try await audit.events(mentioning: din).filter { !seen.contains($0.chainSeq) }
        events.sort { $0.chainSeq < $1.chainSeq }
        return UnitTrace(din: din, movements: movements, decisions: decisions, holds: holds, distributions: distributions,
                         conflicts: conflicts.map { (centre: $0.0, otherCentre: $0.1, detectedAt: $0.2) }, events: events)
    }
}
