import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import PostgresNIO
import Testing

/// What-if decisions (`match --as-of`) and late answers, recorded in a real PostgreSQL: a what-if is
/// kept but the database refuses any hold on its strength; a late answer is recorded as `late`.
@Suite("What-if and late decisions against PostgreSQL")
struct WhatIfAndLateTests {
    typealias Engine = DecisionEngineTests
    static let now = Engine.now

    static func hold(_ decision: MatchDecision, key: String, on db: Database) async throws -> ReservationOutcome {
        try await PostgresReservationStore(database: db).reserve(ReservationRequest(
            idempotencyKey: key, source: .decision, decisionID: decision.decisionID, hospital: "HWOL", reservedBy: "operator:test",
            units: decision.chosen.map(\.key), holdSeconds: 3600))
    }

    @Test("a what-if is recorded and marked, the database refuses to hold its units, and one before the oldest snapshot in force is refused")
    func whatIfIsNeverReservable() async throws {
        try await TestDatabase.withFresh { test in
            try await Engine.seed(test)
            try await test.with(.app) { db in
                let engine = DecisionEngine(database: db, planner: try Engine.planner(), index: nil, logger: db.logger, databaseDeadline: .seconds(30))
                // Thirty seconds back: after both snapshots (as of a minute back).
                let whatIf = try await engine.decide(Engine.request("w-1"), requestedBy: "operator:test", traceID: nil,
                                                     now: Self.now.addingTimeInterval(-30), whatIf: true)
                #expect(whatIf.recorded && whatIf.decision.whatIf == true && whatIf.decision.outcome == .fulfilled)
                #expect(whatIf.decision.summary.hasPrefix("WHAT-IF at "), "\(whatIf.decision.summary)")
                let stored = try await PostgresDecisionStore(database: db).find(decisionID: whatIf.decision.decisionID)
                #expect(try stored.map(DecisionEngine.decode)?.whatIf == true)
                // The store checks nothing itself: the refusal is the database's trigger (migration 0011).
                await #expect(throws: WhatIfDecisionError.self) { try await Self.hold(whatIf.decision, key: "h-what-if", on: db) }
                let holds = try await db.client.query("SELECT count(*)::int FROM bm.reservations WHERE decision_id = \(whatIf.decision.decisionID)",
                                                      logger: db.logger).collect().first?.decode(Int.self)
                #expect(holds == 0)
                // The same question asked live is reservable.
                let live = try await engine.decide(Engine.request("w-2"), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(live.decision.whatIf == nil)
                guard case .reserved = try await Self.hold(live.decision, key: "h-live", on: db) else {
                    Issue.record("the live decision's units were not held"); return
                }
                // Before the oldest snapshot in force the stock is not known: refused, not answered.
                await #expect {
                    try await engine.decide(Engine.request("w-3"), requestedBy: "operator:test", traceID: nil,
                                            now: Self.now.addingTimeInterval(-3_600), whatIf: true)
                } throws: { error in
                    guard let error = error as? MatchRequestError else { return false }
                    return error.field == "as_of" && error.reason.contains("before the oldest snapshot in force")
                }
            }
        }
    }

    @Test("wastage demand counts orders and live decisions that found units, never what-ifs; a recipient of unknown group counts as the group served")
    func demandCountsLiveDecisionsNotWhatIfs() async throws {
        try await TestDatabase.withFresh { test in
            try await Engine.seed(test)
            try await test.with(.app) { db in
                let engine = DecisionEngine(database: db, planner: try Engine.planner(), index: nil, logger: db.logger, databaseDeadline: .seconds(30))
                _ = try await engine.decide(Engine.request("d-live", quantity: 2), requestedBy: "operator:test", traceID: nil, now: Self.now)
                _ = try await engine.decide(Engine.request("d-what-if", quantity: 3), requestedBy: "operator:test", traceID: nil,
                                            now: Self.now.addingTimeInterval(-30), whatIf: true)
                var unknown = Engine.request("d-unknown", quantity: 1)
                unknown.recipient = Recipient(group: nil, context: RecipientContext(sex: .female, ageYears: 30))
                _ = try await engine.decide(unknown, requestedBy: "operator:test", traceID: nil, now: Self.now)
                try await PostgresOrderStore(database: db).add([BatchRunnerTests.order("W1", quantity: 4)], actor: "test")
                let demand = try await PostgresOrderStore(database: db).recentDemand(since: Date().addingTimeInterval(-3_600))
                // 2 (live) + 1 (unknown group, served O-negative) + 4 (order); the what-if's 3 are not demand.
                #expect(demand.filter { $0.group == .oNegative && $0.component == .redCells }.map(\.quantity).reduce(0, +) == 7, "\(demand)")
                #expect(demand.allSatisfy { $0.group != nil })
            }
        }
    }

    @Test("an emergency whose every unit arrives after the 60-min ceiling is recorded as late, with each unit marked, and can still be held")
    func lateIsRecorded() async throws {
        try await TestDatabase.withFresh { test in
            try await Engine.seed(test)
            try await test.with(.app) { db in
                let engine = DecisionEngine(database: db, planner: try Engine.planner(), index: nil, logger: db.logger, databaseDeadline: .seconds(30))
                var request = Engine.request("late-1", quantity: 1)
                request.urgency = .emergency
                let answer = try await engine.decide(request, requestedBy: "operator:test", traceID: nil, now: Self.now)
                // Wollongong is about 110 min from Sydney by the standard travel model.
                #expect(answer.decision.outcome == .late && answer.decision.chosen.allSatisfy { $0.late == true })
                #expect(answer.decision.arrivalDeadlineMinutes == 60)
                let stored = try await PostgresDecisionStore(database: db).find(decisionID: answer.decision.decisionID)
                #expect(stored?.outcome == "late")
                guard case .reserved = try await Self.hold(answer.decision, key: "h-late", on: db) else {
                    Issue.record("the late decision's units were not held"); return
                }
                // A needed-by that the units meet makes the same request on time (the ceiling is routine's).
                request = Engine.request("late-2", quantity: 1)
                request.urgency = .routine
                request.neededBy = Self.now.addingTimeInterval(4 * 3_600)
                let onTime = try await engine.decide(request, requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(onTime.decision.outcome == .fulfilled && onTime.decision.arrivalDeadlineMinutes == 240)
            }
        }
    }
}
