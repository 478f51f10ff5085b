import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

/// A batch run while live matches hold units one after another, against a real PostgreSQL: the run
/// is recorded (a replan excludes every hold made since, not only the clashing ones), and no unit
/// is held twice.
@Suite("Batch runs under live match and hold traffic")
struct BatchUnderTrafficTests {
    static let now = DecisionEngineTests.now

    /// Sydney and Newcastle with 60 O-negative red-cell units each, and the Wollongong hospital.
    static func seed(_ test: TestDatabase) async throws {
        let collected = now.addingTimeInterval(-5 * 86_400)
        func units(_ centre: String, from base: Int) throws -> [InventoryUnit] {
            try (0..<60).map {
                try StockFixture.unit(StockFixture.din(sequence: base + $0), .redCells, .oNegative, at: centre, collected: collected,
                                      expires: now.addingTimeInterval(Double(20 + $0 % 10) * 86_400))
            }
        }
        try await DecisionEngineTests.load(test, sydney: try units("DCSYD", from: 100), newcastle: try units("DCNEW", from: 300))
    }

    @Test("three rounds: a batch of 10 orders planned while 4 dispatchers match and hold one unit at a time is recorded every time; no unit is held twice")
    func batchSucceedsUnderTraffic() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.seed(test)
            try await test.with(.app) { db in
                var logger = Logger(label: "test")
                logger.logLevel = .critical
                let runner = BatchRunner(database: db, optimiser: try BatchRunnerTests.optimiser(), logger: logger)
                let engine = DecisionEngine(database: db, planner: try DecisionEngineTests.planner(), index: nil, logger: logger,
                                            databaseDeadline: .seconds(30))
                var liveHolds = 0
                var replans = 0
                for round in 0..<3 {
                    try await PostgresOrderStore(database: db).add(
                        (0..<10).map { BatchRunnerTests.order("R\(round)-\($0)", quantity: 1) }, actor: "test")
                    let (result, held) = try await withThrowingTaskGroup(of: Int.self, returning: (BatchRunResult, Int).self) { group in
                        for dispatcher in 0..<4 {
                            group.addTask {
                                var made = 0
                                for n in 0..<4 {
                                    let id = "live-\(round)-\(dispatcher)-\(n)"
                                    let answer = try await engine.decide(DecisionEngineTests.request(id, quantity: 1), requestedBy: "operator:test",
                                                                         traceID: nil, now: Self.now)
                                    guard let unit = answer.decision.chosen.first else { continue }
                                    let outcome = try await PostgresReservationStore(database: db).reserve(ReservationRequest(
                                        idempotencyKey: "hold-" + id, source: .decision, decisionID: answer.decision.decisionID, hospital: "HWOL",
                                        reservedBy: "operator:test", units: [unit.key], holdSeconds: 3_600))
                                    if case .reserved = outcome { made += 1 }
                                }
                                return made
                            }
                        }
                        let result = try await runner.run(runKey: "traffic-\(round)", operatorName: "test", now: Self.now)
                        var made = 0
                        for try await n in group { made += n }
                        return (result, made)
                    }
                    #expect(result.isNew && result.plan.allocations.count == 10, "round \(round): \(result.plan.allocations.count) allocated, \(result.replans) replans")
                    liveHolds += held
                    replans += result.replans
                }
                // Dispatchers often pick the same first unit at once (one wins the hold); what matters is
                // that holds were being made while the batches planned and wrote.
                print(#"{"batch_under_traffic":{"rounds":3,"live_holds":\#(liveHolds),"batch_replans":\#(replans)}}"#)
                #expect(liveHolds >= 8, "\(liveHolds) live holds made alongside the batches")
                // Every active or issued hold owns its unit alone (the database's unique index), and
                // the batches' and the dispatchers' holds add up.
                let active = try await BatchRunnerTests.count(db, "SELECT count(*)::int FROM reservation_units WHERE state = 'active'")
                let distinct = try await BatchRunnerTests.count(db, "SELECT count(DISTINCT (din, product_code))::int FROM reservation_units WHERE state = 'active'")
                #expect(active == distinct && active == 30 + liveHolds)
            }
        }
    }

    @Test("the last attempt is fenced: a held unit and a cancelled order are planned again inside the write, and a live hold waits for it")
    func fencedAttemptReplansInsideTheWrite() async throws {
        let now = BatchRunnerTests.now
        try await TestDatabase.withFresh { test in
            try await DecisionEngineTests.seed(test)
            try await test.with(.app) { db in
                try await PostgresOrderStore(database: db).add(
                    [BatchRunnerTests.order("A", quantity: 2), BatchRunnerTests.order("B", quantity: 1)], actor: "test")
                let orders = try await PostgresOrderStore(database: db).pendingForBatch()
                let index = try await PostgresInventoryReader(database: db).buildIndex(now: now)
                let optimiser = try BatchRunnerTests.optimiser()
                let plan = await optimiser.planOnOwnThread(orders: orders, index: index, excluded: [], now: now)
                let planned = Set(plan.allocations.map(\.unit.key))
                let taken = try #require(plan.allocations.first?.unit.key)
                var stock: [UnitKey] = []
                for try await (din, code) in try await db.client.query("SELECT din, product_code FROM inventory_units ORDER BY din",
                                                                         logger: db.logger).decode((String, String).self) {
                    stock.append(UnitKey(din: din, productCode: code))
                }
                let spare = try #require(stock.first { !planned.contains($0) })
                let reservations = PostgresReservationStore(database: db)
                @Sendable func hold(_ unit: UnitKey, _ key: String) async throws -> ReservationOutcome {
                    try await reservations.reserve(ReservationRequest(idempotencyKey: key, source: .manual, hospital: "HWOL",
                                                                      reservedBy: "test", units: [unit], holdSeconds: 3_600))
                }
                // After planning, a live hold takes a planned unit and order B is cancelled.
                guard case .reserved = try await hold(taken, "live-1") else { Issue.record("the first live hold failed"); return }
                #expect(try await PostgresOrderStore(database: db).cancel(orderID: "B", actor: "test", reason: "not needed"))

                // While the fenced write re-plans, another live hold is tried: it must wait for the write.
                let seen = FenceObserver()
                let fence = BatchFence { orders, more in
                    seen.replans.withLock { $0.append(more) }
                    if seen.live.withLock({ $0 == nil }) {
                        let task = Task {
                            let outcome = try await hold(spare, "live-2")
                            seen.liveDone.withLock { $0 = Date() }
                            return outcome
                        }
                        seen.live.withLock { $0 = task }
                    }
                    // Unfenced, the live hold would be made well within this pause.
                    try? await Task.sleep(for: .milliseconds(400))
                    let replanned = await optimiser.planOnOwnThread(orders: orders, index: index, excluded: more, now: now)
                    seen.replanEnd.withLock { $0 = Date() }
                    return (replanned, 1)
                }
                let outcome = try await PostgresBatchStore(database: db).record(
                    plan: plan, orders: orders, runID: UUID(), runKey: "fenced", operatorName: "test", startedAt: Date(),
                    solveMilliseconds: 1, holdUntil: now.addingTimeInterval(3_600), fence: fence)
                guard case .recorded(_, let recorded, _) = outcome else { Issue.record("not recorded: \(outcome)"); return }
                // Planned once more, without the held unit and without order B.
                #expect(seen.replans.withLock { $0.count } == 1)
                #expect(seen.replans.withLock { $0.first?.contains(taken) } == true)
                #expect(recorded.outcomes.map(\.orderID) == ["A"])
                #expect(recorded.allocations.count == 2 && !recorded.allocations.map(\.unit.key).contains(taken))
                // The live hold tried under the fence waited for the write, then was made on its free unit.
                let live = try #require(seen.live.withLock { $0 })
                guard case .reserved = try await live.value else { Issue.record("the live hold under the fence failed"); return }
                let done = try #require(seen.liveDone.withLock { $0 }), replanEnd = try #require(seen.replanEnd.withLock { $0 })
                #expect(done >= replanEnd, "the live hold was made \(replanEnd.timeIntervalSince(done)) s before the fenced re-plan ended")
                // Every active hold owns its unit alone; B is still cancelled, A allocated.
                let active = try await BatchRunnerTests.count(db, "SELECT count(*)::int FROM reservation_units WHERE state = 'active'")
                let distinct = try await BatchRunnerTests.count(db, "SELECT count(DISTINCT (din, product_code))::int FROM reservation_units WHERE state = 'active'")
                #expect(active == 4 && distinct == 4)
                #expect(try await BatchRunnerTests.count(db, "SELECT count(*)::int FROM orders WHERE order_id = 'B' AND status = 'cancelled'") == 1)
            }
        }
    }
}

/// What a fence's re-plan saw, for the test above.
private final class FenceObserver: Sendable {
    let replans = Mutex<[Set<UnitKey>]>([])
    let live = Mutex<Task<ReservationOutcome, any Error>?>(nil)
    let liveDone = Mutex<Date?>(nil)
    let replanEnd = Mutex<Date?>(nil)
}
