import ArgumentParser
import BloodMatchIngest
import BloodMatchStore
import Foundation

/// `bloodmatch import`: load inventory snapshots (CSV + `.ctl.json`) from files.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import inventory snapshots: validated, atomic per centre, idempotent.",
        discussion: """
        Each FILE is a snapshot CSV with its control record NAME.ctl.json beside it (Data/feed-format.md).
        Exit codes: 0 all loaded (or already imported), 3 rows rejected or a snapshot refused,
        5 database unavailable, 2 usage error.
        """)

    @Argument(help: "Snapshot CSV files.") var files: [String] = []
    @Flag(help: "Print each run's report as JSON.") var json = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("name at least one snapshot CSV file") }
    }

    func run() async throws {
        let logger = makeLogger("bloodmatch.import")
        try await runReportingFailures(logger: logger) {
            let config = try Environment.current.database(role: .importer)
            let reports = try await Database.with(config, logger: logger) { db in
                let importer = PostgresInventoryImporter(database: db)
                var reports: [ImportReport] = []
                for file in files {
                    let report = try await importer.importSnapshot(SnapshotSource(csvPath: file), now: Date())
                    ImportCommand.log(report, logger: logger)
                    reports.append(report)
                }
                return reports
            }
            ImportCommand.print(reports, json: json)
            if reports.contains(where: { $0.outcome == .refused || $0.outcome == .replayRefused || $0.rowsRejected > 0 }) {
                throw ExitStatus.rejected.exitCode
            }
        }
    }

    static func log(_ report: ImportReport, logger: Logger) {
        let level: Logger.Level = switch report.outcome {
        case .loaded, .alreadyImported: .info
        case .loadedWithRejections: .warning
        case .refused, .replayRefused: .error
        }
        logger.log(level: level, "\(report.message)", metadata: [
            "run_id": "\(report.runID)", "file": "\(report.file)", "centre": "\(report.centre ?? "")",
            "outcome": "\(report.outcome.rawValue)", "rows_accepted": "\(report.rowsAccepted)",
            "rows_rejected": "\(report.rowsRejected)", "duration_ms": "\(report.durationMs)",
        ])
    }

    static func print(_ reports: [ImportReport], json: Bool) {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            encoder.dateEncodingStrategy = .iso8601
            if let data = try? encoder.encode(reports) { Swift.print(String(decoding: data, as: UTF8.self)) }
            return
        }
        for r in reports {
            Swift.print("\(r.outcome.rawValue.uppercased()): \(r.file) — \(r.message)")
            for line in r.sampleRejections.prefix(10) { Swift.print("    \(line)") }
            if r.rowsRejected > 10 { Swift.print("    … \(r.rowsRejected - 10) more in bm.rejected_rows (run \(r.runID))") }
        }
    }
}

import Logging
