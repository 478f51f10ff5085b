import ArgumentParser
import BloodMatchStore
import Foundation

/// `bloodmatch audit segments|archive|verify-archive|detach`: the event log's segments on their way
/// to the archive (Jobs/RUNBOOK.md#audit-growth).
extension AuditCommand {
    struct Segments: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the event log's segments: their event and chain ranges and how far each has gone (open, closed, exported, archived, detached).")
        @Flag(help: "Print JSON lines.") var json = false

        func run() async throws {
            let logger = makeLogger("bloodmatch.audit")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let segments = try await Database.with(config, logger: logger) { try await PostgresAuditLog(database: $0).segments() }
                let out = CheckedOutput()
                for s in segments {
                    if json {
                        var object: [String: Any] = ["segment": s.segment, "first_seq": s.firstSeq, "end_seq": s.endSeq, "state": s.state]
                        if let v = s.chainFirst { object["chain_first"] = v }
                        if let v = s.chainLast { object["chain_last"] = v }
                        if let v = s.lastHash { object["last_hash"] = v }
                        if let v = s.exportedSHA256 { object["archive_sha256"] = v }
                        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                        try out.line(String(decoding: data, as: UTF8.self))
                    } else {
                        let chain = s.chainFirst.map { first in " chain \(first)–\(s.chainLast ?? 0)" } ?? ""
                        try out.line("segment \(s.segment): events \(s.firstSeq)–\(s.endSeq - 1)\(chain) \(s.state)\(s.exportedSHA256.map { " sha256 \($0)" } ?? "")")
                    }
                }
                try out.flush()
            }
        }
    }

    struct Archive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a closed segment's events to an archive file (read back and verified), record its SHA-256, and carry its records forward.",
            discussion: "The folder is meant to be archive storage the database's administrators cannot rewrite (object lock / WORM). An archive already there is verified and kept. Exit 0 done, 2 the segment is not closed or does not exist (or an archive there has no manifest), 5 database unavailable, 7 an archive there does not verify.")
        @Option(help: "The segment (see `audit segments`).") var segment: Int
        @Option(help: "The archive folder.") var dir: String

        func run() async throws {
            let logger = makeLogger("bloodmatch.audit")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let (n, folder) = (segment, URL(fileURLWithPath: dir))
                let archived: (manifest: AuditArchiveManifest, carried: Int64)
                do {
                    archived = try await Database.with(config, logger: logger) { db in
                        try await PostgresAuditLog(database: db).archive(segment: n, into: folder)
                    }
                } catch let error as AuditArchiveError {
                    // An archive already in the folder, or the one just written, does not verify.
                    print("ARCHIVE DOES NOT VERIFY: \(error); nothing was recorded")
                    logger.critical("audit archive does not verify", metadata: ["problem": "\(error)"])
                    throw ExitStatus.tamperDetected.exitCode
                }
                let (manifest, carried) = archived
                logger.notice("audit segment archived", metadata: [
                    "segment": "\(n)", "events": "\(manifest.events)", "sha256": "\(manifest.sha256)", "file": "\(manifest.file)",
                    "records_carried": "\(carried)",
                ])
                print("segment \(n): \(manifest.events) events, positions \(manifest.chainFirst)–\(manifest.chainLast), archive \(folder.appendingPathComponent(manifest.file).path) sha256 \(manifest.sha256); \(carried) records carried forward")
            }
        }
    }

    struct VerifyArchive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify-archive",
            abstract: "Verify archived segments from their files alone: every hash, every link, the range, the count, the SHA-256.",
            discussion: "Needs no database. With several files in order, each must link to the one before. Exit 0 intact, 7 a file does not verify.")
        @Argument(help: "Archive files (bloodmatch-audit-sNNNNNN.jsonl, each with its .manifest.json beside it).") var files: [String]

        func run() async throws {
            let logger = makeLogger("bloodmatch.audit")
            try await runReportingFailures(logger: logger) {
                var previous: AuditArchiveManifest?
                for path in files {
                    let file = URL(fileURLWithPath: path)
                    let manifestPath = AuditArchiveManifest.fileName(forArchive: path)
                    guard let data = FileManager.default.contents(atPath: manifestPath),
                          let manifest = try? JSONDecoder().decode(AuditArchiveManifest.self, from: data) else {
                        throw ValidationFailure("\(manifestPath) is missing or not an archive manifest")
                    }
                    do {
                        let verified = try AuditArchive.verify(file: file, manifest: manifest)
                        if let previous, previous.chainLast + 1 != manifest.chainFirst || previous.lastHash != manifest.prevHash {
                            throw AuditArchiveError(file: file.lastPathComponent, line: 0,
                                                    problem: "does not follow \(previous.file): it starts at position \(manifest.chainFirst) from hash \(manifest.prevHash), the file before ends at \(previous.chainLast) with \(previous.lastHash)")
                        }
                        print("\(file.lastPathComponent): segment \(manifest.segment) intact, \(verified.events) events, positions \(manifest.chainFirst)–\(manifest.chainLast), last hash \(verified.lastHash)")
                    } catch let error as AuditArchiveError {
                        print("ARCHIVE DOES NOT VERIFY: \(error)")
                        logger.critical("audit archive does not verify", metadata: ["problem": "\(error)"])
                        throw ExitStatus.tamperDetected.exitCode
                    }
                    previous = manifest
                }
            }
        }
    }

    struct Detach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move an archived segment out of the database (the schema owner only): its archive is verified first, and the database checks the rest.",
            discussion: "Segments leave oldest first, closed, exported with the archive's SHA-256, their records carried forward and each step chained. Inserts wait for the moment of the detach (at most 5 s, then nothing changes). Exit 0 detached, 2 a condition is not met, 7 the archive does not verify.")
        @Option(help: "The segment.") var segment: Int
        @Option(help: "Its archive file (the manifest beside it).") var archive: String

        func run() async throws {
            let logger = makeLogger("bloodmatch.audit")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .owner)
                let (n, file) = (segment, URL(fileURLWithPath: archive))
                let verified: AuditArchiveVerification
                do {
                    verified = try await Database.with(config, logger: logger) { db in
                        try await PostgresAuditLog(database: db).detach(segment: n, archive: file)
                    }
                } catch let error as AuditArchiveError {
                    print("ARCHIVE DOES NOT VERIFY: \(error); nothing was detached")
                    throw ExitStatus.tamperDetected.exitCode
                }
                logger.notice("audit segment detached", metadata: ["segment": "\(n)", "sha256": "\(verified.sha256)", "events": "\(verified.events)"])
                print("segment \(n) moved out of the database: \(verified.events) events, archive sha256 \(verified.sha256)")
            }
        }
    }
}

extension AuditSegmentError: ClassifiedError {
    /// A segment step asked for too early or of a segment that does not exist: a usage error.
    var exitStatus: ExitStatus { .usage }
}
