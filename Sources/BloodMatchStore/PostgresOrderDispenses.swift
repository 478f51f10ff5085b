import BloodMatchCore
import Foundation
import PostgresNIO

/// One unit held against an order, and what became of it: the hold, the issue, the hospital's
/// receipt and the unit's fate. A batch run holds units through its shipments; an order matched at
/// once (`PostgresOrderStore.matchedNow`) holds them through its decision (request id `order:ID`).
public struct OrderDispense: Sendable, Hashable {
    /// The hold.
    public var reservationID: UUID
    /// The unit.
    public var unit: UnitKey
    /// The order.
    public var orderID: String
    /// The hospital.
    public var hospital: String
    /// The centre the unit comes from.
    public var centreID: String
    /// Component.
    public var component: Component
    /// Group.
    public var group: BloodGroup
    /// Expiry.
    public var expiresAt: Date
    /// The hold's state for this unit: active, released, expired, issued, returned.
    public var state: String
    /// When that state began.
    public var stateChangedAt: Date
    /// The hold's end.
    public var heldUntil: Date
    /// When the hold was made.
    public var heldAt: Date
    /// The issue, when issued.
    public var issuedAt: Date?
    /// The hospital's receipt, when recorded.
    public var receivedAt: Date?
    /// The unit's final fate (transfused, returned, discarded), when recorded.
    public var fate: UnitFateEvent?
    /// Why, for a return or discard.
    public var fateReason: UnitFateReason?
    /// When the fate was recorded.
    public var fateAt: Date?

    /// Creates one (the reader's rows; tests).
    public init(reservationID: UUID, unit: UnitKey, orderID: String, hospital: String, centreID: String, component: Component, group: BloodGroup,
                expiresAt: Date, state: String, stateChangedAt: Date, heldUntil: Date, heldAt: Date, issuedAt: Date? = nil,
                receivedAt: Date? = nil, fate: UnitFateEvent? = nil, fateReason: UnitFateReason? = nil, fateAt: Date? = nil) {
        self.reservationID = reservationID
        self.unit = unit
        self.orderID = orderID
        self.hospital = hospital
        self.centreID = centreID
        self.component = component
        self.group = group
        self.expiresAt = expiresAt
        self.state = state
        self.stateChangedAt = stateChangedAt
        self.heldUntil = heldUntil
        self.heldAt = heldAt
        self.issuedAt = issuedAt
        self.receivedAt = receivedAt
        self.fate = fate
        self.fateReason = fateReason
        self.fateAt = fateAt
    }
}

/// Reads of the units held against a hospital's orders.
public struct PostgresOrderDispenses: Sendable {
    /// The pool.
    public let database: Database

    /// Creates the reader.
    public init(database: Database) { self.database = database }

    /// The units held against `hospital`'s orders (one order's, when given), oldest hold first.
    public func dispenses(hospital: String, orderID: String? = nil, limit: Int = 1000) async throws -> [OrderDispense] {
        try await read(hospital: hospital, orderID: orderID, reservationID: nil, unit: nil, limit: limit)
    }

    /// One unit of one hold against one of `hospital`'s orders.
    public func dispense(hospital: String, reservationID: UUID, unit: UnitKey) async throws -> OrderDispense? {
        try await read(hospital: hospital, orderID: nil, reservationID: reservationID, unit: unit, limit: 1).first
    }

    private func read(hospital: String, orderID: String?, reservationID: UUID?, unit: UnitKey?, limit: Int) async throws -> [OrderDispense] {
        try await database.observe("orders.dispenses") {
            var out: [OrderDispense] = []
            let rows = try await database.client.query("""
                WITH src AS (
                  SELECT a.order_id, sh.reservation_id, a.din, a.product_code
                  FROM batch_allocations a JOIN batch_shipments sh ON sh.run_id = a.run_id AND sh.shipment_no = a.shipment_no
                  WHERE a.hospital = \(hospital) AND (\(orderID)::text IS NULL OR a.order_id = \(orderID))
                  UNION ALL
                  -- `order:ID`, or `order:ID#2` for the match retried after a race for its units.
                  SELECT split_part(substr(d.request_id, 7), '#', 1), r.reservation_id, ru.din, ru.product_code
                  FROM decisions d JOIN reservations r ON r.decision_id = d.decision_id
                    JOIN reservation_units ru ON ru.reservation_id = r.reservation_id
                  WHERE d.hospital = \(hospital) AND d.request_id LIKE 'order:%'
                    AND (\(orderID)::text IS NULL OR split_part(substr(d.request_id, 7), '#', 1) = \(orderID))
                )
                SELECT s.reservation_id, s.din, s.product_code, s.order_id, r.hospital, ru.centre, ru.component, ru.abo, ru.rhd,
                       ru.expires_at, ru.state, ru.state_changed_at, r.held_until, r.created_at,
                       x.issued_at, rc.recorded_at, fa.event, fa.reason, fa.recorded_at
                FROM src s
                  JOIN reservations r ON r.reservation_id = s.reservation_id AND r.hospital = \(hospital)
                  JOIN reservation_units ru ON ru.reservation_id = s.reservation_id AND ru.din = s.din AND ru.product_code = s.product_code
                  LEFT JOIN LATERAL (SELECT d.distribution_id, d.issued_at FROM distributions d
                                     WHERE d.reservation_id = s.reservation_id AND d.din = s.din AND d.product_code = s.product_code
                                     ORDER BY d.issued_at DESC LIMIT 1) x ON true
                  LEFT JOIN LATERAL (SELECT f.recorded_at FROM unit_fates f WHERE f.distribution_id = x.distribution_id AND f.event = 'received'
                                     ORDER BY f.recorded_at LIMIT 1) rc ON true
                  LEFT JOIN LATERAL (SELECT f.event, f.reason, f.recorded_at FROM unit_fates f
                                     WHERE f.distribution_id = x.distribution_id AND f.event <> 'received'
                                     ORDER BY f.recorded_at DESC LIMIT 1) fa ON true
                WHERE (\(reservationID)::uuid IS NULL OR s.reservation_id = \(reservationID))
                  AND (\(unit?.din)::text IS NULL OR (s.din = \(unit?.din) AND s.product_code = \(unit?.productCode)))
                ORDER BY r.created_at, s.din, s.product_code
                LIMIT \(max(1, limit))
                """, logger: database.logger)
            for try await row in rows.decode((UUID, String, String, String, String, String, String, String, String, Date, String, Date, Date, Date,
                                              Date?, Date?, String?, String?, Date?).self) {
                guard let component = Component(rawValue: row.6), let a = ABO(rawValue: row.7), let r = RhD(rawValue: row.8) else { continue }
                out.append(OrderDispense(
                    reservationID: row.0, unit: UnitKey(din: row.1, productCode: row.2), orderID: row.3, hospital: row.4, centreID: row.5,
                    component: component, group: BloodGroup(a, r), expiresAt: row.9, state: row.10, stateChangedAt: row.11,
                    heldUntil: row.12, heldAt: row.13, issuedAt: row.14, receivedAt: row.15,
                    fate: row.16.flatMap(UnitFateEvent.init(rawValue:)), fateReason: row.17.flatMap(UnitFateReason.init(rawValue:)), fateAt: row.18))
            }
            return out
        }
    }
}
