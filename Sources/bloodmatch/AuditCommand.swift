import ArgumentParser
import BloodMatchStore
import Foundation

/// `bloodmatch audit verify|checkpoint|export`: the tamper-evident event log.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Verify, anchor and export the tamper-evident event log.",
        subcommands: [Verify.self, Seal.self, Checkpoint.self, Export.self, Correct.self, Segments.self, Archive.self,
                      VerifyArchive.self, Detach.self])

    /// Where the checkpoint job writes and `verify` reads by default (meant to be a mount that the
    /// database host cannot write).
    static var defaultCheckpointDir: String {
        ProcessInfo.processInfo.environment["BLOODMATCH_AUDIT_CHECKPOINT_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "var/audit/checkpoints"
    }

    struct Seal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Chain the committed events not yet sealed (the service does this every 250 ms; cron every minute).")
        @Flag(help: "Keep sealing every --interval until stopped.") var follow = false
        @Option(help: "Seconds between passes with --follow.") var interval: Double = 0.25

        func run() async throws {
            let logger = makeLogger("bloodmatch.audit")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let (keepGoing, pause) = (follow, interval)
                try await Database.with(config, logger: logger) { db in
                    let log = PostgresAuditLog(database: db)
                    repeat {
                        let (sealed, head) = try await log.seal()
                        if sealed > 0 || !keepGoing {
                            logger.info("audit events sealed", metadata: ["sealed": "\(sealed)", "head_chain_seq": "\(head)"])
                        }
                        if !keepGoing { print("sealed \(sealed) events; head is position \(head)") }
                        if keepGoing { try await Task.sleep(for: .milliseconds(Int(pause * 1000))) }
                    } while keepGoing
                }
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the hash chain and name the first row that does not match.",
            discussion: "Exit 0 when intact, 7 when any row, link, the head or a checkpoint does not match.")
        @Option(help: "Start at this chain position (trusts the row before it unless a checkpoint covers it).") var from: Int64 = 1
        @Option(name: .customLong("checkpoint"), help: "A checkpoint file exported by `audit checkpoint` (repeatable).")
        var checkpoints: [String] = []
        @Option(help: "Also every checkpoint file (*.json) in this folder (default: BLOODMATCH_AUDIT_CHECKPOINT_DIR or var/audit/checkpoints, when it exists).")
        var checkpointDir: String?
        @Flag(help: "Verify from the newest checkpoint on (its hash must match) instead of from the beginning.") var sinceCheckpoint = false
        @Option(help: "Fail when a committed event has waited longer than this to be sealed.") var maxUnsealedSeconds: Double = 60
        @Flag(help: "Do not seal the committed tail first.") var noSeal = false
        @Flag(help: "Print the report as JSON.") var json = false

        func run() async throws {
            let logger = makeLogger("bloodmatch.audit")
            try await runReportingFailures(logger: logger) {
                let marks = try readCheckpoints(checkpoints + checkpointFiles(in: checkpointDir ?? AuditCommand.defaultCheckpointDir))
                let config = try Environment.current.database(role: .app)
                let start = sinceCheckpoint ? (marks.map(\.chainSeq).max() ?? from) : from
                let (bound, seal) = (maxUnsealedSeconds, !noSeal)
                let report = try await Database.with(config, logger: logger) { db in
                    let log = PostgresAuditLog(database: db)
                    let report = try await log.verify(fromChainSeq: start, checkpoints: marks, sealFirst: seal, maxUnchainedSeconds: bound)
                    try await log.recordVerification(report, actor: operatorName())
                    return report
                }
                var fields: [String: String] = [
                    "rows_checked": "\(report.rowsChecked)", "head_chain_seq": "\(report.headChainSeq)",
                    "head_hash": report.headHash, "checkpoints_matched": "\(report.checkpointsMatched)",
                    "seconds": String(format: "%.3f", report.seconds), "unsealed_events": "\(report.unchainedRows)",
                    "records_checked": "\(report.recordsChecked)", "record_mismatches": "\(report.recordMismatches.count)",
                ]
                if json {
                    var object: [String: Any] = [
                        "intact": report.isIntact, "rows_checked": report.rowsChecked, "head_chain_seq": report.headChainSeq,
                        "head_hash": report.headHash, "checkpoints_given": report.checkpointsGiven,
                        "checkpoints_matched": report.checkpointsMatched, "seconds": report.seconds,
                    ]
                    if let p = report.problem {
                        object["problem"] = ["kind": p.kind.rawValue, "chain_seq": p.chainSeq, "seq": p.seq as Any, "detail": p.detail]
                    }
                    object["unsealed_events"] = report.unchainedRows
                    if let through = report.archivedThroughChainSeq { object["archived_through_chain_seq"] = through }
                    object["records_checked"] = report.recordsChecked
                    object["record_mismatches"] = report.recordMismatches.map {
                        ["table": $0.table, "key": $0.key, "field": $0.field, "kind": $0.kind, "expected": $0.expected as Any,
                         "actual": $0.actual as Any, "event_seq": $0.eventSeq as Any]
                    }
                    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
                    print(String(decoding: data, as: UTF8.self))
                } else {
                    if let p = report.problem {
                        print("AUDIT CHAIN BROKEN at chain position \(p.chainSeq)\(p.seq.map { " (event seq \($0))" } ?? ""): \(p.kind.rawValue)")
                        print("  \(p.detail)")
                        print("  \(report.rowsChecked) rows before it verified; head is position \(report.headChainSeq)")
                    } else {
                        print("audit chain intact: \(report.rowsChecked) rows verified (positions \(report.firstChainSeq ?? 0)–\(report.lastChainSeq ?? 0)) in \(String(format: "%.2f", report.seconds)) s")
                        if let through = report.archivedThroughChainSeq {
                            print("positions 1–\(through) are in the archives of segments 1–\(report.archivedSegments ?? 0), moved out of the database: `bloodmatch audit verify-archive` checks those files")
                        }
                        print("head: position \(report.headChainSeq) hash \(report.headHash)")
                        print("checkpoints: \(report.checkpointsMatched) of \(report.checkpointsGiven) matched")
                    }
                    print("unsealed: \(report.unchainedRows) events\(report.oldestUnchainedSeconds.map { String(format: ", oldest %.1f s", $0) } ?? "")")
                    if report.recordMismatches.isEmpty {
                        print("records: \(report.recordsChecked) covered rows match the chain (\(String(format: "%.2f", report.recordSeconds)) s)")
                    } else {
                        print("RECORDS DO NOT MATCH THE CHAIN: \(report.recordMismatches.count) differences in \(report.recordsChecked) covered rows")
                        for m in report.recordMismatches { print("  \(m)") }
                    }
                }
                if !report.isIntact {
                    fields["problem"] = report.problem?.description ?? report.recordMismatches.first?.description ?? "unknown"
                    logger.critical("audit chain verification failed", metadata: fields.mapValues { .string($0) })
                    throw ExitStatus.tamperDetected.exitCode
                }
                logger.info("audit chain verified", metadata: fields.mapValues { .string($0) })
            }
        }
    }

    struct Checkpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export the chain's head (position and hash) to a file to keep off the database host.",
            discussion: "A superuser can rewrite a whole chain; a checkpoint kept elsewhere is what `audit verify --checkpoint` compares with.")
        @Option(help: "Write the checkpoint to this file (it must not exist).") var out: String?
        @Option(help: "Write it into this folder as <time>.json, after verifying against the checkpoints already there.") var dir: String?

        func validate() throws {
            guard (out == nil) != (dir == nil) else { throw ValidationError("give exactly one of --out FILE or --dir FOLDER") }
        }

        func run() async throws {
            let logger = makeLogger("bloodmatch.audit")
            try await runReportingFailures(logger: logger) {
                let kept = try readCheckpoints(checkpointFiles(in: dir))
                if let dir { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
                let config = try Environment.current.database(role: .app)
                let (checkpoint, report) = try await Database.with(config, logger: logger) { db in
                    let log = PostgresAuditLog(database: db)
                    // Never anchor a head that does not verify; the part before the newest kept
                    // checkpoint was verified when that checkpoint was written (and must still match it).
                    let report = try await log.verify(fromChainSeq: kept.map(\.chainSeq).max() ?? 1, checkpoints: kept)
                    try await log.recordVerification(report, actor: operatorName())
                    guard report.isIntact else { return (AuditCheckpoint?.none, report) }
                    return (try await log.checkpoint(actor: operatorName()), report)
                }
                guard let checkpoint else {
                    let problem = report.problem?.description ?? "unknown"
                    print("AUDIT CHAIN BROKEN — no checkpoint written: \(problem)")
                    logger.critical("audit chain verification failed; no checkpoint written", metadata: ["problem": "\(problem)"])
                    throw ExitStatus.tamperDetected.exitCode
                }
                let out = self.out ?? (dir! + "/" + SnapshotWriter.timestamp(Date()).replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "") + "-\(checkpoint.chainSeq).json")
                guard !FileManager.default.fileExists(atPath: out) else {
                    throw ValidationError("\(out) exists; checkpoints are never overwritten")
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                try SnapshotWriter.atomicWrite(try encoder.encode(checkpoint) + Data("\n".utf8), to: URL(fileURLWithPath: out))
                logger.notice("audit checkpoint", metadata: [
                    "chain_seq": "\(checkpoint.chainSeq)", "row_hash": "\(checkpoint.rowHash)", "taken_at": "\(checkpoint.takenAt)",
                    "database_system_identifier": "\(checkpoint.databaseSystemIdentifier)", "file": "\(out)",
                ])
                print("checkpoint: position \(checkpoint.chainSeq) hash \(checkpoint.rowHash) taken \(checkpoint.takenAt) → \(out)")
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print events as JSON lines (with their hashes) from a chain position, for archiving or review.")
        @Option(help: "First chain position.") var from: Int64 = 1
        @Option(help: "Last chain position (default: the head).") var to: Int64?
        @Option(help: "Only events with this subject, e.g. reservation:<id> or unit:<din>.") var subject: String?

        func run() async throws {
            let logger = makeLogger("bloodmatch.audit")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let (first, last, only) = (from, to ?? Int64.max, subject)
                try await Database.with(config, logger: logger) { db in
                    let out = CheckedOutput()
                    try await PostgresAuditLog(database: db).export(from: first, to: last, subject: only) { event in
                        try out.line(auditEventJSON(event))
                    }
                    try out.flush()
                }
            }
        }
    }
}

extension AuditCommand {
    struct Correct: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record a correction of an earlier event: a new event that points at it (the old one is never changed).")
        @Argument(help: "Chain position of the event being corrected.") var chainSeq: Int64
        @Option(help: "What was wrong and what is right.") var note: String

        func run() async throws {
            let logger = makeLogger("bloodmatch.audit")
            try await runReportingFailures(logger: logger) {
                guard !note.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--note must say what is corrected") }
                let config = try Environment.current.database(role: .app)
                let (target, text) = (chainSeq, note)
                let position = try await Database.with(config, logger: logger) { db -> Int64? in
                    let log = PostgresAuditLog(database: db)
                    guard let old = try await log.event(chainSeq: target) else { return nil }
                    return try await log.append(NewAuditEvent(
                        actor: operatorName(), action: "correction", subject: old.subject,
                        payloadJSON: #"{"note":\#(jsonText(text)),"corrects_action":\#(jsonText(old.action))}"#, correctsSeq: old.seq))
                }
                guard let position else { print("no event at chain position \(chainSeq)"); throw ExitStatus.usage.exitCode }
                print("correction recorded as event seq \(position), pointing at chain position \(chainSeq)")
            }
        }
    }
}

/// A JSON string literal.
func jsonText(_ text: String) -> String {
    String(decoding: (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8), as: UTF8.self)
        .dropFirst().dropLast().description
}

/// One event as a JSON object on one line, keys sorted, the time in UTC with microseconds.
func auditEventJSON(_ e: AuditEvent) -> String {
    var object: [String: Any] = [
        "chain_seq": e.chainSeq, "seq": e.seq, "occurred_at": SnapshotWriter.timestampMicros(e.occurredAtMicros),
        "actor_role": e.actorRole, "actor": e.actor, "action": e.action, "subject": e.subject,
        "prev_hash": hex(e.prevHash), "row_hash": hex(e.rowHash),
    ]
    object["payload"] = (try? JSONSerialization.jsonObject(with: Data(e.payload.utf8))) ?? e.payload
    if let v = e.requestID { object["request_id"] = v }
    if let v = e.traceID { object["trace_id"] = v }
    if let v = e.clientAddress { object["client_addr"] = v }
    if let v = e.correctsSeq { object["corrects_seq"] = v }
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    return String(decoding: data, as: UTF8.self)
}

/// The `*.json` files in a folder, sorted by name; none when no folder is given.
func checkpointFiles(in folder: String?) throws -> [String] {
    guard let folder else { return [] }
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
    return names.filter { $0.hasSuffix(".json") }.sorted().map { folder + "/" + $0 }
}

/// Reads checkpoint files; a file that is not one stops the command (exit 2).
func readCheckpoints(_ paths: [String]) throws -> [AuditCheckpoint] {
    try paths.map { path in
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read checkpoint file \(path)") }
        do { return try JSONDecoder().decode(AuditCheckpoint.self, from: data) }
        catch { throw ValidationError("\(path) is not a bloodmatch audit checkpoint: \(error)") }
    }
}

/// Who is acting, for the event log: `BLOODMATCH_OPERATOR`, else the login name.
func operatorName() -> String {
    Environment.current.operatorName
}
