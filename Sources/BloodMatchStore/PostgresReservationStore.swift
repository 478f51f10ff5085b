import Crypto
import Foundation
import Logging
import PostgresNIO

/// Where a hold came from.
public enum ReservationSource: String, Sendable, Codable {
    /// From a recorded match decision.
    case decision
    /// From a batch allocation run.
    case batch
    /// Named units, by a dispatcher.
    case manual
}

/// A request to hold units for a hospital.
public struct ReservationRequest: Sendable {
    /// Client-supplied; a retry with the same key returns the original outcome and never holds twice.
    public var idempotencyKey: String
    /// Where the hold came from.
    public var source: ReservationSource
    /// The decision the units were chosen by.
    public var decisionID: UUID?
    /// The batch run that allocated them.
    public var batchRunID: UUID?
    /// The hospital (site id) the units are held for.
    public var hospital: String
    /// Operator name or `hospital:<id>`.
    public var reservedBy: String
    /// The units.
    public var dins: [String]
    /// How long the hold lasts, from the database's clock.
    public var holdSeconds: Int
    /// Client request id.
    public var requestID: String?
    /// W3C trace id.
    public var traceID: String?

    /// Creates a request.
    public init(idempotencyKey: String, source: ReservationSource, decisionID: UUID? = nil, batchRunID: UUID? = nil,
                hospital: String, reservedBy: String, dins: [String], holdSeconds: Int,
                requestID: String? = nil, traceID: String? = nil) {
        self.idempotencyKey = idempotencyKey
        self.source = source
        self.decisionID = decisionID
        self.batchRunID = batchRunID
        self.hospital = hospital
        self.reservedBy = reservedBy
        self.dins = dins
        self.holdSeconds = holdSeconds
        self.requestID = requestID
        self.traceID = traceID
    }

    /// What makes two requests "the same request": a key reused for different content is refused.
    public var fingerprint: String {
        let text = [source.rawValue, decisionID?.uuidString.lowercased() ?? "", batchRunID?.uuidString.lowercased() ?? "",
                    hospital, Set(dins).sorted().joined(separator: ","), String(holdSeconds)].joined(separator: "|")
        return hex(Array(SHA256.hash(data: Array(text.utf8))))
    }
}

/// One held unit.
public struct ReservedUnit: Sendable, Hashable, Codable {
    /// DIN.
    public var din: String
    /// Centre holding the unit.
    public var centre: String
    /// Component code.
    public var component: String
    /// ABO.
    public var abo: String
    /// RhD.
    public var rhd: String
    /// Expiry.
    public var expiresAt: Date
    /// `active`, `released`, `expired` or `issued`.
    public var state: String
    /// When the state last changed (database clock).
    public var stateChangedAt: Date
}

/// A stored hold.
public struct Reservation: Sendable, Hashable, Codable {
    /// Id.
    public var reservationID: UUID
    /// Where it came from.
    public var source: ReservationSource
    /// The decision, if any.
    public var decisionID: UUID?
    /// The batch run, if any.
    public var batchRunID: UUID?
    /// Hospital (site id).
    public var hospital: String
    /// Who reserved.
    public var reservedBy: String
    /// The client's key.
    public var idempotencyKey: String
    /// End of the hold (database clock).
    public var heldUntil: Date
    /// Creation (database clock).
    public var createdAt: Date
    /// Request id.
    public var requestID: String?
    /// Trace id.
    public var traceID: String?
    /// Units.
    public var units: [ReservedUnit]
}

/// Why a unit could not be held.
public struct ReservationConflict: Sendable, Hashable, Codable, CustomStringConvertible {
    /// DIN.
    public var din: String
    /// Why, for the dispatcher.
    public var reason: String
    /// The reservation holding it, when that is the reason.
    public var heldBy: UUID?

    public var description: String { "\(din): \(reason)" }
}

/// The result of `reserve`.
public enum ReservationOutcome: Sendable {
    /// Held; `isNew` is false when an earlier request with the same key made it.
    case reserved(Reservation, isNew: Bool)
    /// Nothing was held: these units could not be (all or nothing).
    case conflict([ReservationConflict])
}

/// The key was used before for a different request.
public struct IdempotencyKeyReuseError: Error, Sendable, CustomStringConvertible {
    /// The key.
    public var key: String
    /// The reservation it belongs to.
    public var reservationID: UUID
    public var description: String {
        "idempotency key '\(key)' was already used for a different request (reservation \(reservationID.uuidString.lowercased())); use a new key"
    }
}

/// A reservation id that does not exist.
public struct ReservationNotFoundError: Error, Sendable, CustomStringConvertible {
    /// The id.
    public var reservationID: UUID
    public var description: String { "no reservation \(reservationID.uuidString.lowercased())" }
}

/// One distribution record (21 CFR 606.165: consignee, date, unit number, product, expiry).
public struct DistributionRecord: Sendable, Hashable, Codable {
    /// Id.
    public var distributionID: UUID
    /// The hold it was issued from.
    public var reservationID: UUID
    /// Unit number.
    public var din: String
    /// Consignee site id.
    public var consignee: String
    /// Consignee name.
    public var consigneeName: String
    /// Consignee place (region).
    public var consigneePlace: String
    /// Dispatching centre.
    public var centre: String
    /// Product.
    public var component: String
    /// ABO.
    public var abo: String
    /// RhD.
    public var rhd: String
    /// Quantity (always 1: one record per unit).
    public var quantity: Int
    /// Expiry.
    public var expiresAt: Date
    /// Date of distribution (database clock).
    public var issuedAt: Date
    /// Who issued.
    public var issuedBy: String
}

/// Holds, releases, expiries and issues, with the database as the only arbiter of who holds a unit:
/// a partial unique index allows one active or issued hold per DIN, and every change is an event.
public struct PostgresReservationStore: Sendable {
    /// The pool, as `bloodmatch_app`.
    public let database: Database

    /// Creates the store.
    public init(database: Database) { self.database = database }

    /// Holds all of `request.dins` or none.
    ///
    /// A unit can be held when it is `AVAILABLE` in exactly one centre's snapshot in force, not
    /// expired by the database's clock, and not held or issued already. Concurrent requests for
    /// the same unit are decided by the unique index (`ON CONFLICT DO NOTHING` waits for the other
    /// transaction): exactly one wins. Deadlocks and serialization failures are retried.
    public func reserve(_ request: ReservationRequest) async throws -> ReservationOutcome {
        try await database.observe("reservation.reserve") {
            let dins = Array(Set(request.dins)).sorted()
            var attempt = 0
            while true {
                attempt += 1
                do {
                    return try await reserveOnce(request, dins: dins)
                } catch where ["40001", "40P01"].contains(sqlState(error) ?? "") && attempt < 5 {
                    try await Task.sleep(for: .milliseconds(10 * attempt))
                } catch where sqlState(error) == "23505" && attempt < 5 {
                    // A concurrent request with the same key committed first: the next attempt returns it.
                    continue
                }
            }
        }
    }

    private struct Refused: Error { var conflicts: [ReservationConflict] }

    private func reserveOnce(_ request: ReservationRequest, dins: [String]) async throws -> ReservationOutcome {
        let logger = database.logger
        if let existing = try await find(idempotencyKey: request.idempotencyKey) {
            guard existing.fingerprint == request.fingerprint else {
                throw IdempotencyKeyReuseError(key: request.idempotencyKey, reservationID: existing.reservation.reservationID)
            }
            return .reserved(existing.reservation, isNew: false)
        }
        let reservationID = UUID()
        do {
            try await database.withTransaction { conn in
                try await Self.expireOverdue(on: conn, dins: dins, logger: logger)
                // The units as offered now: in force, available, unexpired, at one centre only. Their
                // centres' import locks are taken shared and the offer read again, so no snapshot swap
                // can commit between the check and the hold.
                var offered = try await Self.offered(dins, on: conn, logger: logger)
                let centres = Set(offered.values.map(\.0)).sorted()
                if !centres.isEmpty {
                    _ = try await conn.query("""
                        SELECT pg_advisory_xact_lock_shared(hashtext('bloodmatch.centre:' || c)) FROM unnest(\(centres)::text[]) c
                        """, logger: logger).collect()
                    offered = try await Self.offered(dins, on: conn, logger: logger)
                }
                let missing = dins.filter { offered[$0] == nil }
                if !missing.isEmpty {
                    throw Refused(conflicts: try await Self.explainUnavailable(missing, on: conn, logger: logger))
                }
                _ = try await conn.query("""
                    INSERT INTO reservations (reservation_id, source, decision_id, batch_run_id, hospital, reserved_by,
                      idempotency_key, request_fingerprint, held_until, request_id, trace_id)
                    VALUES (\(reservationID), \(request.source.rawValue), \(request.decisionID), \(request.batchRunID),
                      \(request.hospital), \(request.reservedBy), \(request.idempotencyKey), \(request.fingerprint),
                      now() + make_interval(secs => \(request.holdSeconds)), \(request.requestID), \(request.traceID))
                    """, logger: logger).collect()
                let u = dins.map { offered[$0]! }
                var held: Set<String> = []
                for try await (din,) in try await conn.query("""
                    INSERT INTO reservation_units (reservation_id, din, centre, component, abo, rhd, expires_at, state)
                    SELECT \(reservationID), d, c, p, a, r, e, 'active'
                    FROM unnest(\(dins)::text[], \(u.map(\.0))::text[], \(u.map(\.1))::text[], \(u.map(\.2))::text[],
                                \(u.map(\.3))::text[], \(u.map(\.4))::timestamptz[]) AS t(d, c, p, a, r, e)
                    ON CONFLICT (din) WHERE state IN ('active', 'issued') DO NOTHING
                    RETURNING din
                    """, logger: logger).decode((String,).self) { held.insert(din) }
                if held.count != dins.count {
                    let lost = dins.filter { !held.contains($0) }
                    throw Refused(conflicts: try await Self.explainUnavailable(lost, on: conn, logger: logger))
                }
                let payload = #"{"reservation_id":"\#(reservationID.uuidString.lowercased())","source":"\#(request.source.rawValue)","hospital":\#(jsonString(request.hospital)),"units":[\#(dins.map { jsonString($0) }.joined(separator: ","))],"hold_seconds":\#(request.holdSeconds)\#(request.decisionID.map { #","decision_id":"\#($0.uuidString.lowercased())""# } ?? "")\#(request.batchRunID.map { #","batch_run_id":"\#($0.uuidString.lowercased())""# } ?? "")}"#
                try await PostgresAuditLog.append(NewAuditEvent(
                    actor: request.reservedBy, action: "reservation.made", subject: "reservation:" + reservationID.uuidString.lowercased(),
                    payloadJSON: payload, requestID: request.requestID ?? request.idempotencyKey, traceID: request.traceID),
                    on: conn, logger: logger)
            }
        } catch let refused as Refused {
            return .conflict(refused.conflicts)
        }
        guard let stored = try await find(reservationID: reservationID) else { throw ReservationNotFoundError(reservationID: reservationID) }
        return .reserved(stored, isNew: true)
    }

    /// Of `dins`, those offerable now, with centre, component, ABO, RhD and expiry.
    static func offered(_ dins: [String], on conn: PostgresConnection, logger: Logger) async throws
        -> [String: (String, String, String, String, Date)] {
        var offered: [String: (String, String, String, String, Date)] = [:]
        for try await (din, centre, component, abo, rhd, expires) in try await conn.query("""
            SELECT u.din, s.centre, u.component, u.abo, u.rhd, u.expires_at
            FROM inventory_units u JOIN centre_status c ON c.current_snapshot_id = u.snapshot_id
              JOIN inventory_snapshots s ON s.snapshot_id = u.snapshot_id
            WHERE u.din = ANY(\(dins)) AND u.status = 'AVAILABLE' AND u.expires_at > now()
              AND NOT EXISTS (SELECT 1 FROM inventory_units y JOIN centre_status yc ON yc.current_snapshot_id = y.snapshot_id
                              WHERE y.din = u.din AND y.snapshot_id <> u.snapshot_id)
            """, logger: logger).decode((String, String, String, String, String, Date).self) {
            offered[din] = (centre, component, abo, rhd, expires)
        }
        return offered
    }

    /// Says why each DIN cannot be held, in the caller's transaction.
    static func explainUnavailable(_ dins: [String], on conn: PostgresConnection, logger: Logger) async throws -> [ReservationConflict] {
        var reasons: [String: ReservationConflict] = [:]
        for try await (din, state, holder, until) in try await conn.query("""
            SELECT ru.din, ru.state, ru.reservation_id, r.held_until FROM reservation_units ru JOIN reservations r USING (reservation_id)
            WHERE ru.din = ANY(\(dins)) AND ru.state IN ('active', 'issued')
            """, logger: logger).decode((String, String, UUID, Date).self) {
            reasons[din] = ReservationConflict(
                din: din, reason: state == "issued" ? "already issued" : "held by another reservation until \(iso(until))", heldBy: holder)
        }
        for try await (din, status, expires, centres) in try await conn.query("""
            SELECT u.din, min(u.status), min(u.expires_at), count(*)
            FROM inventory_units u JOIN centre_status c ON c.current_snapshot_id = u.snapshot_id
            WHERE u.din = ANY(\(dins)) GROUP BY u.din
            """, logger: logger).decode((String, String, Date, Int).self) where reasons[din] == nil {
            let reason: String
            if centres > 1 { reason = "current at \(centres) centres: held for a human to resolve" }
            else if status != "AVAILABLE" { reason = "status \(status) at its centre" }
            else if expires <= Date() { reason = "expired \(iso(expires))" }
            else { reason = "not available" }
            reasons[din] = ReservationConflict(din: din, reason: reason, heldBy: nil)
        }
        return dins.map { reasons[$0] ?? ReservationConflict(din: $0, reason: "not in any centre's current stock", heldBy: nil) }
    }

    /// Marks overdue active holds on these DINs (or all, when nil) expired, with one event per reservation.
    @discardableResult
    static func expireOverdue(on conn: PostgresConnection, dins: [String]?, actor: String = "expiry", logger: Logger) async throws -> Int {
        var byReservation: [UUID: [String]] = [:]
        let filter: PostgresQuery = dins.map { d in
            """
            UPDATE reservation_units ru SET state = 'expired' FROM reservations r
            WHERE r.reservation_id = ru.reservation_id AND ru.state = 'active' AND r.held_until <= now() AND ru.din = ANY(\(d))
            RETURNING ru.reservation_id, ru.din
            """
        } ?? """
            UPDATE reservation_units ru SET state = 'expired' FROM reservations r
            WHERE r.reservation_id = ru.reservation_id AND ru.state = 'active' AND r.held_until <= now()
            RETURNING ru.reservation_id, ru.din
            """
        for try await (id, din) in try await conn.query(filter, logger: logger).decode((UUID, String).self) {
            byReservation[id, default: []].append(din)
        }
        for (id, units) in byReservation.sorted(by: { $0.key.uuidString < $1.key.uuidString }) {
            try await PostgresAuditLog.append(NewAuditEvent(
                actor: actor, action: "reservation.expired", subject: "reservation:" + id.uuidString.lowercased(),
                payloadJSON: #"{"units":[\#(units.sorted().map { jsonString($0) }.joined(separator: ","))]}"#), on: conn, logger: logger)
        }
        return byReservation.values.reduce(0) { $0 + $1.count }
    }

    /// The expiry job: every overdue hold becomes `expired`; returns the number of units freed.
    public func expireOverdue(actor: String) async throws -> Int {
        let logger = database.logger
        return try await database.withTransaction { conn in
            try await Self.expireOverdue(on: conn, dins: nil, actor: actor, logger: logger)
        }
    }

    /// Releases the still-active units of a hold. Releasing again changes nothing and records nothing.
    public func release(_ reservationID: UUID, by actor: String, reason: String, requestID: String? = nil,
                        traceID: String? = nil) async throws -> Reservation {
        try await database.observe("reservation.release") {
            let logger = database.logger
            try await database.withTransaction { conn in
                var released: [String] = []
                for try await (din,) in try await conn.query("""
                    UPDATE reservation_units SET state = 'released' WHERE reservation_id = \(reservationID) AND state = 'active'
                    RETURNING din
                    """, logger: logger).decode((String,).self) { released.append(din) }
                if !released.isEmpty {
                    try await PostgresAuditLog.append(NewAuditEvent(
                        actor: actor, action: "reservation.released", subject: "reservation:" + reservationID.uuidString.lowercased(),
                        payloadJSON: #"{"units":[\#(released.sorted().map { jsonString($0) }.joined(separator: ","))],"reason":\#(jsonString(reason))}"#,
                        requestID: requestID, traceID: traceID), on: conn, logger: logger)
                }
            }
            guard let stored = try await find(reservationID: reservationID) else { throw ReservationNotFoundError(reservationID: reservationID) }
            return stored
        }
    }

    /// Issues (dispatches) the active units of a hold to its hospital: each becomes `issued` and
    /// gets a distribution record. A retry with the same key returns the records already written.
    public func issue(_ reservationID: UUID, dins: [String]?, by actor: String, idempotencyKey: String,
                      note: String? = nil, requestID: String? = nil, traceID: String? = nil) async throws -> [DistributionRecord] {
        let already = try await distributions(idempotencyKey: idempotencyKey)
        if !already.isEmpty { return already }
        let logger = database.logger
        try await database.withTransaction { conn in
            guard let reservation = try await Self.find(where: "reservation_id = $1::uuid", reservationID.uuidString, on: conn, logger: logger) else {
                throw ReservationNotFoundError(reservationID: reservationID)
            }
            var issued: [String] = []
            let wanted = dins.map { Array(Set($0)).sorted() }
            for try await (din,) in try await conn.query("""
                UPDATE reservation_units SET state = 'issued'
                WHERE reservation_id = \(reservationID) AND state = 'active' AND (\(wanted)::text[] IS NULL OR din = ANY(\(wanted)))
                RETURNING din
                """, logger: logger).decode((String,).self) { issued.append(din) }
            if let wanted, Set(issued) != Set(wanted) {
                throw ReservationStateError(reservationID: reservationID,
                    detail: "units \(Set(wanted).subtracting(issued).sorted().joined(separator: ", ")) are not actively held by this reservation")
            }
            guard !issued.isEmpty else {
                throw ReservationStateError(reservationID: reservationID, detail: "no unit of it is actively held (released, expired or issued already)")
            }
            _ = try await conn.query("""
                INSERT INTO distributions (distribution_id, reservation_id, din, consignee, consignee_name, consignee_place, centre,
                  component, abo, rhd, expires_at, issued_by, idempotency_key, note)
                SELECT gen_random_uuid(), ru.reservation_id, ru.din, r.hospital, coalesce(s.name, r.hospital), coalesce(s.region, ''),
                  ru.centre, ru.component, ru.abo, ru.rhd, ru.expires_at, \(actor), \(idempotencyKey), \(note)
                FROM reservation_units ru JOIN reservations r USING (reservation_id) LEFT JOIN sites s ON s.site_id = r.hospital
                WHERE ru.reservation_id = \(reservationID) AND ru.din = ANY(\(issued))
                """, logger: logger).collect()
            try await PostgresAuditLog.append(NewAuditEvent(
                actor: actor, action: "unit.issued", subject: "reservation:" + reservationID.uuidString.lowercased(),
                payloadJSON: #"{"units":[\#(issued.sorted().map { jsonString($0) }.joined(separator: ","))],"consignee":\#(jsonString(reservation.reservation.hospital))}"#,
                requestID: requestID ?? idempotencyKey, traceID: traceID), on: conn, logger: logger)
        }
        return try await distributions(idempotencyKey: idempotencyKey)
    }

    /// A hold by id.
    public func find(reservationID: UUID) async throws -> Reservation? {
        try await database.observe("reservation.find") {
            try await database.client.withConnection { conn in
                try await Self.find(where: "reservation_id = $1::uuid", reservationID.uuidString, on: conn, logger: database.logger)?.reservation
            }
        }
    }

    /// A hold by the client's key, with the fingerprint of the request that made it.
    public func find(idempotencyKey: String) async throws -> (reservation: Reservation, fingerprint: String)? {
        try await database.client.withConnection { conn in
            try await Self.find(where: "idempotency_key = $1", idempotencyKey, on: conn, logger: database.logger)
        }
    }

    /// Holds for a hospital (or all), newest first.
    public func list(hospital: String?, activeOnly: Bool, limit: Int = 100) async throws -> [Reservation] {
        var ids: [UUID] = []
        for try await (id,) in try await database.client.query("""
            SELECT r.reservation_id FROM reservations r
            WHERE (\(hospital)::text IS NULL OR r.hospital = \(hospital))
              AND (NOT \(activeOnly) OR EXISTS (SELECT 1 FROM reservation_units ru WHERE ru.reservation_id = r.reservation_id AND ru.state = 'active'))
            ORDER BY r.created_at DESC LIMIT \(limit)
            """, logger: database.logger).decode((UUID,).self) { ids.append(id) }
        var out: [Reservation] = []
        for id in ids { if let r = try await find(reservationID: id) { out.append(r) } }
        return out
    }

    static func find(where condition: String, _ value: String, on conn: PostgresConnection, logger: Logger) async throws
        -> (reservation: Reservation, fingerprint: String)? {
        var binds = PostgresBindings()
        binds.append(value)
        var found: (Reservation, String)?
        for try await r in try await conn.query(PostgresQuery(unsafeSQL: """
            SELECT reservation_id, source, decision_id, batch_run_id, hospital, reserved_by, idempotency_key, request_fingerprint,
                   held_until, created_at, request_id, trace_id
            FROM reservations WHERE \(condition)
            """, binds: binds), logger: logger)
            .decode((UUID, String, UUID?, UUID?, String, String, String, String, Date, Date, String?, String?).self) {
            found = (Reservation(reservationID: r.0, source: ReservationSource(rawValue: r.1) ?? .manual, decisionID: r.2,
                                 batchRunID: r.3, hospital: r.4, reservedBy: r.5, idempotencyKey: r.6, heldUntil: r.8,
                                 createdAt: r.9, requestID: r.10, traceID: r.11, units: []), r.7)
        }
        guard let found else { return nil }
        var reservation = found.0
        for try await u in try await conn.query("""
            SELECT din, centre, component, abo, rhd, expires_at, state, state_changed_at FROM reservation_units
            WHERE reservation_id = \(reservation.reservationID) ORDER BY din
            """, logger: logger).decode((String, String, String, String, String, Date, String, Date).self) {
            reservation.units.append(ReservedUnit(din: u.0, centre: u.1, component: u.2, abo: u.3, rhd: u.4,
                                                  expiresAt: u.5, state: u.6, stateChangedAt: u.7))
        }
        return (reservation, found.1)
    }

    /// Distribution records written under a key.
    public func distributions(idempotencyKey: String) async throws -> [DistributionRecord] {
        try await distributions(where: "idempotency_key = $1", idempotencyKey)
    }

    /// Distribution records of a unit.
    public func distributions(din: String) async throws -> [DistributionRecord] {
        try await distributions(where: "din = $1", din)
    }

    /// Distribution records issued in `[from, to)`, for a recall export.
    public func distributions(from: Date, to: Date) async throws -> [DistributionRecord] {
        var binds = PostgresBindings()
        binds.append(from)
        binds.append(to)
        return try await distributions(PostgresQuery(unsafeSQL: Self.distributionSelect + "WHERE issued_at >= $1 AND issued_at < $2 ORDER BY issued_at, din", binds: binds))
    }

    private static let distributionSelect = """
        SELECT distribution_id, reservation_id, din, consignee, consignee_name, consignee_place, centre, component, abo, rhd,
               quantity, expires_at, issued_at, issued_by FROM distributions

        """

    private func distributions(where condition: String, _ value: String) async throws -> [DistributionRecord] {
        var binds = PostgresBindings()
        binds.append(value)
        return try await distributions(PostgresQuery(unsafeSQL: Self.distributionSelect + "WHERE \(condition) ORDER BY issued_at, din", binds: binds))
    }

    private func distributions(_ query: PostgresQuery) async throws -> [DistributionRecord] {
        var out: [DistributionRecord] = []
        for try await r in try await database.client.query(query, logger: database.logger)
            .decode((UUID, UUID, String, String, String, String, String, String, String, String, Int, Date, Date, String).self) {
            out.append(DistributionRecord(distributionID: r.0, reservationID: r.1, din: r.2, consignee: r.3, consigneeName: r.4,
                                          consigneePlace: r.5, centre: r.6, component: r.7, abo: r.8, rhd: r.9, quantity: r.10,
                                          expiresAt: r.11, issuedAt: r.12, issuedBy: r.13))
        }
        return out
    }
}

/// A hold is not in a state that allows the change.
public struct ReservationStateError: Error, Sendable, CustomStringConvertible {
    /// The hold.
    public var reservationID: UUID
    /// Why.
    public var detail: String
    public var description: String { "reservation \(reservationID.uuidString.lowercased()): \(detail)" }
}
