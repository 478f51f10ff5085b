import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import PostgresNIO
import Testing

/// The decision engine against a real PostgreSQL: proposals from the index, truth from the
/// database, every answer recorded, retries idempotent, failures reported as unable to verify.
@Suite("Decision engine against PostgreSQL")
struct DecisionEngineTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// Two centres (Sydney and Newcastle) and a hospital in Wollongong.
    static let sites = [
        Site(id: "DCSYD", name: "Sydney", kind: .distributionCentre, location: GeoPoint(latitude: -33.87, longitude: 151.21), region: "AU-02"),
        Site(id: "DCNEW", name: "Newcastle", kind: .distributionCentre, location: GeoPoint(latitude: -32.93, longitude: 151.78), region: "AU-02"),
        Site(id: "HWOL", name: "Wollongong Hospital", kind: .hospital, location: GeoPoint(latitude: -34.42, longitude: 150.89), region: "AU-02"),
    ]

    /// The sites, and each centre's units as its snapshot (as of a minute before `now`).
    static func load(_ test: TestDatabase, sydney: [InventoryUnit], newcastle: [InventoryUnit]) async throws {
        let dir = StockFixture.temporaryDirectory()
        try StockFixture.write(sydney, centre: "DCSYD", asOf: now.addingTimeInterval(-60), name: "syd", in: dir)
        try StockFixture.write(newcastle, centre: "DCNEW", asOf: now.addingTimeInterval(-60), name: "new", in: dir)
        try await test.with(.importer) { db in
            _ = try await PostgresSiteStore(database: db).upsert(sites, source: "test")
            let importer = PostgresInventoryImporter(database: db)
            for name in ["syd", "new"] {
                let report = try await importer.importSnapshot(SnapshotSource(csvPath: dir.appendingPathComponent("\(name).csv").path), now: now)
                #expect(report.outcome == .loaded)
            }
        }
    }

    /// The sites with three O-negative red-cell units at each centre.
    static func seed(_ test: TestDatabase) async throws {
        let collected = now.addingTimeInterval(-5 * 86_400)
        let expires = now.addingTimeInterval(30 * 86_400)
        let sydney = try (1...3).map { try StockFixture.unit(StockFixture.din(sequence: $0), .redCells, .oNegative, at: "DCSYD", collected: collected, expires: expires.addingTimeInterval(Double($0) * 3600)) }
        let newcastle = try (11...13).map { try StockFixture.unit(StockFixture.din(sequence: $0), .redCells, .oNegative, at: "DCNEW", collected: collected, expires: expires) }
        try await load(test, sydney: sydney, newcastle: newcastle)
    }

    static func request(_ id: String, quantity: Int = 2) -> MatchRequest {
        MatchRequest(requestID: id, hospitalID: "HWOL", destination: nil, component: .redCells,
                     recipient: Recipient(group: .oNegative, context: RecipientContext(sex: .female, ageYears: 30)),
                     quantity: quantity, requirements: [], urgency: .urgent)
    }

    static func planner() throws -> MatchPlanner {
        MatchPlanner(rules: try CompatibilityPolicy(jsonData: StockFixture.policyData()), settings: .standard)
    }

    @Test("an index built from another database with the same snapshot ids is not taken as current")
    func indexFromAnotherDatabase() async throws {
        let foreign = try await TestDatabase.withFresh { test in
            try await Self.seed(test)
            return try await test.with(.app) { try await PostgresInventoryReader(database: $0).buildIndex(now: Self.now) }
        }
        try await TestDatabase.withFresh { test in
            // The same centres and snapshot ids, loaded a minute later (another as-of).
            try await Self.seed(test)
            try await test.with(.importer) { db in
                try await db.client.query("UPDATE bm.centre_status SET last_as_of = last_as_of + interval '1 minute'", logger: db.logger)
            }
            try await test.with(.app) { db in
                let own = try await PostgresInventoryReader(database: db).buildIndex(now: Self.now)
                #expect(own.centres.map(\.snapshotID) == foreign.centres.map(\.snapshotID))
                #expect(own.version != foreign.version)
                let engine = DecisionEngine(database: db, planner: try Self.planner(), index: foreign, logger: db.logger, databaseDeadline: .seconds(30))
                let answer = try await engine.decide(Self.request("r-foreign"), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(answer.decision.outcome == .fulfilled)
                #expect(answer.decision.indexVersion == own.version)
            }
        }
    }

    @Test("a decision is recorded with its units; a retry with the same request id returns the original")
    func recordedAndIdempotent() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.seed(test)
            try await test.with(.app) { db in
                let engine = DecisionEngine(database: db, planner: try Self.planner(), index: nil, logger: db.logger, databaseDeadline: .seconds(30))
                let first = try await engine.decide(Self.request("r-1"), requestedBy: "operator:test", traceID: "t1", now: Self.now)
                #expect(first.decision.outcome == .fulfilled)
                #expect(first.recorded && first.isNew)
                #expect(first.decision.chosen.map(\.centreID) == ["DCSYD", "DCSYD"])
                #expect(first.decision.chosen.map(\.din) == [StockFixture.din(sequence: 1), StockFixture.din(sequence: 2)])
                let again = try await engine.decide(Self.request("r-1"), requestedBy: "operator:test", traceID: "t2", now: Self.now.addingTimeInterval(60))
                #expect(!again.isNew)
                #expect(again.decision == first.decision)
                let stored = try await PostgresDecisionStore(database: db).find(decisionID: first.decision.decisionID)
                #expect(stored?.units.filter(\.chosen).count == 2)
                #expect(try stored.map(DecisionEngine.decode) == first.decision)
            }
        }
    }

    @Test("a unit reserved since the index was built is excluded, and the rationale says so")
    func reservedUnitsAreExcluded() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.seed(test)
            try await test.with(.app) { db in
                let index = try await PostgresInventoryReader(database: db).buildIndex(now: Self.now)
                let held = try await PostgresReservationStore(database: db).reserve(ReservationRequest(
                    idempotencyKey: "k1", source: .manual, hospital: "HWOL", reservedBy: "test", units: [StockFixture.key(StockFixture.din(sequence: 1))], holdSeconds: 3600))
                guard case .reserved = held else { Issue.record("the unit was not held"); return }
                let engine = DecisionEngine(database: db, planner: try Self.planner(), index: index, logger: db.logger, databaseDeadline: .seconds(30))
                let answer = try await engine.decide(Self.request("r-2"), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(answer.decision.chosen.map(\.din) == [StockFixture.din(sequence: 2), StockFixture.din(sequence: 3)])
                #expect(answer.decision.rejected.contains { $0.reason == .reserved && $0.exampleDIN == StockFixture.din(sequence: 1) })
            }
        }
    }

    @Test("an index that no longer names the snapshots in force is rebuilt before answering")
    func staleIndexIsRebuilt() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.seed(test)
            let old = try await test.with(.app) { db in try await PostgresInventoryReader(database: db).buildIndex(now: Self.now) }
            // Sydney's next snapshot: its stock is gone.
            let dir = StockFixture.temporaryDirectory()
            try StockFixture.write(csv: "din,product_code,component,abo,rhd,collected_at,expires_at,site_id,status,attributes\n",
                                   centre: "DCSYD", asOf: Self.now, rowCount: 0, name: "syd2", in: dir)
            try await test.with(.importer) { db in
                let report = try await PostgresInventoryImporter(database: db).importSnapshot(SnapshotSource(csvPath: dir.appendingPathComponent("syd2.csv").path), now: Self.now)
                #expect(report.outcome == .loaded)
            }
            try await test.with(.app) { db in
                let engine = DecisionEngine(database: db, planner: try Self.planner(), index: old, logger: db.logger, databaseDeadline: .seconds(30))
                let answer = try await engine.decide(Self.request("r-3"), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(answer.decision.indexVersion != old.version)
                #expect(answer.decision.chosen.allSatisfy { $0.centreID == "DCNEW" })
                #expect(answer.decision.outcome == .fulfilled)
            }
        }
    }

    @Test("more units than exist: a partial answer that says so")
    func partial() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.seed(test)
            try await test.with(.app) { db in
                let engine = DecisionEngine(database: db, planner: try Self.planner(), index: nil, logger: db.logger, databaseDeadline: .seconds(30))
                let answer = try await engine.decide(Self.request("r-4", quantity: 10), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(answer.decision.outcome == .partial)
                #expect(answer.decision.chosen.count == 6)
                #expect(answer.decision.splitAcrossCentres)
            }
        }
    }

    @Test("a database that cannot be reached gives unable_to_verify, never an empty answer")
    func databaseDownIsUnableToVerify() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let config = DatabaseConfiguration(endpoint: .socket(path: "/nonexistent/.s.PGSQL.1"), username: "bloodmatch_app",
                                           database: "bloodmatch", connectTimeout: .seconds(1))
        let database = Database(configuration: config, logger: logger)
        let answer = try await withThrowingTaskGroup(of: EngineAnswer?.self) { group in
            group.addTask { await database.run(); return nil }
            defer { group.cancelAll() }
            let engine = DecisionEngine(database: database, planner: try Self.planner(), index: nil, logger: logger)
            return try await withDeadline(.seconds(20)) {
                try await engine.decide(Self.request("r-5"), requestedBy: "operator:test", traceID: nil, now: Self.now)
            }
        }
        #expect(answer.decision.outcome == .unableToVerify)
        #expect(answer.decision.chosen.isEmpty)
        #expect(!answer.recorded)
        #expect(answer.decision.summary.contains("manual review required"))
    }
}

@Suite("Index refresh on import notifications")
struct IndexRefresherTests {
    @Test("an import that lands is picked up by LISTEN/NOTIFY and the engine's index is replaced")
    func reloadsWhenImportsLand() async throws {
        try await TestDatabase.withFresh { test in
            try await DecisionEngineTests.seed(test)
            try await test.with(.app) { db in
                let engine = DecisionEngine(database: db, planner: try DecisionEngineTests.planner(), index: nil, logger: db.logger)
                var refresher = IndexRefresher(database: db, engine: engine)
                refresher.debounce = .milliseconds(50)
                let task = Task { await refresher.run() }
                defer { task.cancel() }
                // The first build happens on start.
                let first = try await Self.waitForIndex(engine) { _ in true }
                let dir = StockFixture.temporaryDirectory()
                try StockFixture.write(csv: "din,product_code,component,abo,rhd,collected_at,expires_at,site_id,status,attributes\n",
                                       centre: "DCNEW", asOf: DecisionEngineTests.now, rowCount: 0, name: "new2", in: dir)
                try await test.with(.importer) { importerDB in
                    let report = try await PostgresInventoryImporter(database: importerDB)
                        .importSnapshot(SnapshotSource(csvPath: dir.appendingPathComponent("new2.csv").path), now: DecisionEngineTests.now)
                    #expect(report.outcome == .loaded)
                }
                let second = try await Self.waitForIndex(engine) { $0.version != first.version }
                #expect(second.unitCount == first.unitCount - 3)
            }
        }
    }

    static func waitForIndex(_ engine: DecisionEngine, until condition: @Sendable (InventoryIndex) -> Bool) async throws -> InventoryIndex {
        for _ in 0..<200 {
            if let index = await engine.currentIndex, condition(index) { return index }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw DeadlineExceededError(deadline: .seconds(10))
    }
}

extension DecisionEngineTests {
    @Test("a host clock far from the database's makes the answer unable to verify, recorded with the reason")
    func clockSkewFailsSafe() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.seed(test)
            try await test.with(.app) { db in
                let fast = DecisionEngine(database: db, planner: try Self.planner(), index: nil, logger: db.logger,
                                          clock: { Date().addingTimeInterval(120) })
                let answer = try await fast.decide(Self.request("skew-1"), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(answer.decision.outcome == .unableToVerify)
                #expect(answer.recorded)
                #expect(answer.decision.unableToVerifyReason?.contains("clock") == true)
                let skew = try #require(await fast.lastClockSkew)
                #expect(abs(skew + 120) < 5)
                // Within the limit, the same engine type answers normally.
                // A deadline for a loaded test machine: this test is about the clock, the deadline's
                // own fail-safe answer has its tests.
                let fine = DecisionEngine(database: db, planner: try Self.planner(), index: nil, logger: db.logger,
                                          databaseDeadline: .seconds(60), clock: { Date().addingTimeInterval(1) })
                let normal = try await fine.decide(Self.request("skew-2"), requestedBy: "operator:test", traceID: nil, now: Self.now).decision
                #expect(normal.outcome == .fulfilled, "\(normal.summary)")
            }
        }
    }
}

extension DecisionEngineTests {
    @Test("an unable-to-verify answer is not final for its request id: a retry is evaluated again, names it, and is then final")
    func unverifiedRetryIsEvaluatedAgain() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.seed(test)
            try await test.with(.app) { db in
                let skewed = DecisionEngine(database: db, planner: try Self.planner(), index: nil, logger: db.logger,
                                            databaseDeadline: .seconds(60), clock: { Date().addingTimeInterval(120) })
                let fine = DecisionEngine(database: db, planner: try Self.planner(), index: nil, logger: db.logger,
                                          databaseDeadline: .seconds(60), clock: { Date().addingTimeInterval(1) })
                let first = try await skewed.decide(Self.request("retry-1"), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(first.decision.outcome == .unableToVerify && first.recorded && first.isNew)
                // The same key again while the fault lasts: a second attempt is recorded, not the first replayed.
                let second = try await skewed.decide(Self.request("retry-1"), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(second.decision.outcome == .unableToVerify && second.isNew)
                #expect(second.decision.decisionID != first.decision.decisionID)
                #expect(second.retryOf == first.decision.decisionID)
                // After the fault: evaluated again, it chooses units and names the last unverified attempt.
                let third = try await fine.decide(Self.request("retry-1"), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(third.decision.outcome == .fulfilled, "\(third.decision.summary)")
                #expect(third.isNew)
                #expect(third.retryOf == second.decision.decisionID)
                // That decision is final: a retry returns it, on a good clock or a bad one.
                let replay = try await fine.decide(Self.request("retry-1"), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(!replay.isNew && replay.decision == third.decision)
                let replayDuringFault = try await skewed.decide(Self.request("retry-1"), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(!replayDuringFault.isNew && replayDuringFault.decision == third.decision)
                // Looking the request id up gives the final decision; every attempt stays recorded.
                let store = PostgresDecisionStore(database: db)
                #expect(try await store.find(requestID: "retry-1")?.decisionID == third.decision.decisionID)
                #expect(try await store.find(decisionID: third.decision.decisionID)?.retryOf == second.decision.decisionID)
                let rows = try await db.client.query(
                    "SELECT outcome, count(*)::int FROM bm.decisions WHERE request_id = 'retry-1' GROUP BY outcome ORDER BY outcome",
                    logger: db.logger).collect().map { try $0.decode((String, Int).self) }
                #expect(rows.map(\.0) == ["fulfilled", "unable_to_verify"] && rows.map(\.1) == [1, 2])
                let payload = try await db.client.query(
                    "SELECT payload->>'retry_of' FROM bm.event_log WHERE action = 'decision.made' AND subject = \("decision:" + third.decision.decisionID.uuidString.lowercased())",
                    logger: db.logger).collect().map { try $0.decode(String?.self) }
                #expect(payload == [second.decision.decisionID.uuidString.lowercased()])
            }
        }
    }
}

extension DecisionEngineTests {
    @Test("the availability guard fails safe on the same clock skew: 503 unable to verify naming the clock, not an index")
    func dataGuardFailsSafeOnClockSkew() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.seed(test)
            try await test.with(.app) { db in
                let fast = DecisionEngine(database: db, planner: try Self.planner(), index: nil, logger: db.logger,
                                          clock: { Date().addingTimeInterval(120) })
                do {
                    _ = try await DataGuard(engine: fast).verifiedIndex(now: Self.now)
                    Issue.record("a host clock 120 s ahead was accepted")
                } catch let error as APIError {
                    #expect(error.status == .serviceUnavailable)
                    #expect(error.code == "unable_to_verify")
                    #expect(error.failSafe?.affected.contains("clock") == true)
                    #expect(error.failSafe?.reason.contains("clock differs from the database's by -12") == true, "\(error.failSafe?.reason ?? "")")
                }
                // Within the limit the same guard gives the index.
                let fine = DecisionEngine(database: db, planner: try Self.planner(), index: nil, logger: db.logger,
                                          clock: { Date().addingTimeInterval(1) })
                let index = try await DataGuard(engine: fine).verifiedIndex(now: Self.now).index
                #expect(index.unitCount == 6)
            }
        }
    }
}

extension DecisionEngineTests {
    @Test("units held since the index was built are never chosen, however many of the nearest are held")
    func manyHeldUnitsAreSkipped() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.seed(test)
            try await test.with(.app) { db in
                let index = try await PostgresInventoryReader(database: db).buildIndex(now: Self.now)
                let store = PostgresReservationStore(database: db)
                // Five of the six O-negative units, one hold each, nearest first.
                for (n, seq) in [1, 2, 3, 11, 12].enumerated() {
                    let held = try await store.reserve(ReservationRequest(
                        idempotencyKey: "h\(n)", source: .manual, hospital: "HWOL", reservedBy: "test",
                        units: [StockFixture.key(StockFixture.din(sequence: seq))], holdSeconds: 3600))
                    guard case .reserved = held else { Issue.record("unit \(seq) was not held"); return }
                }
                let engine = DecisionEngine(database: db, planner: try Self.planner(), index: index, logger: db.logger,
                                            databaseDeadline: .seconds(30))
                let answer = try await engine.decide(Self.request("held-1", quantity: 1), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(answer.decision.outcome == .fulfilled)
                #expect(answer.decision.chosen.map(\.din) == [StockFixture.din(sequence: 13)])
                let none = try await engine.decide(Self.request("held-2", quantity: 2), requestedBy: "operator:test", traceID: nil, now: Self.now)
                #expect(none.decision.outcome == .partial)
                #expect(none.decision.chosen.map(\.din) == [StockFixture.din(sequence: 13)])
            }
        }
    }
}

extension DecisionEngineTests {
    /// A check whose query never returns (its server process stopped, as behind a frozen primary)
    /// is abandoned after `abandonAfter`; the next check runs on another pooled connection and
    /// the guard answers again, instead of "unable to verify" until TCP gives up.
    @Test("a hung index check is abandoned and replaced once the database answers again")
    func hungCheckIsReplaced() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.seed(test)
            try await test.with(.app) { db in
                let engine = DecisionEngine(database: db, planner: try Self.planner(), index: nil, logger: db.logger)
                // abandonAfter is long enough that the steps before the second check (lock, find
                // the backend, stop it) end inside it even on a loaded machine: with 2 s, one CI
                // run took longer, the check was replaced early and answered.
                let abandonAfter = Duration.seconds(10)
                let guardian = DataGuard(engine: engine, interval: .milliseconds(1), deadline: .milliseconds(500),
                                         abandonAfter: abandonAfter)
                let checkStarted = ContinuousClock.now
                let stopped: Int32? = try await test.with(.owner) { owner in
                    try await owner.client.withTransaction(logger: owner.logger) { conn -> Int32? in
                        try await conn.query("LOCK TABLE bm.centre_status IN ACCESS EXCLUSIVE MODE", logger: owner.logger)
                        await #expect(throws: APIError.self) { _ = try await guardian.verifiedIndex(now: Self.now) }
                        // The check's backend waits on the lock: stop it, so it never answers.
                        // (pg_stat_activity shows other roles' wait events only to a superuser.)
                        return try await Database.with(test.admin, logger: test.logger) { admin -> Int32? in
                            let rows = try await admin.client.query("""
                                SELECT pid FROM pg_stat_activity
                                WHERE datname = \(test.name) AND wait_event_type = 'Lock'
                                """, logger: admin.logger)
                            var found: Int32?
                            for try await pid in rows.decode(Int32.self) where kill(pid_t(pid), SIGSTOP) == 0 { found = pid }
                            return found
                        }
                    }
                }
                let pid = try #require(stopped, "the blocked check's backend was not found")
                defer { kill(pid_t(pid), SIGCONT) }
                // The lock is gone, but the stopped backend never answers: within abandonAfter the
                // guard still waits for it and fails safe.
                try #require(ContinuousClock.now - checkStarted < abandonAfter, "the machine took longer than abandonAfter to stop the backend")
                await #expect(throws: APIError.self) { _ = try await guardian.verifiedIndex(now: Self.now) }
                try await Task.sleep(until: checkStarted + abandonAfter + .milliseconds(200))
                // The replacement check runs on another connection; on a loaded machine it may
                // take longer than the 500 ms deadline, so later calls wait for the same check.
                var index: InventoryIndex?
                for _ in 0..<40 where index == nil {
                    do {
                        index = try await guardian.verifiedIndex(now: Self.now).index
                    } catch is APIError {
                        try await Task.sleep(for: .milliseconds(250))
                    }
                }
                #expect(index?.unitCount == 6)
                kill(pid_t(pid), SIGCONT)
                try await Database.with(test.admin, logger: test.logger) { admin in
                    try await admin.client.query("SELECT pg_terminate_backend(\(pid))", logger: admin.logger)
                }
            }
        }
    }
}

extension DecisionEngineTests {
    /// The next check starts behind the answer once a verification is half its interval old, so
    /// under steady traffic no request waits for the database's round trips.
    @Test("the index check runs ahead of need: a request past the first verification's interval is answered while the database is locked")
    func checkAhead() async throws {
        try await TestDatabase.withFresh { test in
            try await Self.seed(test)
            try await test.with(.app) { db in
                let engine = DecisionEngine(database: db, planner: try Self.planner(), index: nil, logger: db.logger)
                // Generous times: the suite runs beside others on two cores (a 500 ms deadline and a
                // 3 s interval failed once there, the first index build taking longer; so did a 6 s
                // interval counted from before the first build).
                let interval = Duration.seconds(8)
                let guardian = DataGuard(engine: engine, interval: interval, deadline: .seconds(5))
                let first = try await guardian.verifiedIndex(now: Self.now)
                // Times count from the first verification's end, not from the request: under load
                // the first index build alone took seconds (its age runs from when it was made).
                let start = ContinuousClock.now
                try await Task.sleep(until: start + interval / 2 + .milliseconds(100))
                // Past half the interval: the cached answer, and a check started behind it.
                #expect(try await guardian.verifiedIndex(now: Self.now).verifiedAt == first.verifiedAt)
                var renewed = first
                while renewed.verifiedAt == first.verifiedAt && ContinuousClock.now < start + interval - .milliseconds(200) {
                    try await Task.sleep(for: .milliseconds(50))
                    renewed = try await guardian.verifiedIndex(now: Self.now)
                }
                try #require(renewed.verifiedAt > first.verifiedAt, "no check ran ahead before the first verification's interval ended")
                let renewedAt = renewed.verifiedAt
                // With the table locked, a check would wait past the deadline; past the first
                // verification's interval the renewed one still answers at once.
                try await test.with(.owner) { owner in
                    try await owner.client.withTransaction(logger: owner.logger) { conn in
                        try await conn.query("LOCK TABLE bm.centre_status IN ACCESS EXCLUSIVE MODE", logger: owner.logger)
                        try await Task.sleep(until: start + interval + .milliseconds(200))
                        let answer = try await guardian.verifiedIndex(now: Self.now)
                        #expect(answer.verifiedAt == renewedAt && answer.index.unitCount == 6)
                    }
                }
            }
        }
    }
}
