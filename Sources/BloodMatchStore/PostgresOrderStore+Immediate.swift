import BloodMatchCore
import Foundation
import PostgresNIO

extension PostgresOrderStore {
    /// Records the outcome of an order matched at once (FHIR asap and stat): `allocated`,
    /// `partially_allocated` or `unfillable`, naming the decision whose hold carries its units.
    /// Only a pending immediate order changes; false when it was already settled or cancelled.
    /// Logs `order.matched`.
    public func settleImmediate(orderID: String, status: String, reason: String?, decisionID: UUID, actor: String) async throws -> Bool {
        precondition(["allocated", "partially_allocated", "unfillable"].contains(status))
        let logger = database.logger
        return try await database.withTransaction { conn in
            var changed = false
            for try await (_,) in try await conn.query("""
                UPDATE orders SET status = \(status), status_reason = \(reason), updated_at = clock_timestamp()
                WHERE order_id = \(orderID) AND status = 'pending' AND routing = 'immediate' RETURNING order_id
                """, logger: logger).decode((String,).self) { changed = true }
            if changed {
                try await conn.query("""
                    INSERT INTO event_log (actor, action, subject, payload)
                    VALUES (\(actor), 'order.matched', \("order:" + orderID),
                            jsonb_build_object('status', \(status)::text, 'decision_id', \(decisionID.uuidString.lowercased())::text,
                                               'reason', \(reason)::text))
                    """, logger: logger)
            }
            return changed
        }
    }
}
