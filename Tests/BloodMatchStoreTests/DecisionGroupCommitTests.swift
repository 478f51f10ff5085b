import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import PostgresNIO
import Synchronization
import Testing

/// Decisions written together: one statement for many, each acknowledged only once stored, retries
/// answered with the original, and every row in the chain.
@Suite("Decisions: group commit")
struct DecisionGroupCommitTests {
    struct ItemRefused: Error { var item: Int }

    static let digest = String(repeating: "ab", count: 32)

    static func decision(_ requestID: String, units: Int = 2, outcome: String = "fulfilled") -> StoredDecision {
        StoredDecision(decisionID: UUID(), requestID: requestID, hospital: "H1", requestedBy: "hospital:H1", outcome: outcome,
                       requestJSON: #"{"request_id":"\#(requestID)"}"#, rationaleJSON: #"{"notes":["\#(requestID)"]}"#,
                       policyVersion: "policy-test", indexVersion: "index-test", evaluatedAt: Date(timeIntervalSince1970: 1_800_000_000),
                       units: (1...units).map { DecisionUnit(rank: $0, din: "G0000260000\(10 + $0)", productCode: "E0001V00",
                                                             centre: "C1", chosen: $0 == 1, reason: "rank \($0)") },
                       dataStateDigest: digest, dataStateJSON: #"[{"centre":"C1"}]"#)
    }

    static func count(_ db: Database, _ sql: String) async throws -> Int {
        var n = -1
        for try await (v,) in try await db.client.query(PostgresQuery(unsafeSQL: sql), logger: db.logger).decode((Int,).self) { n = v }
        return n
    }

    @Test("One statement for many decisions: new ones stored with units and events, a request id seen before or twice in the group answered with the original, the chain verified")
    func batchStatement() async throws {
        try await TestDatabase.withFresh { test in
            try await test.with(.app) { db in
                let store = PostgresDecisionStore(database: db)
                let earlier = try await store.record(Self.decision("req-earlier"))
                #expect(earlier.isNew)
                var group = (0..<20).map { PendingDecision(Self.decision("req-\($0)", units: 1 + $0 % 3), requestID: "http-\($0)",
                                                           clientAddress: "192.0.2.\($0)") }
                group.append(PendingDecision(Self.decision("req-earlier")))
                group.append(PendingDecision(Self.decision("req-3")))
                let results = try await store.record(group)
                #expect(results.count == 22)
                let answers = try results.map { try $0.get() }
                #expect(answers.prefix(20).allSatisfy { $0.isNew })
                #expect(answers[20].isNew == false && answers[20].decision.decisionID == earlier.decision.decisionID)
                #expect(answers[21].isNew == false && answers[21].decision.decisionID == group[3].decision.decisionID)
                #expect(try await Self.count(db, "SELECT count(*) FROM bm.decisions") == 21)
                // Units of the skipped duplicates are not stored: 2 + sum over 20 of (1 + i % 3).
                let expectedUnits = 2 + (0..<20).reduce(0) { $0 + 1 + $1 % 3 }
                #expect(try await Self.count(db, "SELECT count(*) FROM bm.decision_units") == expectedUnits)
                #expect(try await Self.count(db, "SELECT count(*) FROM bm.event_log WHERE action = 'decision.made'") == 21)
                #expect(try await Self.count(db, "SELECT count(*) FROM bm.event_log WHERE action = 'decision.made' AND request_id = 'http-7' AND peer_addr = '192.0.2.7'") == 1)
                // The group's record events (one per table for the statement) name every request of it.
                #expect(try await Self.count(db, """
                    SELECT count(*) FROM bm.event_log WHERE action = 'record.written' AND subject = 'table:decisions'
                      AND request_id LIKE 'http-0 %' AND request_id LIKE '% http-19 %'
                    """) == 1)
                #expect(try await Self.count(db, "SELECT count(*) FROM bm.decision_data_states") == 1)
                let report = try await PostgresAuditLog(database: db).verify()
                #expect(report.isIntact, "\(String(describing: report.problem)) \(report.recordMismatches)")
            }
        }
    }

    @Test("Concurrent callers are written in fewer statements than decisions, each acknowledged with its own decision once stored")
    func concurrentCallersShareStatements() async throws {
        try await TestDatabase.withFresh { test in
            try await test.with(.app) { db in
                let writer = PostgresDecisionStore(database: db).groupWriter(maxBatch: 16, maxInFlight: 2)
                let before = try await Self.count(db, "SELECT count(*) FROM bm.event_log WHERE subject = 'table:decisions'")
                let ids = try await withThrowingTaskGroup(of: (String, UUID, Bool).self) { group in
                    for i in 0..<96 {
                        group.addTask {
                            let d = Self.decision("conc-\(i)")
                            let answer = try await writer.call(PendingDecision(d))
                            return (d.requestID, answer.decision.decisionID, answer.isNew && answer.decision.decisionID == d.decisionID)
                        }
                    }
                    var out: [(String, UUID, Bool)] = []
                    for try await x in group { out.append(x) }
                    return out
                }
                #expect(ids.count == 96 && ids.allSatisfy { $0.2 })
                // Acknowledged means stored: every id answered is in the table.
                let stored = try await Self.count(db, "SELECT count(*) FROM bm.decisions WHERE request_id LIKE 'conc-%'")
                #expect(stored == 96)
                let statements = try await Self.count(db, "SELECT count(*) FROM bm.event_log WHERE subject = 'table:decisions'") - before
                #expect(statements >= 6 && statements < 96, "\(statements) statements for 96 decisions")
                let report = try await PostgresAuditLog(database: db).verify()
                #expect(report.isIntact)
            }
        }
    }

    @Test("A batcher answers each caller with its own result, never more than maxBatch at once, and a failing batch fails its callers only")
    func batcherRoutesAnswers() async throws {
        let sizes = Mutex<[Int]>([])
        let batcher = CallBatcher<Int, Int>(maxBatch: 8, maxInFlight: 1) { items in
            sizes.withLock { $0.append(items.count) }
            try await Task.sleep(for: .milliseconds(5))
            if items.contains(-1) { throw CancellationError() }
            return items.map { $0 % 7 == 0 ? .failure(ItemRefused(item: $0)) : .success($0 * 10) }
        }
        let answers = await withTaskGroup(of: (Int, Int?).self) { group in
            for i in 1...50 { group.addTask { (i, try? await batcher.call(i)) } }
            var out: [Int: Int?] = [:]
            for await (i, a) in group { out[i] = a }
            return out
        }
        for i in 1...50 { #expect(answers[i] == (i % 7 == 0 ? nil : i * 10)) }
        let seen = sizes.withLock { $0 }
        #expect(seen.allSatisfy { $0 <= 8 } && seen.reduce(0, +) == 50 && seen.count < 50)
        await #expect(throws: CancellationError.self) { try await batcher.call(-1) }
        #expect(try await batcher.call(3) == 30)
    }
}
