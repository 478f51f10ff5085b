import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The hospital API end to end against PostgreSQL: routes, authentication, idempotency,
/// ownership, access records and metrics.
@Suite("Hospital HTTP API")
struct HTTPAPITests {
    static let matchBody = #"{"component":"RBC","recipient":{"abo":"O","rhd":"NEG","sex":"female","age":30},"quantity":2,"urgency":"urgent"}"#

    @Test("health answers without a key; ready reports the index it verified")
    func healthAndReady() async throws {
        try await APITestHarness.run { client, _ in
            let health = try await client.send("/health")
            #expect(health.status == .ok)
            #expect(health.object["status"] as? String == "ok")
            let ready = try await client.send("/ready")
            #expect(ready.status == .ok, "\(ready.text)")
            #expect(ready.object["units_indexed"] as? Int == 7)
        }
    }

    @Test("availability lists compatible stock per centre, nearest first, with data age")
    func availability() async throws {
        try await APITestHarness.run { client, h in
            let reply = try await client.send("/v1/availability?component=RBC&abo=O&rhd=NEG", token: h.token)
            #expect(reply.status == .ok, "\(reply.text)")
            let centres = reply.object["centres"] as? [[String: Any]] ?? []
            #expect(centres.map { $0["centre_id"] as? String } == ["DCSYD", "DCNEW"])
            #expect((centres.first?["units_by_group"] as? [String: Int]) == ["O-": 3])
            #expect(centres.first?["stale"] as? Bool == false)
            #expect(reply.object["hospital_id"] as? String == "HWOL")
            // A+ recipients may have A+ and O units; an irradiated requirement leaves only the A+ unit.
            let irradiated = try await client.send("/v1/availability?component=RBC&abo=A&rhd=POS&require=IRRADIATED", token: h.token)
            let only = irradiated.object["centres"] as? [[String: Any]] ?? []
            #expect(only.count == 1)
            #expect((only.first?["units_by_group"] as? [String: Int]) == ["A+": 1])
        }
    }

    @Test("a centre that has never delivered a snapshot is listed as no data by availability and named as not checked by a match")
    func centreWithoutDataIsNeverLeftOut() async throws {
        try await APITestHarness.run { client, h in
            // A distribution centre at the hospital's own coordinates, with no snapshot at all.
            try await h.test.with(.importer) { db in
                _ = try await PostgresSiteStore(database: db).upsert([
                    Site(id: "DCNODATA", name: "No data", kind: .distributionCentre, location: GeoPoint(latitude: -34.42, longitude: 150.89), region: "AU-02"),
                ], source: "test")
            }
            var listed: [[String: Any]] = []
            for _ in 0..<20 {
                let reply = try await client.send("/v1/availability?component=RBC&abo=O&rhd=NEG", token: h.token)
                #expect(reply.status == .ok, "\(reply.text)")
                listed = reply.object["centres_without_data"] as? [[String: Any]] ?? []
                if !listed.isEmpty { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(listed.map { $0["centre_id"] as? String } == ["DCNODATA"])
            #expect(listed.first?["warning"] as? String == "no data — stock unknown, confirm by phone")
            #expect(listed.first?["distance_km"] as? Double == 0)
            let match = try await client.send("/v1/matches", .post, token: h.token, body: Self.matchBody)
            #expect(match.status == .created, "\(match.text)")
            let notChecked = match.object["centres_not_checked"] as? [[String: Any]] ?? []
            #expect(notChecked.map { $0["centre_id"] as? String } == ["DCNODATA"])
            #expect((match.object["summary"] as? String)?.contains("could not be checked (no data — stock unknown, confirm by phone): DCNODATA (0 km)") == true,
                    "\(match.object["summary"] ?? "")")
            #expect((match.object["warnings"] as? [String])?.contains { $0.contains("could not be checked") } == true)
        }
    }

    @Test("a match is recorded; the same Idempotency-Key returns it; another body with that key is refused")
    func matchIdempotency() async throws {
        try await APITestHarness.run { client, h in
            let first = try await client.send("/v1/matches", .post, token: h.token, headers: [.init("Idempotency-Key")!: "order-1"], body: Self.matchBody)
            #expect(first.status == .created, "\(first.text)")
            #expect(first.object["outcome"] as? String == "fulfilled")
            #expect((first.object["units"] as? [[String: Any]])?.count == 2)
            #expect(first.object["idempotency_key"] as? String == "order-1")
            let id = try #require(first.object["decision_id"] as? String)
            #expect(first.headers[.location] == "/v1/matches/\(id)")
            let again = try await client.send("/v1/matches", .post, token: h.token, headers: [.init("Idempotency-Key")!: "order-1"], body: Self.matchBody)
            #expect(again.status == .ok)
            #expect(again.object["decision_id"] as? String == id)
            #expect(again.headers[.init("Idempotent-Replayed")!] == "true")
            let different = Self.matchBody.replacingOccurrences(of: #""quantity":2"#, with: #""quantity":3"#)
            let conflict = try await client.send("/v1/matches", .post, token: h.token, headers: [.init("Idempotency-Key")!: "order-1"], body: different)
            #expect(conflict.status == .conflict)
            #expect(conflict.errorCode == "idempotency_key_reused")
            // The same key from another hospital is another request, not a replay.
            let other = try await client.send("/v1/matches", .post, token: h.otherToken, headers: [.init("Idempotency-Key")!: "order-1"], body: Self.matchBody)
            #expect(other.status == .created)
            #expect(other.object["decision_id"] as? String != id)

            let read = try await client.send("/v1/matches/\(id)", token: h.token)
            #expect(read.status == .ok)
            #expect(read.object["decision_id"] as? String == id)
            let forbidden = try await client.send("/v1/matches/\(id)", token: h.otherToken)
            #expect(forbidden.status == .forbidden)
            #expect(forbidden.errorCode == "forbidden")
            let missing = try await client.send("/v1/matches/\(UUID().uuidString.lowercased())", token: h.token)
            #expect(missing.status == .notFound)
            #expect(missing.errorCode == "not_found")
        }
    }

    @Test("every request is recorded in bm.event_log with hospital, key, route, status, latency and request id")
    func accessRecords() async throws {
        try await APITestHarness.run { client, h in
            _ = try await client.send("/v1/availability?component=RBC&abo=O&rhd=NEG", token: h.token, headers: [.init("X-Request-ID")!: "req-42"])
            _ = try await client.send("/v1/availability?component=RBC&abo=O&rhd=NEG", token: "bmk_0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            _ = try await client.send("/health")
            // The unknown key is counted in its minute's record, written here as at shutdown.
            #expect(await h.services.recorder.flush(includingOpenMinutes: true))
            let rows = try await h.test.with(.owner) { db in
                var rows: [(String, String, String, String?)] = []
                for try await row in try await db.client.query("""
                    SELECT actor, subject, payload::text, request_id FROM bm.event_log WHERE action = 'api.request' ORDER BY seq
                    """, logger: db.logger).decode((String, String, String, String?).self) { rows.append(row) }
                return rows
            }
            #expect(rows.count == 3)
            #expect(rows[0].0 == "hospital:HWOL" && rows[0].1 == "/v1/availability" && rows[0].3 == "req-42")
            #expect(rows[0].2.contains(#""status": 200"#) && rows[0].2.contains(#""latency_ms""#) && rows[0].2.contains(#""key_id": ""#))
            #expect(rows[0].2.contains("component=RBC"))
            #expect(rows[1].1 == "/health")
            #expect(rows[2].0 == "anonymous" && rows[2].1 == "/v1/availability")
            #expect(rows[2].2.contains(#""count": 1"#) && rows[2].2.contains(#""reason": "unknown""#)
                    && rows[2].2.contains(#""key_ids": ["0000000000000000"]"#))
        }
    }

    @Test("metrics count requests by route and status, and matches by outcome")
    func metrics() async throws {
        try await APITestHarness.run { client, h in
            _ = try await client.send("/v1/matches", .post, token: h.token, body: Self.matchBody)
            _ = try await client.send("/v1/availability?component=XYZ&abo=O&rhd=NEG", token: h.token)
            let page = try await client.send("/metrics")
            #expect(page.status == .ok)
            #expect(page.text.contains(#"bloodmatch_http_requests_total{route="/v1/matches",method="POST",status="201"} 1"#), "\(page.text)")
            #expect(page.text.contains(#"bloodmatch_http_requests_total{route="/v1/availability",method="GET",status="400"} 1"#))
            #expect(page.text.contains(#"bloodmatch_matches_total{outcome="fulfilled"} 1"#))
            #expect(page.text.contains("bloodmatch_match_duration_seconds_bucket"))
            #expect(page.text.contains("# HELP bloodmatch_http_requests_total HTTP requests answered, by route template, method and status."))
            #expect(DomainMetricsTests.withoutHelp(page.text).isEmpty, "no # HELP: \(DomainMetricsTests.withoutHelp(page.text))")
        }
    }

    @Test("a new snapshot is served at once: the index is checked against the snapshots in force, never served stale")
    func indexOutOfDate() async throws {
        try await APITestHarness.run { client, h in
            let before = try await client.send("/v1/availability?component=RBC&abo=O&rhd=NEG", token: h.token)
            #expect(((before.object["centres"] as? [[String: Any]])?.first?["units_by_group"] as? [String: Int]) == ["O-": 3])
            let now = Date()
            let dir = StockFixture.temporaryDirectory()
            let units = try (21...30).map {
                try StockFixture.unit(StockFixture.din(sequence: $0), .redCells, .oNegative, at: "DCSYD",
                                      collected: now.addingTimeInterval(-86_400), expires: now.addingTimeInterval(20 * 86_400))
            }
            try StockFixture.write(units, centre: "DCSYD", asOf: now.addingTimeInterval(-5), name: "syd2", in: dir)
            try await h.test.with(.importer) { db in
                _ = try await PostgresInventoryImporter(database: db).importSnapshot(
                    SnapshotSource(csvPath: dir.appendingPathComponent("syd2.csv").path), now: now)
            }
            let after = try await client.send("/v1/availability?component=RBC&abo=O&rhd=NEG", token: h.token)
            #expect(((after.object["centres"] as? [[String: Any]])?.first?["units_by_group"] as? [String: Int]) == ["O-": 10])
            #expect(after.object["index_version"] as? String != before.object["index_version"] as? String)
        }
    }

    @Test("the per-hospital rate limit answers 429 with Retry-After")
    func rateLimit() async throws {
        try await APITestHarness.run(configure: { $0.rateLimitPerSecond = 1; $0.rateLimitBurst = 2 }) { client, h in
            var statuses: [Int] = []
            for _ in 0..<4 {
                statuses.append(Int(try await client.send("/v1/availability?component=RBC&abo=O&rhd=NEG", token: h.token).status.code))
            }
            #expect(statuses.prefix(2).allSatisfy { $0 == 200 })
            let limited = try await client.send("/v1/availability?component=RBC&abo=O&rhd=NEG", token: h.token)
            #expect(limited.status == .tooManyRequests)
            #expect(limited.errorCode == "rate_limited")
            #expect(limited.headers[.retryAfter] != nil)
            // Another hospital has its own bucket.
            let other = try await client.send("/v1/availability?component=RBC&abo=O&rhd=NEG", token: h.otherToken)
            #expect(other.status == .ok)
        }
    }

    @Test("the concurrency budget refuses work past its bound at once, with Retry-After")
    func concurrencyBudget() async throws {
        try await APITestHarness.run(configure: { $0.maximumConcurrentRequests = 1; $0.requestDeadline = .seconds(1) }) { client, h in
            // Hold the only slot with a request stuck behind a lock on the snapshots table.
            try await h.test.with(.owner) { db in
                try await db.client.withTransaction(logger: db.logger) { conn in
                    try await conn.query("LOCK TABLE bm.centre_status IN ACCESS EXCLUSIVE MODE", logger: db.logger)
                    async let slow = client.send("/v1/availability?component=RBC&abo=O&rhd=NEG", token: h.token)
                    try await Task.sleep(for: .milliseconds(300))
                    let refused = try await client.send("/v1/availability?component=RBC&abo=O&rhd=NEG", token: h.token)
                    #expect(refused.status == .serviceUnavailable)
                    #expect(refused.errorCode == "overloaded")
                    #expect(refused.headers[.retryAfter] == "1")
                    _ = try await slow
                }
            }
        }
    }
}
