import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import Logging
import Prometheus
import Synchronization
import Testing

/// Failures the on-call engineer must see from the system's own signals: a centre whose feed
/// stopped, an import that rejected rows, a database that went away. Each shows in the metrics
/// (with the centre named) and in a log line.
@Suite("Domain metrics and their log lines")
struct DomainMetricsTests {
    /// Keeps every log line a test produces.
    final class Lines: Sendable {
        let lines = Mutex<[(Logger.Level, String, Logger.Metadata)]>([])
        func logger() -> Logger {
            Logger(label: "test") { _ in Handler(lines: self) }
        }
        struct Handler: LogHandler {
            let lines: Lines
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                lines.lines.withLock { $0.append((event.level, "\(event.message)", event.metadata ?? [:])) }
            }
        }
    }

    static func value(_ page: String, _ series: String) -> Double? {
        for line in page.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// The metric names of `page` whose `# TYPE` line has no `# HELP` line.
    static func withoutHelp(_ page: String) -> [String] {
        let lines = page.split(separator: "\n")
        let typed = lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        let helped = Set(lines.filter { $0.hasPrefix("# HELP ") && $0.split(separator: " ").count > 3 }.map { $0.split(separator: " ")[2] })
        return typed.filter { !helped.contains($0) }.map(String.init)
    }

    @Test("a stale centre, rejected rows and a lost database show in the metrics and the log")
    func failuresAreVisible() async throws {
        try await TestDatabase.withFresh { test in
            let now = Date()
            let sites = [
                Site(id: "DCA", name: "Centre A", kind: .distributionCentre, location: GeoPoint(latitude: -33.87, longitude: 151.21), region: "AU-02"),
                Site(id: "DCB", name: "Centre B", kind: .distributionCentre, location: GeoPoint(latitude: -32.93, longitude: 151.78), region: "AU-02"),
            ]
            let dir = StockFixture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let collected = now.addingTimeInterval(-3 * 86_400), expires = now.addingTimeInterval(30 * 86_400)
            let a = try (1...5).map { try StockFixture.unit(StockFixture.din(sequence: $0), .redCells, .oNegative, at: "DCA", collected: collected, expires: expires) }
            // Centre A's feed stopped two hours ago; centre B's snapshot has one bad row in 151.
            try StockFixture.write(a, centre: "DCA", asOf: now.addingTimeInterval(-7_200), name: "a", in: dir)
            let b = try (100...249).map { try StockFixture.unit(StockFixture.din(sequence: $0), .redCells, BloodGroup(.O, .positive), at: "DCB", collected: collected, expires: expires) }
            var csv = StockFixture.csv(b)
            csv += "\(StockFixture.din(sequence: 999)),E0382V00,RBC,Q,POS,\(StockFixture.timestamp(collected)),\(StockFixture.timestamp(expires)),DCB,AVAILABLE,\n"
            try StockFixture.write(csv: csv, centre: "DCB", asOf: now.addingTimeInterval(-60), rowCount: 151, name: "b", in: dir)
            try await test.with(.importer) { db in
                _ = try await PostgresSiteStore(database: db).upsert(sites, source: "test")
                let importer = PostgresInventoryImporter(database: db)
                #expect(try await importer.importSnapshot(SnapshotSource(csvPath: dir.appendingPathComponent("a.csv").path), now: now).outcome == .loaded)
                #expect(try await importer.importSnapshot(SnapshotSource(csvPath: dir.appendingPathComponent("b.csv").path), now: now).outcome == .loadedWithRejections)
            }
            let lines = Lines()
            let metrics = ServiceMetrics(registry: PrometheusCollectorRegistry())
            try await test.with(.app) { db in
                // What is measured here is content, not speed: the whole run's tests start at once,
                // and on a loaded machine the first queries of a new pool can take over the 5 s default.
                await metrics.collect(database: db, engine: nil, deadline: .seconds(60), logger: lines.logger())
            }
            var page = String(decoding: metrics.render(), as: UTF8.self)
            #expect(Self.value(page, "bloodmatch_database_up") == 1)
            #expect(Self.value(page, "bloodmatch_stale_centres") == 1)
            #expect((Self.value(page, #"bloodmatch_centre_data_age_seconds{centre="DCA"}"#) ?? 0) > 7_000)
            #expect((Self.value(page, #"bloodmatch_centre_data_age_seconds{centre="DCB"}"#) ?? 1e9) < 600)
            #expect(Self.value(page, #"bloodmatch_centre_last_import_rows{centre="DCB",result="rejected"}"#) == 1)
            #expect(Self.value(page, #"bloodmatch_centre_last_import_rows{centre="DCB",result="accepted"}"#) == 150)
            #expect(abs(Self.value(page, "bloodmatch_clock_skew_seconds") ?? 99) < 2)
            // Every metric says what it measures.
            #expect(page.contains("# HELP bloodmatch_centres_without_data Distribution centres that have never delivered a snapshot"))
            #expect(Self.withoutHelp(page).isEmpty, "no # HELP: \(Self.withoutHelp(page))")
            #expect(page.contains("# TYPE bloodmatch_database_up gauge"))
            let stale = lines.lines.withLock { $0.first { $0.1 == "stale centres" } }
            #expect(stale?.0 == .warning)
            #expect(stale?.2["centres"] == "DCA")

            // The database goes away: the next collection says so, and so does the log.
            let gone = DatabaseConfiguration(endpoint: .socket(path: "/nonexistent/.s.PGSQL.1"), username: "bloodmatch_app",
                                             database: test.name, connectTimeout: .seconds(1))
            let database = Database(configuration: gone, logger: test.logger)
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await database.run() }
                await metrics.collect(database: database, engine: nil, deadline: .seconds(2), logger: lines.logger())
                group.cancelAll()
            }
            page = String(decoding: metrics.render(), as: UTF8.self)
            #expect(Self.value(page, "bloodmatch_database_up") == 0)
            #expect(lines.lines.withLock { $0.contains { $0.0 == .error && $0.1 == "database unavailable for health metrics" } })
        }
    }

    /// The line of `page` for `metric` whose labels include every one of `labels`.
    static func value(_ page: String, _ metric: String, labels: [String]) -> Double? {
        for line in page.split(separator: "\n") where line.hasPrefix(metric + "{") || line.hasPrefix(metric + " ") {
            let head = line.prefix { $0 != " " }
            guard labels.allSatisfy({ head.contains($0) }) else { continue }
            return line.split(separator: " ").last.flatMap { Double($0) }
        }
        return nil
    }

    @Test("pool usage and errors: calls counted and timed per operation, refused queries and a lost database counted apart")
    func poolMetrics() async throws {
        try await TestDatabase.withFresh { test in
            let registry = PrometheusCollectorRegistry()
            let factory = HelpfulMetricsFactory(registry: registry, durationBuckets: ServiceMetrics.durationBuckets)
            var config = test.configuration(role: .app)
            config.maximumConnections = 3
            let database = Database(configuration: config, logger: test.logger, metricsFactory: factory)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.run() }
                defer { group.cancelAll() }
                try await database.ping()
                _ = try await PostgresSiteStore(database: database).all()
                await #expect(throws: (any Error).self) {
                    try await database.observe("test.refused") {
                        try await database.client.query("SELECT * FROM no_such_table", logger: database.logger)
                    }
                }
            }
            var page = String(decoding: registry.emitToBuffer(), as: UTF8.self)
            #expect(Self.value(page, #"bloodmatch_db_pool_max_connections{pool="main"}"#) == 3)
            #expect(Self.withoutHelp(page).isEmpty, "no # HELP: \(Self.withoutHelp(page))")
            #expect(Self.value(page, #"bloodmatch_db_operations_in_flight{pool="main"}"#) == 0)
            #expect(Self.value(page, #"bloodmatch_db_operations_waiting{pool="main"}"#) == 0)
            #expect(Self.value(page, "bloodmatch_db_operation_duration_seconds_count", labels: [#"operation="ping""#]) == 1, "\(page)")
            #expect(Self.value(page, "bloodmatch_db_operation_duration_seconds_count", labels: [#"operation="sites.all""#]) == 1)
            #expect(Self.value(page, "bloodmatch_db_errors_total", labels: [#"operation="test.refused""#, #"kind="query""#]) == 1)
            #expect(Self.value(page, "bloodmatch_db_errors_total", labels: [#"kind="unavailable""#]) == nil)

            // The database goes away: the failed call is counted as "unavailable".
            let gone = DatabaseConfiguration(endpoint: .socket(path: "/nonexistent/.s.PGSQL.1"), username: "bloodmatch_app",
                                             database: test.name, connectTimeout: .seconds(1))
            let lost = Database(configuration: gone, logger: test.logger, metricsFactory: factory)
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await lost.run() }
                await #expect(throws: DatabaseUnavailableError.self) { try await lost.ping() }
                group.cancelAll()
            }
            page = String(decoding: registry.emitToBuffer(), as: UTF8.self)
            #expect(Self.value(page, "bloodmatch_db_errors_total", labels: [#"operation="ping""#, #"kind="unavailable""#]) == 1, "\(page)")
        }
    }

    @Test("a feed that could not be fetched counts as a failed import: its centre's, or centre=\"unknown\" before its control record")
    func fetchFailuresCounted() async throws {
        try await TestDatabase.withFresh { test in
            let site = Site(id: "DCF", name: "Centre F", kind: .distributionCentre, location: GeoPoint(latitude: -33.87, longitude: 151.21), region: "AU-02")
            try await test.with(.importer) { db in
                _ = try await PostgresSiteStore(database: db).upsert([site], source: "test")
                let importer = PostgresInventoryImporter(database: db)
                _ = try await importer.recordFetchFailure(source: "https://feeds.example/f/latest.json", fileName: "latest.json", centre: nil,
                                                          reason: "feed unreachable: HTTP 503 (after 3 tries)", durationMs: 10)
                _ = try await importer.recordFetchFailure(source: "https://feeds.example/f/a.csv", fileName: "a.csv", centre: "DCF",
                                                          reason: "feed unreachable: no complete answer within 120 s", durationMs: 120_000)
            }
            let metrics = ServiceMetrics(registry: PrometheusCollectorRegistry())
            try await test.with(.app) { db in
                await metrics.collect(database: db, engine: nil, deadline: .seconds(60), logger: test.logger)
            }
            let page = String(decoding: metrics.render(), as: UTF8.self)
            #expect(Self.value(page, #"bloodmatch_centre_failed_imports_last_hour{centre="DCF"}"#) == 1, "\(page)")
            #expect(Self.value(page, #"bloodmatch_centre_failed_imports_last_hour{centre="unknown"}"#) == 1)
        }
    }

    @Test("batch metrics: the latest run's orders by outcome, urgent orders left short, units, duration")
    func batchMetrics() {
        let summary = BatchRunSummary(finishedAt: 1_800_000_000, durationSeconds: 2.5, solveSeconds: 1.25, allocatedUnits: 7, shipments: 3,
                                      ordersByStatus: ["allocated": 4, "unfillable": 2], shortByUrgency: ["emergency": 1, "routine": 1])
        let page = String(decoding: ServiceMetrics.batchTextfile(summary), as: UTF8.self)
        #expect(Self.value(page, "bloodmatch_batch_last_run_timestamp_seconds") == 1_800_000_000)
        #expect(Self.value(page, "bloodmatch_batch_run_duration_seconds") == 2.5)
        #expect(Self.value(page, "bloodmatch_batch_solve_duration_seconds") == 1.25)
        #expect(Self.value(page, "bloodmatch_batch_allocated_units") == 7)
        #expect(Self.value(page, "bloodmatch_batch_shipments") == 3)
        #expect(Self.value(page, #"bloodmatch_batch_orders{status="allocated"}"#) == 4)
        #expect(Self.value(page, #"bloodmatch_batch_orders{status="partially_allocated"}"#) == 0)
        #expect(Self.value(page, #"bloodmatch_batch_orders{status="unfillable"}"#) == 2)
        #expect(Self.value(page, #"bloodmatch_batch_orders_short{urgency="emergency"}"#) == 1)
        #expect(Self.value(page, #"bloodmatch_batch_orders_short{urgency="urgent"}"#) == 0)
    }
}
