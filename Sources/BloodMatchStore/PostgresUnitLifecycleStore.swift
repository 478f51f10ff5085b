import BloodMatchCore
import Foundation
import Logging
import PostgresNIO

/// One recorded step of a unit's life after issue.
public struct UnitFateRecord: Sendable, Hashable, Codable {
    /// Id.
    public var fateID: UUID
    /// The distribution record it follows.
    public var distributionID: UUID
    /// The unit.
    public var din: String
    /// The unit's product code.
    public var productCode: String
    /// What happened.
    public var event: UnitFateEvent
    /// Why, for a return or discard.
    public var reason: UnitFateReason?
    /// Free text.
    public var note: String?
    /// The consignee hospital.
    public var hospital: String
    /// Who recorded it.
    public var recordedBy: String
    /// When (database clock).
    public var recordedAt: Date

    /// The unit's identity.
    public var key: UnitKey { UnitKey(din: din, productCode: productCode) }
}

/// A step that the unit's life does not allow, or a caller that may not record it.
public struct UnitLifecycleError: Error, Sendable, CustomStringConvertible {
    /// What kind of refusal.
    public enum Kind: String, Sendable {
        /// The unit is not (or no longer) issued.
        case notIssued = "not_issued"
        /// The step is out of order (no receipt yet, a receipt or a final fate already recorded).
        case outOfOrder = "out_of_order"
        /// The unit was issued to another hospital than the caller's.
        case otherHospital = "other_hospital"
        /// The reason does not fit the event, or is missing.
        case badReason = "bad_reason"
    }
    /// The unit.
    public var unit: UnitKey
    /// What kind of refusal.
    public var kind: Kind
    /// Why, for the operator.
    public var detail: String
    public var description: String { "\(unit): \(detail)" }
}

/// Receipts and fates (`bm.unit_fates`), and the recall listing over every component of a donation.
/// Every step is one transaction that re-reads the unit's distribution and earlier steps, and the
/// database's trigger enforces the order again.
public struct PostgresUnitLifecycleStore: Sendable {
    /// The pool, as `bloodmatch_app`.
    public let database: Database

    /// Creates the store.
    public init(database: Database) { self.database = database }

    /// Records `event` for the unit's current issue. `hospital`, when given (the API's caller), must
    /// be the consignee. A retry with the same key returns the first record (`isNew` false); the
    /// key used for anything else is refused.
    public func record(_ event: UnitFateEvent, unit: UnitKey, reason: UnitFateReason?, note: String?, hospital: String?,
                       by actor: String, idempotencyKey: String, requestID: String? = nil,
                       traceID: String? = nil, clientAddress: String? = nil) async throws -> (UnitFateRecord, isNew: Bool) {
        if event.needsReason {
            guard let reason else {
                throw UnitLifecycleError(unit: unit, kind: .badReason, detail: "a \(event.rawValue) unit needs a reason: "
                    + UnitFateReason.allCases.filter { $0.applies(to: event) }.map(\.rawValue).joined(separator: ", "))
            }
            guard reason.applies(to: event) else {
                throw UnitLifecycleError(unit: unit, kind: .badReason, detail: "'\(reason.rawValue)' is not a reason for \(event.rawValue); use one of "
                    + UnitFateReason.allCases.filter { $0.applies(to: event) }.map(\.rawValue).joined(separator: ", "))
            }
        } else if reason != nil {
            throw UnitLifecycleError(unit: unit, kind: .badReason, detail: "\(event.rawValue) takes no reason")
        }
        return try await database.observe("unit.\(event.rawValue)") {
            let logger = database.logger
            return try await database.withTransaction { conn in
                _ = try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\("bloodmatch.fate-key:" + idempotencyKey)))", logger: logger).collect()
                if let earlier = try await Self.fates(where: "f.idempotency_key = $1", Self.binds(idempotencyKey), on: conn, logger: logger).first {
                    guard earlier.key == unit, earlier.event == event, earlier.reason == reason else {
                        throw IdempotencyKeyReuseError(key: idempotencyKey,
                                                       usedFor: "\(earlier.event.rawValue) of \(earlier.key) at \(iso(earlier.recordedAt))")
                    }
                    return (earlier, false)
                }
                // The unit's current issue: the latest distribution whose hold row is still `issued`.
                var current: (id: UUID, reservation: UUID, consignee: String)?
                for try await row in try await conn.query("""
                    SELECT d.distribution_id, d.reservation_id, d.consignee FROM distributions d
                      JOIN reservation_units ru ON ru.reservation_id = d.reservation_id AND ru.din = d.din AND ru.product_code = d.product_code
                    WHERE d.din = \(unit.din) AND d.product_code = \(unit.productCode) AND ru.state = 'issued'
                    ORDER BY d.issued_at DESC LIMIT 1 FOR UPDATE OF ru
                    """, logger: logger).decode((UUID, UUID, String).self) { current = row }
                guard let current else {
                    throw UnitLifecycleError(unit: unit, kind: .notIssued, detail: "is not issued to any hospital now (never issued, or returned)")
                }
                if let hospital, hospital != current.consignee {
                    throw UnitLifecycleError(unit: unit, kind: .otherHospital, detail: "was issued to another hospital")
                }
                let earlier = try await Self.fates(where: "f.distribution_id = $1::uuid", Self.binds(current.id.uuidString), on: conn, logger: logger)
                if event == .received, let receipt = earlier.first(where: { $0.event == .received }) {
                    throw UnitLifecycleError(unit: unit, kind: .outOfOrder, detail: "its receipt was already recorded at \(iso(receipt.recordedAt))")
                }
                if event.isFinal {
                    guard earlier.contains(where: { $0.event == .received }) else {
                        throw UnitLifecycleError(unit: unit, kind: .outOfOrder, detail: "cannot be \(event.rawValue) before its receipt is recorded")
                    }
                    if let final = earlier.first(where: { $0.event.isFinal }) {
                        throw UnitLifecycleError(unit: unit, kind: .outOfOrder,
                                                 detail: "was already \(final.event.rawValue) at \(iso(final.recordedAt))")
                    }
                }
                let fateID = UUID()
                _ = try await conn.query("""
                    INSERT INTO unit_fates (fate_id, distribution_id, din, product_code, event, reason, note, hospital, recorded_by,
                      idempotency_key, request_id, trace_id)
                    VALUES (\(fateID), \(current.id), \(unit.din), \(unit.productCode), \(event.rawValue), \(reason?.rawValue), \(note),
                      \(current.consignee), \(actor), \(idempotencyKey), \(requestID), \(traceID))
                    """, logger: logger).collect()
                if event == .returned {
                    _ = try await conn.query("""
                        UPDATE reservation_units SET state = 'returned'
                        WHERE reservation_id = \(current.reservation) AND din = \(unit.din) AND product_code = \(unit.productCode) AND state = 'issued'
                        """, logger: logger).collect()
                }
                let payload = #"{"din":\#(jsonString(unit.din)),"product_code":\#(jsonString(unit.productCode)),"distribution_id":"\#(current.id.uuidString.lowercased())","hospital":\#(jsonString(current.consignee))\#(reason.map { #","reason":"\#($0.rawValue)""# } ?? "")}"#
                try await PostgresAuditLog.append(NewAuditEvent(
                    actor: actor, action: "unit.\(event.rawValue)", subject: "unit:\(unit)", payloadJSON: payload,
                    requestID: requestID ?? idempotencyKey, traceID: traceID, clientAddress: clientAddress), on: conn, logger: logger)
                guard let stored = try await Self.fates(where: "f.fate_id = $1::uuid", Self.binds(fateID.uuidString), on: conn, logger: logger).first else {
                    throw UnitLifecycleError(unit: unit, kind: .notIssued, detail: "the record just written could not be read back")
                }
                return (stored, true)
            }
        }
    }

    /// Every receipt and fate of a donation's components (all product codes), or of one unit.
    public func fates(din: String, productCode: String? = nil) async throws -> [UnitFateRecord] {
        var binds = PostgresBindings()
        binds.append(din)
        binds.append(productCode)
        return try await database.client.withConnection { conn in
            try await Self.fates(where: "f.din = $1 AND ($2::text IS NULL OR f.product_code = $2)", binds, on: conn, logger: database.logger)
        }
    }

    static func binds(_ value: String) -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(value)
        return binds
    }

    static func fates(where condition: String, _ binds: PostgresBindings, on conn: PostgresConnection, logger: Logger) async throws -> [UnitFateRecord] {
        var out: [UnitFateRecord] = []
        for try await r in try await conn.query(PostgresQuery(unsafeSQL: """
            SELECT f.fate_id, f.distribution_id, f.din, f.product_code, f.event, f.reason, f.note, f.hospital, f.recorded_by, f.recorded_at
            FROM unit_fates f WHERE \(condition) ORDER BY f.recorded_at, f.din, f.product_code
            """, binds: binds), logger: logger).decode((UUID, UUID, String, String, String, String?, String?, String, String, Date).self) {
            guard let event = UnitFateEvent(rawValue: r.4) else { continue }
            out.append(UnitFateRecord(fateID: r.0, distributionID: r.1, din: r.2, productCode: r.3, event: event,
                                      reason: r.5.flatMap(UnitFateReason.init(rawValue:)), note: r.6, hospital: r.7,
                                      recordedBy: r.8, recordedAt: r.9))
        }
        return out
    }
}
