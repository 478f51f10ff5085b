import ArgumentParser
import BloodMatchFeeds
import BloodMatchIngest
import BloodMatchStore
import Foundation
import Logging

/// `bloodmatch import`: load inventory snapshots (CSV + `.ctl.json`) from files, a spool folder or
/// HTTPS feeds.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import inventory snapshots: validated, atomic per centre, idempotent.",
        discussion: """
        Each FILE is a snapshot CSV (NAME.csv) or a FHIR R5 Bundle of BiologicallyDerivedProduct (NAME.json
        or NAME.fhir.json), with its control record NAME.ctl.json beside it (Data/feed-format.md,
        Data/FHIR.md). --url fetches NAME.ctl.json and the snapshot from an https address of NAME.csv or
        NAME.fhir.json, or of an index document NAME.json ({"snapshot": "NAME.csv"}, e.g. latest.json)
        that names the feed's newest snapshot. The spool takes both kinds.
        Exit codes: 0 all loaded (or already imported), 3 rows rejected, a snapshot refused, a spool file
        refused or orphaned, or a feed refused (certificate, credentials, size), 4 a feed unreachable
        (including no complete answer by the deadline), 1 the database refused a load (recorded as
        failed; a spool file stays for the next run), 5 database unavailable, 2 usage error.
        """)

    @Argument(help: "Snapshot files: NAME.csv or a FHIR Bundle NAME.json, each with NAME.ctl.json.") var files: [String] = []
    @Option(help: "Import every complete snapshot in this spool folder, moving each to done/ or failed/.") var spool: String?
    @Option(help: "Fetch a snapshot from this https URL (NAME.csv, a FHIR Bundle NAME.fhir.json, or an index NAME.json naming the newest) and import it.") var url: [String] = []
    @Option(help: "Seconds for one feed snapshot's whole fetch, retries included (default 120; BLOODMATCH_FEED_DEADLINE).") var fetchDeadline: Int?
    @Option(help: "File holding a bearer token for the feed (BLOODMATCH_FEED_TOKEN_FILE).") var bearerTokenFile: String?
    @Option(name: .customLong("client-cert"), help: "PEM client certificate presented to the feed (BLOODMATCH_FEED_CLIENT_CERT).") var clientCertificate: String?
    @Option(name: .customLong("client-key"), help: "PEM private key of --client-cert (BLOODMATCH_FEED_CLIENT_KEY).") var clientKey: String?
    @Option(help: "Minutes a spool CSV may wait for its control record before it is reported (default 10; BLOODMATCH_SPOOL_ORPHAN_GRACE_MINUTES).") var orphanGraceMinutes: Int?
    @Flag(help: "Print each run's report as JSON.") var json = false

    func validate() throws {
        let sources = (files.isEmpty ? 0 : 1) + (spool == nil ? 0 : 1) + (url.isEmpty ? 0 : 1)
        guard sources == 1 else { throw ValidationError("name snapshot files, or --spool DIR, or --url URL (one of them)") }
    }

    func run() async throws {
        let logger = makeLogger("bloodmatch.import")
        try await runReportingFailures(logger: logger) {
            var sources: [SnapshotSource] = files.map { SnapshotSource(csvPath: $0) }
            var refusedFiles = 0
            var orphans = 0
            var spoolFolder: SpoolFolder?
            if let spool {
                let folder = SpoolFolder(root: URL(fileURLWithPath: spool), orphanGrace: try orphanGrace())
                spoolFolder = folder
                for entry in try folder.scan() {
                    switch entry {
                    case .snapshot(let csv, _):
                        sources.append(SnapshotSource(csvPath: csv.path))
                    case .refused(let name, let reason):
                        refusedFiles += 1
                        logger.error("spool file refused, left in place for a person to inspect", metadata: ["file": "\(name)", "reason": "\(reason)"])
                        Swift.print("REFUSED: \(name) — \(reason)")
                    case .orphan(let name, let missing, let age):
                        orphans += 1
                        let minutes = Int(age / 60)
                        logger.warning("spool file has waited for its other half past the grace period; left in place, not imported",
                                       metadata: ["file": "\(name)", "missing": "\(missing)", "age_minutes": "\(minutes)"])
                        Swift.print("ORPHANED: \(name) — no \(missing) after \(minutes) min; not imported (a writer that stopped, or a file dropped by hand)")
                    }
                }
            }
            // Fetched copies are removed once the import has run, whatever its outcome.
            let fetch = url.isEmpty ? FeedRun() : try await fetchFeeds(logger: logger)
            defer { fetch.removeCopies() }
            sources += fetch.fetched.filter { $0.alreadyInForce == nil }.map(\.source)

            let config = try Environment.current.database(role: .importer)
            let sourcesToLoad = sources
            let spoolToMove = spoolFolder
            let (reports, notMoved) = try await Database.with(config, logger: logger) { db in
                let importer = PostgresInventoryImporter(database: db)
                var reports: [ImportReport] = []
                var notMoved: [String] = []
                for failure in fetch.failures {
                    let report = try await importer.recordFetchFailure(
                        source: failure.error.feed, fileName: failure.error.file, centre: failure.error.centre,
                        reason: failure.error.description, durationMs: failure.durationMs)
                    ImportCommand.log(report, logger: logger)
                    reports.append(report)
                }
                for snapshot in fetch.fetched {
                    guard let (control, snapshotID) = snapshot.alreadyInForce else { continue }
                    let report = try await importer.recordAlreadyInForce(
                        origin: snapshot.source.origin, fileName: URL(fileURLWithPath: snapshot.source.csvPath).lastPathComponent,
                        control: control, snapshotID: snapshotID)
                    ImportCommand.log(report, logger: logger)
                    reports.append(report)
                }
                for source in sourcesToLoad {
                    let report = try await importer.importSnapshot(source, now: Date())
                    ImportCommand.log(report, logger: logger)
                    if let spoolFolder = spoolToMove, report.outcome != .failed {
                        let done = [.loaded, .loadedWithRejections, .alreadyImported].contains(report.outcome)
                        do {
                            try spoolFolder.move([URL(fileURLWithPath: source.csvPath), URL(fileURLWithPath: source.controlPath)],
                                                 to: done ? "done" : "failed")
                        } catch {
                            // The database already holds the outcome; the files stay and the next run
                            // recognises them (already imported, or a replay once a newer snapshot of the
                            // centre has loaded), so nothing is lost or loaded twice.
                            let reason = (error as? FeedFileSystemError)?.description ?? error.localizedDescription
                            logger.error("spool file not moved; it stays in the spool", metadata: ["file": "\(source.csvPath)", "reason": "\(reason)"])
                            notMoved.append("\(URL(fileURLWithPath: source.csvPath).lastPathComponent) — \(reason)")
                        }
                    }
                    reports.append(report)
                }
                return (reports, notMoved)
            }
            ImportCommand.print(reports, json: json)
            for line in notMoved {
                Swift.print("NOT MOVED: \(line); the file stays in the spool and the next run will find it already imported (or a replay, if a newer snapshot of its centre loads first)")
            }
            if spool != nil && sources.isEmpty && refusedFiles == 0 && orphans == 0 {
                Swift.print("spool \(spool ?? ""): no complete snapshots waiting")
            }
            if reports.contains(where: { $0.outcome == .failed }) || !notMoved.isEmpty {
                throw ExitStatus.failure.exitCode
            }
            if fetch.failures.contains(where: { $0.error.kind == .unreachable }) {
                throw ExitStatus.feedUnreachable.exitCode
            }
            if refusedFiles > 0 || orphans > 0 || !fetch.failures.isEmpty
                || reports.contains(where: { $0.outcome == .refused || $0.outcome == .replayRefused || $0.rowsRejected > 0 }) {
                throw ExitStatus.rejected.exitCode
            }
        }
    }

    /// Fetches every `--url`, one after another; a feed that fails does not stop the others.
    private func fetchFeeds(logger: Logger) async throws -> FeedRun {
        for address in url { _ = try FeedFetcher.address(address) }   // every address checked before the settings are read
        let settings = try FeedSettings.resolve(deadlineSeconds: fetchDeadline, tokenFile: bearerTokenFile,
                                                clientCertificate: clientCertificate, clientKey: clientKey,
                                                environment: Environment.current.feeds)
        // A feed polled again (latest.json every few minutes) whose control record names the
        // snapshot in force is not downloaded again. When the database cannot say, the CSV is
        // fetched and the import decides, as for any file.
        let config = try Environment.current.database(role: .importer)
        let inForce: @Sendable (SnapshotControl) async -> Int64? = { control in
            do {
                return try await withDeadline(.seconds(5)) {
                    try await Database.with(config, logger: logger) { db in
                        try await PostgresInventoryImporter(database: db).snapshotInForce(matching: control)
                    }
                }
            } catch {
                logger.notice("could not ask the database whether the feed's snapshot is in force; fetching it",
                              metadata: ["centre": "\(control.centre)", "error": "\(describe(error))"])
                return nil
            }
        }
        return try await FeedFetcher(settings: settings, logger: logger).fetchAll(url, inForce: inForce)
    }

    /// The orphan grace period, seconds: `--orphan-grace-minutes`, else the environment, else 10 min.
    private func orphanGrace() throws(FeedSettingsError) -> TimeInterval {
        guard let text = orphanGraceMinutes.map(String.init) ?? Environment.current.spoolOrphanGraceMinutes else { return 600 }
        guard let minutes = Int(text), (1...10_080).contains(minutes) else {
            throw FeedSettingsError(setting: "--orphan-grace-minutes / BLOODMATCH_SPOOL_ORPHAN_GRACE_MINUTES", value: text,
                                    problem: "must be a whole number of minutes from 1 to 10080")
        }
        return TimeInterval(minutes * 60)
    }

    static func log(_ report: ImportReport, logger: Logger) {
        let level: Logger.Level = switch report.outcome {
        case .loaded, .alreadyImported: .info
        case .loadedWithRejections: .warning
        case .refused, .replayRefused, .failed, .fetchFailed: .error
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
