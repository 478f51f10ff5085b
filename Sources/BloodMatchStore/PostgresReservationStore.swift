import BloodMatchCore
import Foundation
import Logging
import PostgresNIO

/// Holds, releases, expiries and issues, with the database as the only arbiter of who holds a unit:
/// a partial unique index allows one active or issued hold per unit (DIN and product code), and
/// every change is an event. Issuing is in `PostgresReservationStore+Issue.swift`.
public struct PostgresReservationStore: Sendable {
    /// The pool, as `bloodmatch_app`.
    public let database: Database

    /// Creates the store.
    public init(database: Database) { self.database = database }

    /// Holds all of `request.units` or none.
    ///
    /// A unit can be held when it is `AVAILABLE` in exactly one centre's snapshot in force, not
    /// expired by the database's clock, not held or issued already, and not returned since that
    /// snapshot was taken. Concurrent requests for the same unit are decided by the unique index
    /// (`ON CONFLICT DO NOTHING` waits for the other transaction): exactly one wins. Deadlocks and
    /// serialization failures are retried.
    public func reserve(_ request: ReservationRequest) async throws -> ReservationOutcome {
        try await database.observe("reservation.reserve") {
            let units = Array(Set(request.units)).sorted()
            var attempt = 0
            while true {
                attempt += 1
                do {
                    return try await reserveOnce(request, units: units)
                } catch where ["40001", "40P01"].contains(sqlState(error) ?? "") && attempt < 5 {
                    try await Task.sleep(for: .milliseconds(10 * attempt))
                } catch where sqlState(error) == "23505" && attempt < 5 {
                    // A concurrent request with the same key committed first: the next attempt returns it.
                    continue
                } catch where sqlState(error) == "BM001" {
                    // Migration 0011's trigger: the decision is a what-if.
                    throw WhatIfDecisionError(decisionID: request.decisionID)
                }
            }
        }
    }

    struct Refused: Error { var conflicts: [ReservationConflict] }

    /// A unit as offered now by its centre's snapshot in force.
    struct Offer { var centre: String; var component: String; var abo: String; var rhd: String; var expiresAt: Date }

    private func reserveOnce(_ request: ReservationRequest, units: [UnitKey]) async throws -> ReservationOutcome {
        let logger = database.logger
        if let existing = try await find(idempotencyKey: request.idempotencyKey) {
            guard existing.fingerprint == request.fingerprint else {
                throw IdempotencyKeyReuseError(
                    key: request.idempotencyKey, usedFor: "reservation \(existing.reservation.reservationID.uuidString.lowercased())")
            }
            return .reserved(existing.reservation, isNew: false)
        }
        let reservationID = UUID()
        do {
            try await database.withTransaction { conn in
                try await Self.expireOverdue(on: conn, units: units, logger: logger)
                // The units as offered now: in force, available, unexpired, at one centre only. Their
                // centres' import locks are taken shared and the offer read again, so no snapshot swap
                // can commit between the check and the hold.
                var offered = try await Self.offered(units, on: conn, logger: logger)
                try await Self.lockCentres(Set(offered.values.map(\.centre)), on: conn, logger: logger)
                if !offered.isEmpty { offered = try await Self.offered(units, on: conn, logger: logger) }
                let missing = units.filter { offered[$0] == nil }
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
                let o = units.compactMap { offered[$0] }
                var held: Set<UnitKey> = []
                for try await (din, code) in try await conn.query("""
                    INSERT INTO reservation_units (reservation_id, din, product_code, centre, component, abo, rhd, expires_at, state)
                    SELECT \(reservationID), d, p, c, k, a, r, e, 'active'
                    FROM unnest(\(units.map(\.din))::text[], \(units.map(\.productCode))::text[], \(o.map(\.centre))::text[],
                                \(o.map(\.component))::text[], \(o.map(\.abo))::text[], \(o.map(\.rhd))::text[],
                                \(o.map(\.expiresAt))::timestamptz[]) AS t(d, p, c, k, a, r, e)
                    ON CONFLICT (din, product_code) WHERE state IN ('active', 'issued') DO NOTHING
                    RETURNING din, product_code
                    """, logger: logger).decode((String, String).self) { held.insert(UnitKey(din: din, productCode: code)) }
                if held.count != units.count {
                    let lost = units.filter { !held.contains($0) }
                    throw Refused(conflicts: try await Self.explainUnavailable(lost, on: conn, logger: logger))
                }
                let payload = #"{"reservation_id":"\#(reservationID.uuidString.lowercased())","source":"\#(request.source.rawValue)","hospital":\#(jsonString(request.hospital)),"units":\#(Self.unitsJSON(units)),"hold_seconds":\#(request.holdSeconds)\#(request.decisionID.map { #","decision_id":"\#($0.uuidString.lowercased())""# } ?? "")\#(request.batchRunID.map { #","batch_run_id":"\#($0.uuidString.lowercased())""# } ?? "")}"#
                try await PostgresAuditLog.append(NewAuditEvent(
                    actor: request.reservedBy, action: "reservation.made", subject: "reservation:" + reservationID.uuidString.lowercased(),
                    payloadJSON: payload, requestID: request.requestID ?? request.idempotencyKey, traceID: request.traceID,
                    clientAddress: request.clientAddress),
                    on: conn, logger: logger)
            }
        } catch let refused as Refused {
            return .conflict(refused.conflicts)
        }
        guard let stored = try await find(reservationID: reservationID) else { throw ReservationNotFoundError(reservationID: reservationID) }
        return .reserved(stored, isNew: true)
    }

    /// Units as a JSON array of `{"din":…,"product_code":…}` objects, for event payloads.
    static func unitsJSON(_ units: [UnitKey]) -> String {
        "[" + units.sorted().map { #"{"din":\#(jsonString($0.din)),"product_code":\#(jsonString($0.productCode))}"# }
            .joined(separator: ",") + "]"
    }

    /// Takes the import locks of these centres, shared, in the caller's transaction: no snapshot of
    /// theirs can be swapped in until it commits. Exclusive (a batch's last attempt), no hold,
    /// issue or import at these centres can start either.
    static func lockCentres(_ centres: Set<String>, exclusive: Bool = false, on conn: PostgresConnection, logger: Logger) async throws {
        guard !centres.isEmpty else { return }
        // Always in sorted order, shared or not, so two lockers never wait on each other in a cycle.
        let sorted = centres.sorted()
        _ = try await conn.query(exclusive ? """
            SELECT pg_advisory_xact_lock(hashtext('bloodmatch.centre:' || c)) FROM unnest(\(sorted)::text[]) c
            """ : """
            SELECT pg_advisory_xact_lock_shared(hashtext('bloodmatch.centre:' || c)) FROM unnest(\(sorted)::text[]) c
            """, logger: logger).collect()
    }

    /// Of `units`, those offerable now, with centre, component, ABO, RhD and expiry.
    static func offered(_ units: [UnitKey], on conn: PostgresConnection, logger: Logger) async throws -> [UnitKey: Offer] {
        var offered: [UnitKey: Offer] = [:]
        for try await (din, code, centre, component, abo, rhd, expires) in try await conn.query("""
            SELECT u.din, u.product_code, s.centre, u.component, u.abo, u.rhd, u.expires_at
            FROM inventory_units u JOIN centre_status c ON c.current_snapshot_id = u.snapshot_id
              JOIN inventory_snapshots s ON s.snapshot_id = u.snapshot_id
              JOIN unnest(\(units.map(\.din))::text[], \(units.map(\.productCode))::text[]) AS w(din, product_code)
                ON w.din = u.din AND w.product_code = u.product_code
            WHERE u.status = 'AVAILABLE' AND u.expires_at > now()
              AND NOT EXISTS (SELECT 1 FROM inventory_units y JOIN centre_status yc ON yc.current_snapshot_id = y.snapshot_id
                              WHERE y.din = u.din AND y.product_code = u.product_code AND y.snapshot_id <> u.snapshot_id)
              AND NOT EXISTS (SELECT 1 FROM reservation_units r WHERE r.din = u.din AND r.product_code = u.product_code
                              AND r.state = 'returned' AND r.state_changed_at >= c.last_as_of)
            """, logger: logger).decode((String, String, String, String, String, String, Date).self) {
            offered[UnitKey(din: din, productCode: code)] = Offer(centre: centre, component: component, abo: abo, rhd: rhd, expiresAt: expires)
        }
        return offered
    }

    /// Says why each unit cannot be held, in the caller's transaction.
    static func explainUnavailable(_ units: [UnitKey], on conn: PostgresConnection, logger: Logger) async throws -> [ReservationConflict] {
        var reasons: [UnitKey: ReservationConflict] = [:]
        let dins = units.map(\.din), codes = units.map(\.productCode)
        for try await (din, code, state, holder, until, changed) in try await conn.query("""
            SELECT ru.din, ru.product_code, ru.state, ru.reservation_id, r.held_until, ru.state_changed_at
            FROM reservation_units ru JOIN reservations r USING (reservation_id)
              JOIN unnest(\(dins)::text[], \(codes)::text[]) AS w(din, product_code) ON w.din = ru.din AND w.product_code = ru.product_code
            WHERE ru.state IN ('active', 'issued', 'returned') ORDER BY ru.state_changed_at
            """, logger: logger).decode((String, String, String, UUID, Date, Date).self) {
            let key = UnitKey(din: din, productCode: code)
            let reason = switch state {
            case "issued": "already issued"
            case "returned": "returned \(iso(changed)); it re-enters stock when its centre's feed lists it again"
            default: "held by another reservation until \(iso(until))"
            }
            reasons[key] = ReservationConflict(unit: key, reason: reason, heldBy: state == "returned" ? nil : holder)
        }
        for try await (din, code, centre) in try await conn.query("""
            SELECT w.din, w.product_code, min(s.centre) FROM unnest(\(dins)::text[], \(codes)::text[]) AS w(din, product_code)
              LEFT JOIN inventory_units u ON u.din = w.din AND u.product_code = w.product_code
              LEFT JOIN centre_status s ON s.current_snapshot_id = u.snapshot_id
            GROUP BY w.din, w.product_code
            """, logger: logger).decode((String, String, String?).self) {
            let key = UnitKey(din: din, productCode: code)
            guard reasons[key] == nil else { continue }
            guard let centre else {
                reasons[key] = ReservationConflict(unit: key, reason: "not in any centre's current stock")
                continue
            }
            var why = "not available"
            for try await (text,) in try await conn.query("SELECT bm.unit_blocker(\(din), \(code), \(centre))", logger: logger)
                .decode((String?,).self) { if let text { why = text } }
            reasons[key] = ReservationConflict(unit: key, reason: why)
        }
        return units.map { reasons[$0] ?? ReservationConflict(unit: $0, reason: "not in any centre's current stock") }
    }

    /// Marks overdue active holds on these units (or all, when nil) expired, with one event per reservation.
    @discardableResult
    static func expireOverdue(on conn: PostgresConnection, units: [UnitKey]?, actor: String = "expiry", logger: Logger) async throws -> Int {
        var byReservation: [UUID: [UnitKey]] = [:]
        let filter: PostgresQuery = units.map { u in
            """
            UPDATE reservation_units ru SET state = 'expired' FROM reservations r,
              unnest(\(u.map(\.din))::text[], \(u.map(\.productCode))::text[]) AS w(din, product_code)
            WHERE r.reservation_id = ru.reservation_id AND ru.state = 'active' AND r.held_until <= now()
              AND ru.din = w.din AND ru.product_code = w.product_code
            RETURNING ru.reservation_id, ru.din, ru.product_code
            """
        } ?? """
            UPDATE reservation_units ru SET state = 'expired' FROM reservations r
            WHERE r.reservation_id = ru.reservation_id AND ru.state = 'active' AND r.held_until <= now()
            RETURNING ru.reservation_id, ru.din, ru.product_code
            """
        for try await (id, din, code) in try await conn.query(filter, logger: logger).decode((UUID, String, String).self) {
            byReservation[id, default: []].append(UnitKey(din: din, productCode: code))
        }
        for (id, expired) in byReservation.sorted(by: { $0.key.uuidString < $1.key.uuidString }) {
            try await PostgresAuditLog.append(NewAuditEvent(
                actor: actor, action: "reservation.expired", subject: "reservation:" + id.uuidString.lowercased(),
                payloadJSON: #"{"units":\#(unitsJSON(expired))}"#), on: conn, logger: logger)
        }
        _ = try await returnOrdersWithNothingHeld(on: conn, reservations: Array(byReservation.keys), actor: actor,
                                                  why: "its batch hold expired", logger: logger)
        return byReservation.values.reduce(0) { $0 + $1.count }
    }

    /// The expiry job: every overdue hold becomes `expired`; returns the number of units freed.
    public func expireOverdue(actor: String) async throws -> Int {
        let logger = database.logger
        return try await database.withTransaction { conn in
            try await Self.expireOverdue(on: conn, units: nil, actor: actor, logger: logger)
        }
    }

    /// Releases the still-active units of a hold. Releasing again changes nothing and records nothing.
    /// `requestID`, `traceID` and `clientAddress` (the HTTP request's) go on the event.
    public func release(_ reservationID: UUID, by actor: String, reason: String, requestID: String? = nil,
                        traceID: String? = nil, clientAddress: String? = nil) async throws -> Reservation {
        try await database.observe("reservation.release") {
            let logger = database.logger
            try await database.withTransaction { conn in
                var released: [UnitKey] = []
                for try await (din, code) in try await conn.query("""
                    UPDATE reservation_units SET state = 'released' WHERE reservation_id = \(reservationID) AND state = 'active'
                    RETURNING din, product_code
                    """, logger: logger).decode((String, String).self) { released.append(UnitKey(din: din, productCode: code)) }
                if !released.isEmpty {
                    try await PostgresAuditLog.append(NewAuditEvent(
                        actor: actor, action: "reservation.released", subject: "reservation:" + reservationID.uuidString.lowercased(),
                        payloadJSON: #"{"units":\#(Self.unitsJSON(released)),"reason":\#(jsonString(reason))}"#,
                        requestID: requestID, traceID: traceID, clientAddress: clientAddress), on: conn, logger: logger)
                    _ = try await Self.returnOrdersWithNothingHeld(on: conn, reservations: [reservationID], actor: actor,
                                                                   why: "its batch hold was released (\(reason))", logger: logger)
                }
            }
            guard let stored = try await find(reservationID: reservationID) else { throw ReservationNotFoundError(reservationID: reservationID) }
            return stored
        }
    }

    /// A hold by id, with each active unit's `blocked` reason read against the snapshots in force.
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
        // An active unit whose hold is overdue, or whose unit its centre no longer offers, is blocked.
        for try await u in try await conn.query("""
            SELECT ru.din, ru.product_code, ru.centre, ru.component, ru.abo, ru.rhd, ru.expires_at, ru.state, ru.state_changed_at,
              CASE WHEN ru.state <> 'active' THEN NULL
                   WHEN r.held_until <= now() THEN 'hold overdue since ' || bm.iso_utc(r.held_until)
                   ELSE bm.unit_blocker(ru.din, ru.product_code, ru.centre) END
            FROM reservation_units ru JOIN reservations r USING (reservation_id)
            WHERE ru.reservation_id = \(reservation.reservationID) ORDER BY ru.din, ru.product_code
            """, logger: logger).decode((String, String, String, String, String, String, Date, String, Date, String?).self) {
            reservation.units.append(ReservedUnit(din: u.0, productCode: u.1, centre: u.2, component: u.3, abo: u.4, rhd: u.5,
                                                  expiresAt: u.6, state: u.7, stateChangedAt: u.8, blocked: u.9))
        }
        return (reservation, found.1)
    }
}
