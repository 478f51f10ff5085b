import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import Testing

/// When the data cannot be verified the API says so — 503 "unable to verify — manual review
/// required", what is affected and since when — within its deadline, and never an empty list.
@Suite("Hospital HTTP API fails safe")
struct FailSafeTests {
    static let availability = "/v1/availability?component=RBC&abo=O&rhd=NEG"

    static func expectUnableToVerify(_ reply: Reply, _ comment: Comment? = nil) {
        #expect(reply.status == .serviceUnavailable, comment)
        #expect(reply.errorCode == "unable_to_verify", comment)
        #expect(reply.error["message"] as? String == "unable to verify — manual review required")
        #expect(!((reply.error["affected"] as? [String]) ?? []).isEmpty)
        #expect(reply.error["since"] is String)
        #expect(reply.object["centres"] == nil)
    }

    @Test("database stopped mid-run: 503 within the deadline, then answers again once it is back")
    func databaseStoppedMidRun() async throws {
        try await APITestHarness.run { client, h in
            let ok = try await client.send(Self.availability, token: h.token)
            #expect(ok.status == .ok)
            // Stop this database for the application: refuse new connections and end the open ones.
            let name = h.test.name
            try await Database.with(h.test.admin, logger: h.test.logger) { admin in
                try await admin.client.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(name) ALLOW_CONNECTIONS false"), logger: admin.logger)
                try await admin.client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(name)", logger: admin.logger)
            }
            let started = ContinuousClock.now
            let down = try await client.send(Self.availability, token: h.token)
            #expect(ContinuousClock.now - started < .seconds(7))
            Self.expectUnableToVerify(down, "\(down.text)")
            let match = try await client.send("/v1/matches", .post, token: h.token, body: HTTPAPITests.matchBody)
            Self.expectUnableToVerify(match, "\(match.text)")
            let ready = try await client.send("/ready")
            Self.expectUnableToVerify(ready, "\(ready.text)")

            try await Database.with(h.test.admin, logger: h.test.logger) { admin in
                try await admin.client.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(name) ALLOW_CONNECTIONS true"), logger: admin.logger)
            }
            // Back: queued access records are written, then requests are accepted again.
            var recovered: Reply?
            for _ in 0..<40 {
                let reply = try await client.send(Self.availability, token: h.token)
                if reply.status == .ok { recovered = reply; break }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(recovered != nil, "the API did not recover after the database came back")
        }
    }

    @Test("database paused (a lock holds the snapshots table): 503 within the deadline, not a hang")
    func databasePaused() async throws {
        try await APITestHarness.run(configure: { $0.requestDeadline = .seconds(1) }) { client, h in
            #expect(try await client.send(Self.availability, token: h.token).status == .ok)
            try await h.test.with(.owner) { db in
                try await db.client.withTransaction(logger: db.logger) { conn in
                    try await conn.query("LOCK TABLE bm.centre_status IN ACCESS EXCLUSIVE MODE", logger: db.logger)
                    let started = ContinuousClock.now
                    let reply = try await client.send(Self.availability, token: h.token)
                    #expect(ContinuousClock.now - started < .seconds(3))
                    Self.expectUnableToVerify(reply, "\(reply.text)")
                    #expect((reply.error["affected"] as? [String])?.contains("inventory") == true)
                }
            }
            #expect(try await client.send(Self.availability, token: h.token).status == .ok)
        }
    }

    @Test("the index cannot be brought up to date: 503 naming the index, not the old counts")
    func indexStale() async throws {
        try await APITestHarness.run { client, h in
            #expect(try await client.send(Self.availability, token: h.token).status == .ok)
            // The application role loses read access to the units: the index in memory is now
            // out of date (a new snapshot lands) and cannot be rebuilt.
            let now = Date()
            let dir = StockFixture.temporaryDirectory()
            let units = try (41...42).map {
                try StockFixture.unit(StockFixture.din(sequence: $0), .redCells, .oNegative, at: "DCSYD",
                                      collected: now.addingTimeInterval(-86_400), expires: now.addingTimeInterval(20 * 86_400))
            }
            try StockFixture.write(units, centre: "DCSYD", asOf: now.addingTimeInterval(-5), name: "syd3", in: dir)
            try await h.test.with(.importer) { db in
                _ = try await PostgresInventoryImporter(database: db).importSnapshot(
                    SnapshotSource(csvPath: dir.appendingPathComponent("syd3.csv").path), now: now)
            }
            try await h.test.with(.owner) { db in
                try await db.client.query("REVOKE SELECT ON bm.inventory_units FROM bloodmatch_app", logger: db.logger)
            }
            let reply = try await client.send(Self.availability, token: h.token)
            Self.expectUnableToVerify(reply, "\(reply.text)")
            #expect((reply.error["affected"] as? [String])?.contains("index") == true)
            try await h.test.with(.owner) { db in
                try await db.client.query("GRANT SELECT ON bm.inventory_units TO bloodmatch_app", logger: db.logger)
            }
            let back = try await client.send(Self.availability, token: h.token)
            #expect(back.status == .ok)
            let sydney = (back.object["centres"] as? [[String: Any]])?.first { $0["centre_id"] as? String == "DCSYD" }
            #expect((sydney?["units_by_group"] as? [String: Int]) == ["O-": 2])
        }
    }
}

/// The access recorder on its own: batches, refusal when it cannot write, flush at shutdown.
@Suite("Access recorder")
struct AccessRecorderTests {
    actor Sink {
        var batches: [[AccessRecord]] = []
        var failing = false
        func write(_ records: [AccessRecord]) throws {
            if failing { throw DatabaseUnavailableError(target: "test", underlying: "down") }
            batches.append(records)
        }
        func setFailing(_ value: Bool) { failing = value }
        var count: Int { batches.reduce(0) { $0 + $1.count } }
    }

    static func record(_ i: Int) -> AccessRecord {
        AccessRecord(actor: "H", subject: "/health", payloadJSON: "{}", requestID: "r\(i)", traceID: nil, clientAddress: nil)
    }

    @Test("records are written in batches; a failed write keeps them and refuses new requests until it succeeds")
    func failureRefusesNewRequests() async throws {
        let sink = Sink()
        let recorder = AccessRecorder(writer: { try await sink.write($0) }, logger: Logger(label: "test"), capacity: 10, batchSize: 4)
        for i in 0..<6 { recorder.commit(try #require(recorder.reserve()), Self.record(i)) }
        await sink.setFailing(true)
        #expect(await recorder.flush() == false)
        #expect(recorder.pendingCount == 6)
        #expect(recorder.reserve() == nil)
        #expect(recorder.refusal != nil)
        await sink.setFailing(false)
        #expect(await recorder.flush())
        #expect(await sink.batches.map(\.count) == [4, 2])
        #expect(recorder.reserve() != nil)
    }

    @Test("a write that never answers counts as failed after its deadline; the records are written again, at least once",
          .timeLimit(.minutes(1)))
    func hungWrite() async throws {
        // The writer hangs, ignoring cancellation, as a query on a connection to a frozen server can.
        let hanging = Mutex(true)
        let written = Mutex<[String]>([])
        let recorder = AccessRecorder(writer: { batch in
            while hanging.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(20)) }
            written.withLock { $0.append(contentsOf: batch.map(\.requestID)) }
        }, logger: Logger(label: "test"), capacity: 10, writeDeadline: .milliseconds(300))
        for i in 0..<6 { recorder.commit(try #require(recorder.reserve()), Self.record(i)) }
        // It returns at all (the time limit fails the test otherwise): the write is given up on.
        #expect(await recorder.flush() == false)
        #expect(recorder.pendingCount == 6)
        #expect(recorder.reserve() == nil)
        #expect(recorder.refusal?.reason.contains("no answer from the database") == true)
        hanging.withLock { $0 = false }
        #expect(await recorder.flush())
        #expect(recorder.pendingCount == 0)
        #expect(recorder.reserve() != nil)
        #expect(Set(written.withLock { $0 }) == Set((0..<6).map { "r\($0)" }))
    }

    @Test("a full queue refuses new requests rather than dropping records")
    func fullQueue() async throws {
        let sink = Sink()
        let recorder = AccessRecorder(writer: { try await sink.write($0) }, logger: Logger(label: "test"), capacity: 3)
        for i in 0..<3 { recorder.commit(try #require(recorder.reserve()), Self.record(i)) }
        #expect(recorder.reserve() == nil)
        #expect(await recorder.flush())
        #expect(await sink.count == 3)
    }

    @Test("graceful shutdown writes every accepted record")
    func flushOnShutdown() async throws {
        let sink = Sink()
        let recorder = AccessRecorder(writer: { try await sink.write($0) }, logger: Logger(label: "test"), interval: .seconds(60))
        for i in 0..<25 { recorder.commit(try #require(recorder.reserve()), Self.record(i)) }
        let group = ServiceGroup(configuration: .init(services: [recorder], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(100))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(await sink.count == 25)
    }
}
