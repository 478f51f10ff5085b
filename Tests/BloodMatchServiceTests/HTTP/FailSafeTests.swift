import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import PostgresNIO
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
            // Once access records cannot be written, hospitals' requests are refused; probes and
            // scrapes read no hospital's data and still answer, so the monitoring sees the outage.
            // (Up to 30 s: a failed write is declared after its own deadline, longer on a loaded machine.)
            var refusing = false
            for _ in 0..<300 {
                if h.services.recorder.refusal != nil { refusing = true; break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(refusing, "the access records never failed while the database was stopped")
            let refused = try await client.send(Self.availability, token: h.token)
            Self.expectUnableToVerify(refused, "\(refused.text)")
            #expect((refused.error["affected"] as? [String]) == ["access records"], "\(refused.text)")
            let health = try await client.send("/health")
            #expect(health.status == .ok, "\(health.text)")
            let scrape = try await client.send("/metrics")
            #expect(scrape.status == .ok, "\(scrape.text)")
            #expect(scrape.text.contains(#"bloodmatch_unable_to_verify_total{route="/v1/availability"}"#))
            let notReady = try await client.send("/ready")
            Self.expectUnableToVerify(notReady, "\(notReady.text)")

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
