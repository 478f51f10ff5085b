import Foundation
import Logging
import PostgresNIO

extension PostgresReservationStore {
    /// In the caller's transaction, after holds of `reservations` ended (expired or released):
    /// every order of their batch runs that was allocated there and now has nothing held, issued
    /// or returned from that run goes back to `pending`, with an `order.returned_to_pending` event,
    /// so the next batch run plans it again (an order left `allocated` with nothing held would wait
    /// for ever). Returns the orders returned.
    static func returnOrdersWithNothingHeld(on conn: PostgresConnection, reservations: [UUID], actor: String, why: String,
                                            logger: Logger) async throws -> [String] {
        guard !reservations.isEmpty else { return [] }
        var returned: [(order: String, run: String)] = []
        for try await (order, run) in try await conn.query("""
            UPDATE orders o SET status = 'pending', updated_at = clock_timestamp(),
                   status_reason = \(why) || ' (batch run ' || o.last_run_id || '); back to pending for the next run'
            WHERE o.status IN ('allocated', 'partially_allocated')
              AND o.last_run_id IN (SELECT r.batch_run_id FROM reservations r
                                    WHERE r.reservation_id = ANY(\(reservations)::uuid[]) AND r.batch_run_id IS NOT NULL)
              AND NOT EXISTS (
                SELECT 1 FROM batch_allocations a
                  JOIN batch_shipments s ON s.run_id = a.run_id AND s.shipment_no = a.shipment_no
                  JOIN reservation_units ru ON ru.reservation_id = s.reservation_id AND ru.din = a.din AND ru.product_code = a.product_code
                WHERE a.run_id = o.last_run_id AND a.order_id = o.order_id AND ru.state IN ('active', 'issued', 'returned'))
            RETURNING o.order_id, o.last_run_id::text
            """, logger: logger).decode((String, String).self) { returned.append((order, run)) }
        for (order, run) in returned.sorted(by: { $0.order < $1.order }) {
            try await PostgresAuditLog.append(NewAuditEvent(
                actor: actor, action: "order.returned_to_pending", subject: "order:" + order,
                payloadJSON: #"{"batch_run_id":\#(jsonString(run)),"reason":\#(jsonString(why))}"#), on: conn, logger: logger)
        }
        return returned.map(\.order)
    }
}
