import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// Batch runs against a real PostgreSQL: one atomic write with reservations, idempotent per run
/// key, never a unit held by someone else, and orders that changed meanwhile left out.
@Suite("Batch runs against PostgreSQL")
struct BatchRunnerTests {
    static let now = DecisionEngineTests.now

    static func optimiser() throws -> BatchOptimiser { BatchOptimiser(planner: try DecisionEngineTests.planner()) }

    static func order(_ id: String, quantity: Int, urgency: Urgency = .routine, group: BloodGroup = .oNegative) -> OrderRecord {
        OrderRecord(orderID: id, hospitalID: "HWOL", component: .redCells, group: group,
                    context: RecipientContext(sex: .female, ageYears: 30), quantity: quantity, requirements: [],
                    maximumUnitAgeDays: nil, urgency: urgency, neededBy: now.addingTimeInterval(6 * 3600),
                    placedBy: "test", source: "test")
    }

    static func count(_ db: Database, _ sql: String) async throws -> Int {
        var n = 0
        for try await (value,) in try await db.client.query(PostgresQuery(unsafeSQL: sql), logger: db.logger).decode((Int,).self) { n = value }
        return n
    }

    @Test("a run allocates, reserves and records in one go; the same key again changes nothing")
    func runRecordsAndIsIdempotent() async throws {
        try await TestDatabase.withFresh { test in
            try await DecisionEngineTests.seed(test)
            try await test.with(.app) { db in
                try await PostgresOrderStore(database: db).add(
                    [Self.order("A", quantity: 2, urgency: .urgent), Self.order("B", quantity: 3), Self.order("C", quantity: 4)],
                    actor: "test")
                var logger = Logger(label: "test")
                logger.logLevel = .critical
                let runner = BatchRunner(database: db, optimiser: try Self.optimiser(), logger: logger)
                let first = try await runner.run(runKey: "k1", operatorName: "test", now: Self.now)
                #expect(first.isNew)
                // Six O-negative units: A (urgent) gets 2, then B 3, and C only the last 1.
                let outcomes = Dictionary(uniqueKeysWithValues: first.plan.outcomes.map { ($0.orderID, $0) })
                #expect(outcomes["A"]?.allocated == 2)
                #expect(first.plan.allocations.count == 6)
                #expect(Set(first.plan.allocations.map(\.unit.din)).count == 6)
                #expect((outcomes["B"]?.allocated ?? 0) + (outcomes["C"]?.allocated ?? 0) == 4)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM reservation_units WHERE state = 'active'") == 6)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM reservations WHERE source = 'batch'") == first.plan.shipments.count)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM batch_allocations") == 6)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM orders WHERE status = 'pending'") == 0)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM event_log WHERE action = 'batch.run'") == 1)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM event_log WHERE action IN ('order.allocated', 'order.unfillable')") == 3)

                let again = try await runner.run(runKey: "k1", operatorName: "test", now: Self.now)
                #expect(!again.isNew && again.runID == first.runID && again.plan == first.plan)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM batch_runs") == 1)

                // A live match sees the units as held.
                let gone = try await PostgresInventoryReader(database: db).unavailable(units: first.plan.allocations.map(\.unit.key))
                #expect(gone.count == 6)

                // A new order finds nothing left: every unit is reserved by the first run.
                try await PostgresOrderStore(database: db).add([Self.order("D", quantity: 1, urgency: .emergency)], actor: "test")
                let second = try await runner.run(runKey: "k2", operatorName: "test", now: Self.now)
                #expect(second.plan.allocations.isEmpty)
                #expect(second.plan.outcomes.first?.status == .unfillable)
                #expect(second.plan.outcomes.first?.reason?.isEmpty == false)

                // The health reader (and so /metrics) sees the latest run: the emergency order left short.
                let latest = try #require(try await PostgresHealthReader(database: db).read().latestBatch)
                #expect(latest.allocatedUnits == 0 && latest.shipments == 0)
                #expect(latest.ordersByStatus == ["allocated": 0, "partially_allocated": 0, "unfillable": 1])
                #expect(latest.shortByUrgency == ["emergency": 1, "urgent": 0, "routine": 0])
                #expect(latest.durationSeconds >= 0 && latest.solveSeconds == Double(second.solveMilliseconds) / 1000)
                #expect(latest == BatchRunSummary(plan: second.plan, finishedAt: Date(timeIntervalSince1970: latest.finishedAt),
                                                  durationSeconds: latest.durationSeconds, solveMilliseconds: second.solveMilliseconds))
            }
        }
    }

    @Test("a decided order cancelled: only its own units of the shared shipment hold are released; again says already cancelled")
    func cancelDecidedOrder() async throws {
        try await TestDatabase.withFresh { test in
            try await DecisionEngineTests.seed(test)
            try await test.with(.app) { db in
                let orders = PostgresOrderStore(database: db)
                try await orders.add([Self.order("A", quantity: 2), Self.order("B", quantity: 3)], actor: "test")
                var logger = Logger(label: "test")
                logger.logLevel = .critical
                let run = try await BatchRunner(database: db, optimiser: try Self.optimiser(), logger: logger)
                    .run(runKey: "k1", operatorName: "test", now: Self.now)
                let aUnits = Set(run.plan.allocations.filter { $0.orderID == "A" }.map(\.unit.key))
                #expect(aUnits.count == 2)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM reservation_units WHERE state = 'active'") == 5)
                #expect(try await orders.cancelDecided(orderID: "A", hospital: "HOTHER", actor: "test", reason: "wrong hospital") == .notFound)
                guard case .cancelled(let released) = try await orders.cancelDecided(orderID: "A", hospital: "HWOL", actor: "test", reason: "not needed")
                else { Issue.record("A was not cancelled"); return }
                #expect(Set(released) == aUnits)
                // B's three units stay held, in the same holds.
                #expect(try await Self.count(db, "SELECT count(*)::int FROM reservation_units WHERE state = 'active'") == 3)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM reservation_units WHERE state = 'released'") == 2)
                #expect(try await orders.find(orderID: "A")?.status == "cancelled")
                #expect(try await orders.find(orderID: "B")?.status == "allocated")
                #expect(try await Self.count(db, "SELECT count(*)::int FROM event_log WHERE action = 'order.cancelled' AND subject = 'order:A'") == 1)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM event_log WHERE action = 'reservation.released' AND payload->>'order_id' = 'A'") >= 1)
                #expect(try await orders.cancelDecided(orderID: "A", hospital: "HWOL", actor: "test", reason: "again") == .alreadyCancelled)
                try await orders.add([Self.order("P", quantity: 1)], actor: "test")
                #expect(try await orders.cancelDecided(orderID: "P", hospital: "HWOL", actor: "test", reason: "pending") == .pending)
            }
        }
    }

    @Test("a unit reserved between planning and writing: nothing is written, and the runner plans again without it")
    func unitTakenMeanwhileFailsSafe() async throws {
        try await TestDatabase.withFresh { test in
            try await DecisionEngineTests.seed(test)
            try await test.with(.app) { db in
                try await PostgresOrderStore(database: db).add([Self.order("A", quantity: 2)], actor: "test")
                let orders = try await PostgresOrderStore(database: db).pendingForBatch()
                let index = try await PostgresInventoryReader(database: db).buildIndex(now: Self.now)
                let plan = try await Self.optimiser().planOnOwnThread(orders: orders, index: index, excluded: [], now: Self.now)
                let taken = try #require(plan.allocations.first?.unit.key)
                // A live reservation takes one planned unit.
                let hold = UUID()
                try await db.client.query("""
                    INSERT INTO reservations (reservation_id, source, hospital, reserved_by, idempotency_key, request_fingerprint, held_until)
                    VALUES (\(hold), 'manual', 'HWOL', 'test', 'live-1', 'x', now() + interval '1 hour')
                    """, logger: db.logger)
                try await db.client.query("""
                    INSERT INTO reservation_units (reservation_id, din, product_code, centre, component, abo, rhd, expires_at, state)
                    VALUES (\(hold), \(taken.din), \(taken.productCode), 'DCSYD', 'RBC', 'O', 'NEG', now() + interval '30 days', 'active')
                    """, logger: db.logger)
                let outcome = try await PostgresBatchStore(database: db).record(
                    plan: plan, orders: orders, runID: UUID(), runKey: "k", operatorName: "test", startedAt: Date(),
                    solveMilliseconds: 1, holdUntil: Self.now.addingTimeInterval(3600))
                #expect(outcome == .unitsTaken([taken]))
                #expect(try await Self.count(db, "SELECT count(*)::int FROM batch_runs") == 0)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM orders WHERE status = 'pending'") == 1)

                var logger = Logger(label: "test")
                logger.logLevel = .critical
                let result = try await BatchRunner(database: db, optimiser: try Self.optimiser(), logger: logger)
                    .run(runKey: "k", operatorName: "test", now: Self.now)
                #expect(result.plan.allocations.count == 2)
                #expect(!result.plan.allocations.map(\.unit.key).contains(taken))
            }
        }
    }

    @Test("an order cancelled after planning is not written")
    func cancelledMeanwhile() async throws {
        try await TestDatabase.withFresh { test in
            try await DecisionEngineTests.seed(test)
            try await test.with(.app) { db in
                let store = PostgresOrderStore(database: db)
                try await store.add([Self.order("A", quantity: 1), Self.order("B", quantity: 1)], actor: "test")
                let orders = try await store.pendingForBatch()
                let index = try await PostgresInventoryReader(database: db).buildIndex(now: Self.now)
                let plan = try await Self.optimiser().planOnOwnThread(orders: orders, index: index, excluded: [], now: Self.now)
                #expect(try await store.cancel(orderID: "B", actor: "test", reason: "not needed"))
                let outcome = try await PostgresBatchStore(database: db).record(
                    plan: plan, orders: orders, runID: UUID(), runKey: "k", operatorName: "test", startedAt: Date(),
                    solveMilliseconds: 1, holdUntil: Self.now.addingTimeInterval(3600))
                #expect(outcome == .ordersChanged(["B"]))
                await #expect(throws: OrderStoreError.self) { try await store.add([Self.order("A", quantity: 1)], actor: "test") }
            }
        }
    }
}
