import ArgumentParser
import BloodMatchService
import BloodMatchStore
import Foundation

/// `bloodmatch metrics --textfile PATH`: the domain metrics for the node exporter's textfile
/// collector, for deployments where only the cron jobs run.
struct MetricsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Write the domain metrics (data age per centre, stale centres, imports, holds, audit, clock skew) in Prometheus text format.")
    @Option(help: "Write here atomically (e.g. var/metrics/domain.prom); without it, print.") var textfile: String?

    func run() async throws {
        let logger = makeLogger("bloodmatch.metrics")
        let config = try Environment.current.database(role: .app)
        let database = Database(configuration: config, logger: logger)
        let page = await withTaskGroup(of: [UInt8]?.self) { group in
            group.addTask { await database.run(); return nil }
            group.addTask { await ServiceMetrics.domainTextfile(database: database, logger: logger) }
            var result: [UInt8] = []
            for await item in group {
                if let item { result = item; group.cancelAll() }
            }
            return result
        }
        if let textfile {
            try SnapshotWriter.atomicWrite(Data(page), to: URL(fileURLWithPath: textfile))
        } else {
            let out = CheckedOutput()
            try out.line(String(decoding: page, as: UTF8.self))
            try out.flush()
        }
        // A page that says the database is down is still written: that is the signal.
    }
}
