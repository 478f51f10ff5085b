import ArgumentParser
import BloodMatchStore
import Foundation

/// `bloodmatch audit verify|checkpoint|export`: the tamper-evident event log.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Verify, anchor and export the tamper-evident event log.",
        subcommands: [Verify.self, Checkpoint.self, Export.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the hash chain and name the first row that does not match.",
            discussion: "Exit 0 when intact, 7 when any row, link, the head or a checkpoint does not match.")
        @Option(help: "Start at this chain position (trusts the row before it unless a checkpoint covers it).") var from: Int64 = 1
        @Option(name: .customLong("checkpoint"), help: "A checkpoint file exported by `audit checkpoint` (repeatable).")
        var checkpoints: [String] = []
        @Flag(help: "Print the report as JSON.") var json = false

        func run() async throws {
            let logger = makeLogger("bloodmatch.audit")
            try await runReportingFailures(logger: logger) {
                let marks = try checkpoints.map { path -> AuditCheckpoint in
                    guard let data = FileManager.default.contents(atPath: path) else {
                        throw ValidationError("cannot read checkpoint file \(path)")
                    }
                    do { return try JSONDecoder().decode(AuditCheckpoint.self, from: data) }
                    catch { throw ValidationError("\(path) is not a bloodmatch audit checkpoint: \(error)") }
                }
                let config = try Environment.current.database(role: .app)
                let start = from
                let report = try await Database.with(config, logger: logger) { db in
                    try await PostgresAuditLog(database: db).verify(fromChainSeq: start, checkpoints: marks)
                }
                var fields: [String: String] = [
                    "rows_checked": "\(report.rowsChecked)", "head_chain_seq": "\(report.headChainSeq)",
                    "head_hash": report.headHash, "checkpoints_matched": "\(report.checkpointsMatched)",
                    "seconds": String(format: "%.3f", report.seconds),
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
                    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
                    print(String(decoding: data, as: UTF8.self))
                } else if let p = report.problem {
                    print("AUDIT CHAIN BROKEN at chain position \(p.chainSeq)\(p.seq.map { " (event seq \($0))" } ?? ""): \(p.kind.rawValue)")
                    print("  \(p.detail)")
                    print("  \(report.rowsChecked) rows before it verified; head is position \(report.headChainSeq)")
                } else {
                    print("audit chain intact: \(report.rowsChecked) rows verified (positions \(report.firstChainSeq ?? 0)–\(report.lastChainSeq ?? 0)) in \(String(format: "%.2f", report.seconds)) s")
                    print("head: position \(report.headChainSeq) hash \(report.headHash)")
                    print("checkpoints: \(report.checkpointsMatched) of \(report.checkpointsGiven) matched")
                }
                if let p = report.problem {
                    fields["problem"] = p.description
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
        @Option(help: "Write the checkpoint here (the file must not exist).") var out: String

        func run() async throws {
            let logger = makeLogger("bloodmatch.audit")
            try await runReportingFailures(logger: logger) {
                guard !FileManager.default.fileExists(atPath: out) else {
                    throw ValidationError("\(out) exists; checkpoints are never overwritten")
                }
                let config = try Environment.current.database(role: .app)
                let checkpoint = try await Database.with(config, logger: logger) { db in
                    try await PostgresAuditLog(database: db).checkpoint(actor: operatorName())
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
                    try await PostgresAuditLog(database: db).export(from: first, to: last, subject: only) { event in
                        print(auditEventJSON(event))
                    }
                }
            }
        }
    }
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

/// Who is acting, for the event log: `BLOODMATCH_OPERATOR`, else the login name.
func operatorName() -> String {
    Environment.current.operatorName
}
