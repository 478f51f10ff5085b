import BloodMatchCore
import Foundation
import Logging
import PostgresNIO

/// What cancelling a decided order did.
public enum DecidedOrderCancellation: Sendable, Hashable {
    /// Cancelled; these of its units were still held and are released (a batch shipment's hold is
    /// shared by the hospital's orders: only this order's units are released).
    case cancelled(released: [UnitKey])
    /// Nothing was done: these of its units have been issued (they are on their way or delivered;
    /// their return is recorded through their dispenses).
    case unitsIssued([UnitKey])
    /// It was cancelled before.
    case alreadyCancelled
    /// It is still pending: cancel it with `cancel(orderID:actor:reason:)`.
    case pending
    /// No order of this hospital has that id.
    case notFound
}

extension PostgresOrderStore {
    /// Cancels an order the batch or the live matcher has decided (allocated, partially allocated
    /// or unfillable) in one transaction: the order's units still held are released (only its own
    /// units of a shared batch shipment), each hold's release and the cancellation recorded as
    /// events. Refused, with nothing changed, when any of its units has been issued. The order row
    /// is locked first, so a batch run or a second cancellation waits and then sees the outcome.
    public func cancelDecided(orderID: String, hospital: String, actor: String, reason: String,
                              requestID: String? = nil) async throws -> DecidedOrderCancellation {
        let logger = database.logger
        return try await database.observe("orders.cancel_decided") {
            try await database.withTransaction { conn -> DecidedOrderCancellation in
                var status: String?
                for try await (s,) in try await conn.query(
                    "SELECT status FROM orders WHERE order_id = \(orderID) AND hospital = \(hospital) FOR UPDATE", logger: logger
                ).decode((String,).self) { status = s }
                guard let status else { return .notFound }
                if status == "cancelled" { return .alreadyCancelled }
                if status == "pending" { return .pending }
                // The order's units: its batch allocations (through their shipment's hold) and the
                // holds of its immediate match (`order:ID`, or `order:ID#2` after a race).
                var units: [(reservation: UUID, key: UnitKey, state: String)] = []
                for try await (reservation, din, code, state) in try await conn.query("""
                    WITH src AS (
                      SELECT sh.reservation_id, a.din, a.product_code
                      FROM batch_allocations a JOIN batch_shipments sh ON sh.run_id = a.run_id AND sh.shipment_no = a.shipment_no
                      WHERE a.hospital = \(hospital) AND a.order_id = \(orderID)
                      UNION
                      SELECT r.reservation_id, ru.din, ru.product_code
                      FROM decisions d JOIN reservations r ON r.decision_id = d.decision_id
                        JOIN reservation_units ru ON ru.reservation_id = r.reservation_id
                      WHERE d.hospital = \(hospital) AND d.request_id LIKE 'order:%'
                        AND split_part(substr(d.request_id, 7), '#', 1) = \(orderID)
                    )
                    SELECT s.reservation_id, s.din, s.product_code, ru.state
                    FROM src s JOIN reservation_units ru ON ru.reservation_id = s.reservation_id AND ru.din = s.din AND ru.product_code = s.product_code
                    ORDER BY s.reservation_id, s.din, s.product_code
                    FOR UPDATE OF ru
                    """, logger: logger).decode((UUID, String, String, String).self) {
                    units.append((reservation, UnitKey(din: din, productCode: code), state))
                }
                let issued = units.filter { ["issued", "returned"].contains($0.state) }.map(\.key)
                if !issued.isEmpty { return .unitsIssued(issued) }
                let active = units.filter { $0.state == "active" }
                var released: [UnitKey] = []
                for (reservation, group) in Dictionary(grouping: active, by: \.reservation).sorted(by: { $0.key.uuidString < $1.key.uuidString }) {
                    var keys: [UnitKey] = []
                    for unit in group.sorted(by: { $0.key < $1.key }) {
                        for try await (_,) in try await conn.query("""
                            UPDATE reservation_units SET state = 'released'
                            WHERE reservation_id = \(reservation) AND din = \(unit.key.din) AND product_code = \(unit.key.productCode) AND state = 'active'
                            RETURNING din
                            """, logger: logger).decode((String,).self) { keys.append(unit.key) }
                    }
                    guard !keys.isEmpty else { continue }
                    released += keys
                    try await PostgresAuditLog.append(NewAuditEvent(
                        actor: actor, action: "reservation.released", subject: "reservation:" + reservation.uuidString.lowercased(),
                        payloadJSON: #"{"units":\#(PostgresReservationStore.unitsJSON(keys)),"reason":\#(jsonString("order \(orderID) cancelled: \(reason)")),"order_id":\#(jsonString(orderID))}"#,
                        requestID: requestID), on: conn, logger: logger)
                }
                _ = try await conn.query("""
                    UPDATE orders SET status = 'cancelled', status_reason = \(reason), updated_at = clock_timestamp()
                    WHERE order_id = \(orderID)
                    """, logger: logger).collect()
                try await PostgresAuditLog.append(NewAuditEvent(
                    actor: actor, action: "order.cancelled", subject: "order:" + orderID,
                    payloadJSON: #"{"reason":\#(jsonString(reason)),"was":\#(jsonString(status)),"units_released":\#(PostgresReservationStore.unitsJSON(released))}"#,
                    requestID: requestID), on: conn, logger: logger)
                return .cancelled(released: released)
            }
        }
    }
}
