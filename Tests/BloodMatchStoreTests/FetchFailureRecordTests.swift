import BloodMatchCore
import BloodMatchStore
import Foundation
import PostgresNIO
import Testing

/// A feed that could not be fetched (`import --url`) is an import run like any other: recorded
/// with its URL and reason under the outcome `fetch_failed`, with an event, attributed to its
/// centre when that can be told, and counted by the health reader's failed-import counts.
@Suite("Feed fetch failures in bm.import_runs")
struct FetchFailureRecordTests {
    static let feed = "https://feeds.example/dca/latest.json"

    /// One row of `bm.import_runs`.
    struct Run: Equatable {
        var source: String
        var fileName: String
        var centre: String?
        var outcome: String
        var message: String
    }

    static func run(_ test: TestDatabase, _ runID: Int64) async throws -> Run? {
        try await test.with(.owner) { db in
            var found: Run?
            for try await (source, file, centre, outcome, message) in try await db.client.query(
                "SELECT source, file_name, centre, outcome, message FROM bm.import_runs WHERE run_id = \(runID)", logger: db.logger
            ).decode((String, String, String?, String, String).self) {
                found = Run(source: source, fileName: file, centre: centre, outcome: outcome, message: message)
            }
            return found
        }
    }

    @Test("recorded with URL and reason; the centre from the control record, else from the feed's earlier runs, else unknown")
    func recordedAndAttributed() async throws {
        try await InventoryImportTests.withSites { test, directory in
            try await test.with(.importer) { db in
                let importer = PostgresInventoryImporter(database: db)
                // No control record arrived and the feed has never loaded: the centre is not known.
                let first = try await importer.recordFetchFailure(
                    source: Self.feed, fileName: "latest.json", centre: nil,
                    reason: "feed \(Self.feed) refused: unknown CA: the server's certificate is issued by 'CN=Other'", durationMs: 12)
                #expect(first.outcome == .fetchFailed)
                #expect(first.centre == nil)
                #expect(try await Self.run(test, first.runID) == Run(
                    source: Self.feed, fileName: "latest.json", centre: nil, outcome: "fetch_failed",
                    message: "feed \(Self.feed) refused: unknown CA: the server's certificate is issued by 'CN=Other'"))

                // The feed loads once from the same address; a later failure before its control record is the centre's.
                var source = try InventoryImportTests.snapshot(try InventoryImportTests.units(1...3, at: "DCA"), centre: "DCA",
                                                               asOf: InventoryImportTests.now, name: "a", in: directory)
                source.origin = Self.feed
                #expect(try await importer.importSnapshot(source, now: InventoryImportTests.now).outcome == .loaded)
                let second = try await importer.recordFetchFailure(
                    source: Self.feed, fileName: "latest.json", centre: nil, reason: "feed \(Self.feed) unreachable: HTTP 503 (after 3 tries)", durationMs: 1500)
                #expect(second.centre == "DCA")
                #expect(try await Self.run(test, second.runID)?.centre == "DCA")

                // The control record arrived and named its centre: that centre, whatever the address.
                let third = try await importer.recordFetchFailure(
                    source: "https://feeds.example/other/b.csv", fileName: "b.csv", centre: "DCB",
                    reason: "feed https://feeds.example/other/b.csv unreachable: no complete answer within 120 s", durationMs: 120_000)
                #expect(try await Self.run(test, third.runID)?.centre == "DCB")
            }
            // Each run has its event.
            let events = try await test.with(.owner) { db in
                var n = 0
                for try await (count,) in try await db.client.query(
                    "SELECT count(*)::int FROM bm.event_log WHERE action = 'import.fetch_failed'", logger: db.logger).decode((Int,).self) { n = count }
                return n
            }
            #expect(events == 3)

            // Counted as failed imports: DCA (snapshot in force) per centre, DCB (none yet) and the
            // unknown one among the centres without a snapshot.
            let health = try await test.with(.app) { db in try await PostgresHealthReader(database: db).read() }
            #expect(health.centres.first { $0.centreID == "DCA" }?.failedRunsLastHour == 1)
            #expect(health.failedRunsLastHourWithoutSnapshot == ["DCB": 1, DomainHealth.unknownCentre: 1])
        }
    }

    @Test("a centre without a snapshot and the unknown centre are counted at 0 when nothing failed")
    func zeroWhenNothingFailed() async throws {
        try await InventoryImportTests.withSites { test, _ in
            let health = try await test.with(.app) { db in try await PostgresHealthReader(database: db).read() }
            #expect(health.failedRunsLastHourWithoutSnapshot == ["DCA": 0, "DCB": 0, DomainHealth.unknownCentre: 0])
        }
    }
}
