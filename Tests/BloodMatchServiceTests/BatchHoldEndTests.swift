import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// What happens to batch orders when their holds end, against a real PostgreSQL: an order with
/// nothing held, issued or returned from its run goes back to pending with an event, and the next
/// run plans it again.
@Suite("Batch holds that end return their orders to pending")
struct BatchHoldEndTests {
    typealias Runner = BatchRunnerTests

    static func quietRunner(_ db: Database) throws -> BatchRunner {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return BatchRunner(database: db, optimiser: try Runner.optimiser(), logger: logger)
    }

    static func status(_ db: Database, _ order: String) async throws -> String? {
        try await db.client.query("SELECT status FROM bm.orders WHERE order_id = \(order)", logger: db.logger)
            .collect().first?.decode(String.self)
    }

    @Test("an expired batch hold sends its order back to pending with an event; the next run allocates it again; a released one too")
    func endedHoldsReturnOrders() async throws {
        try await TestDatabase.withFresh { test in
            try await DecisionEngineTests.seed(test)
            try await test.with(.app) { db in
                try await PostgresOrderStore(database: db).add([Runner.order("X", quantity: 2), Runner.order("Y", quantity: 1)], actor: "test")
                let runner = try Self.quietRunner(db)
                // Planned now, held for one second.
                let first = try await runner.run(runKey: "expiring", operatorName: "test", now: Date(), holdHours: 1.0 / 3_600)
                #expect(first.plan.allocations.count == 3)
                #expect(try await Self.status(db, "X") == "allocated")
                try await Task.sleep(for: .milliseconds(1_500))
                let freed = try await PostgresReservationStore(database: db).expireOverdue(actor: "expiry")
                #expect(freed == 3)
                #expect(try await Self.status(db, "X") == "pending")
                #expect(try await Self.status(db, "Y") == "pending")
                let reason = try await db.client.query("SELECT status_reason FROM bm.orders WHERE order_id = 'X'", logger: db.logger)
                    .collect().first?.decode(String?.self)
                #expect(reason?.contains("its batch hold expired") == true)
                #expect(try await Runner.count(db, "SELECT count(*)::int FROM event_log WHERE action = 'order.returned_to_pending'") == 2)
                // The next run picks them up.
                let second = try await runner.run(runKey: "again", operatorName: "test", now: Date(), holdHours: 1)
                #expect(second.isNew && second.plan.allocations.count == 3)
                #expect(try await Self.status(db, "X") == "allocated")
                // Releasing that run's hold of X's units returns X alone; Y keeps its hold.
                let holds = try await db.client.query("""
                    SELECT DISTINCT s.reservation_id FROM bm.batch_allocations a JOIN bm.batch_shipments s USING (run_id, shipment_no)
                    WHERE a.run_id = \(second.runID) AND a.order_id = 'X'
                    """, logger: db.logger).collect().map { try $0.decode(UUID.self) }
                let yShares = try await Runner.count(db, """
                    SELECT count(*)::int FROM bm.batch_allocations a JOIN bm.batch_shipments s USING (run_id, shipment_no)
                    WHERE a.run_id = '\(second.runID)' AND a.order_id = 'Y' AND s.reservation_id IN (\(holds.map { "'\($0)'" }.joined(separator: ",")))
                    """)
                for hold in holds { _ = try await PostgresReservationStore(database: db).release(hold, by: "test", reason: "ward cancelled") }
                #expect(try await Self.status(db, "X") == "pending")
                // Y shares X's shipment when both come from one centre: then it is returned too.
                #expect(try await Self.status(db, "Y") == (yShares > 0 ? "pending" : "allocated"))
                #expect(try await Runner.count(db, "SELECT count(*)::int FROM event_log WHERE action = 'order.returned_to_pending'") == 3 + (yShares > 0 ? 1 : 0))
            }
        }
    }
}
