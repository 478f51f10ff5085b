import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One event of an archived segment, one JSON object per line: every field the chain hashes, exactly
/// as hashed (the payload as the database's text of it), so the file alone proves its content.
public struct AuditArchiveEntry: Codable, Sendable, Hashable {
    public var chainSeq: Int64
    public var format: Int
    public var seq: Int64
    public var xid: String?
    public var occurredAtMicros: Int64
    public var actorRole: String
    public var actor: String
    public var action: String
    public var subject: String
    /// The payload's text as hashed (PostgreSQL's jsonb output).
    public var payload: String
    public var requestID: String?
    public var traceID: String?
    public var clientAddress: String?
    public var peerAddress: String?
    public var correctsSeq: Int64?
    public var prevHash: String
    public var rowHash: String

    enum CodingKeys: String, CodingKey {
        case chainSeq = "chain_seq", format, seq, xid, occurredAtMicros = "occurred_at_us", actorRole = "actor_role", actor, action,
             subject, payload, requestID = "request_id", traceID = "trace_id", clientAddress = "client_addr",
             peerAddress = "peer_addr", correctsSeq = "corrects_seq", prevHash = "prev_hash", rowHash = "row_hash"
    }

    /// The entry for a chained event.
    public init(_ e: AuditEvent) {
        (chainSeq, format, seq, xid, occurredAtMicros) = (e.chainSeq, e.format, e.seq, e.transactionID, e.occurredAtMicros)
        (actorRole, actor, action, subject, payload) = (e.actorRole, e.actor, e.action, e.subject, e.payload)
        (requestID, traceID, clientAddress, peerAddress, correctsSeq) = (e.requestID, e.traceID, e.clientAddress, e.peerAddress, e.correctsSeq)
        (prevHash, rowHash) = (hex(e.prevHash), hex(e.rowHash))
    }

    /// The event it records; nil when a hash is not 64 hexadecimal digits.
    public var event: AuditEvent? {
        guard let prev = bytes(hex: prevHash), let row = bytes(hex: rowHash), prev.count == 32, row.count == 32 else { return nil }
        return AuditEvent(chainSeq: chainSeq, format: format, seq: seq, transactionID: xid, occurredAtMicros: occurredAtMicros,
                          actorRole: actorRole, actor: actor, action: action, subject: subject, payload: payload, requestID: requestID,
                          traceID: traceID, clientAddress: clientAddress, peerAddress: peerAddress, correctsSeq: correctsSeq,
                          prevHash: prev, rowHash: row)
    }
}

/// What an archive file holds, kept beside it as `FILE.manifest.json`: the segment, its event and
/// chain ranges, the hash before its first position and at its last, the number of events and the
/// file's SHA-256.
public struct AuditArchiveManifest: Codable, Sendable, Hashable {
    public var format = "bloodmatch-audit-archive/1"
    public var segment: Int
    public var firstSeq: Int64
    public var endSeq: Int64
    public var chainFirst: Int64
    public var chainLast: Int64
    /// The hash at position `chainFirst - 1` (all zeros before the first position).
    public var prevHash: String
    /// The hash at `chainLast`: the next segment's first entry links to it.
    public var lastHash: String
    public var events: Int64
    /// The archive file's name, beside the manifest.
    public var file: String
    public var sha256: String
    public var exportedAt: String
    public var databaseSystemIdentifier: String

    enum CodingKeys: String, CodingKey {
        case format, segment, firstSeq = "first_seq", endSeq = "end_seq", chainFirst = "chain_first", chainLast = "chain_last",
             prevHash = "prev_hash", lastHash = "last_hash", events, file, sha256, exportedAt = "exported_at",
             databaseSystemIdentifier = "database_system_identifier"
    }

    public init(segment: Int, firstSeq: Int64, endSeq: Int64, chainFirst: Int64, chainLast: Int64, prevHash: String, lastHash: String,
                events: Int64, file: String, sha256: String, exportedAt: String, databaseSystemIdentifier: String) {
        (self.segment, self.firstSeq, self.endSeq, self.chainFirst, self.chainLast) = (segment, firstSeq, endSeq, chainFirst, chainLast)
        (self.prevHash, self.lastHash, self.events, self.file, self.sha256) = (prevHash, lastHash, events, file, sha256)
        (self.exportedAt, self.databaseSystemIdentifier) = (exportedAt, databaseSystemIdentifier)
    }

    /// The manifest's file name for an archive file name.
    public static func fileName(forArchive name: String) -> String { name + ".manifest.json" }
}

/// Why an archive does not verify: the line (1-based; 0 for the file as a whole) and what is wrong.
public struct AuditArchiveError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var problem: String
    public var description: String { line > 0 ? "\(file) line \(line): \(problem)" : "\(file): \(problem)" }

    public init(file: String, line: Int, problem: String) { (self.file, self.line, self.problem) = (file, line, problem) }
}

/// What `AuditArchive.verify` proved.
public struct AuditArchiveVerification: Sendable {
    public var events: Int64
    public var chainFirst: Int64?
    public var chainLast: Int64?
    public var lastHash: String
    public var sha256: String
}

/// Archive files of closed segments, verified from the file and its manifest alone: every hash
/// recomputed (`AuditChain`), each entry linked to the one before from the manifest's `prev_hash`,
/// every event inside the segment's number range, the last hash, the count and the file's SHA-256
/// as the manifest says. Needs no database: an archive kept 30 years is checked the same way.
public enum AuditArchive {
    /// Verifies `file` against `manifest`; throws naming the first line that does not hold.
    public static func verify(file: URL, manifest: AuditArchiveManifest) throws -> AuditArchiveVerification {
        let name = file.lastPathComponent
        guard manifest.format == "bloodmatch-audit-archive/1" else {
            throw AuditArchiveError(file: name, line: 0, problem: "manifest format '\(manifest.format)' is not bloodmatch-audit-archive/1")
        }
        guard let start = bytes(hex: manifest.prevHash), start.count == 32 else {
            throw AuditArchiveError(file: name, line: 0, problem: "manifest prev_hash '\(manifest.prevHash)' is not a SHA-256")
        }
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            throw AuditArchiveError(file: name, line: 0, problem: "cannot be read")
        }
        defer { try? handle.close() }
        var walk = ArchiveWalk(name: name, manifest: manifest, verifier: AuditChainVerifier(
            start: manifest.chainFirst > 1 || start != AuditChain.genesis ? (manifest.chainFirst - 1, start) : nil))
        var hasher = SHA256()
        var pending = Data()
        while true {
            let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
            pending.append(chunk)
            // Lines are taken where they lie; only the unfinished last one is kept.
            let used = try pending.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Int in
                guard let base = raw.baseAddress else { return 0 }
                var start = 0
                while start < raw.count, let newline = memchr(base + start, 10, raw.count - start) {
                    let end = base.distance(to: UnsafeRawPointer(newline))
                    try walk.take(Data(bytes: base + start, count: end - start))
                    start = end + 1
                }
                return start
            }
            pending = Data(pending[(pending.startIndex + used)...])
        }
        if !pending.isEmpty {
            throw AuditArchiveError(file: name, line: walk.line + 1, problem: "the last line has no end: the file is cut short")
        }
        let (verifier, count, first) = (walk.verifier, walk.count, walk.first)
        let digest = hex(Array(hasher.finalize()))
        let lastHash = verifier.last.map { hex($0.hash) } ?? manifest.prevHash
        let problems = [
            (count == manifest.events, "\(count) events, the manifest says \(manifest.events)"),
            (count == 0 || (first == manifest.chainFirst && verifier.last?.chainSeq == manifest.chainLast),
             "positions \(first ?? 0)–\(verifier.last?.chainSeq ?? 0), the manifest says \(manifest.chainFirst)–\(manifest.chainLast)"),
            (lastHash == manifest.lastHash, "the last hash is \(lastHash), the manifest says \(manifest.lastHash)"),
            (digest == manifest.sha256, "SHA-256 \(digest), the manifest says \(manifest.sha256): the file changed"),
        ]
        if let failed = problems.first(where: { !$0.0 }) {
            throw AuditArchiveError(file: name, line: 0, problem: failed.1)
        }
        return AuditArchiveVerification(events: count, chainFirst: first, chainLast: verifier.last?.chainSeq, lastHash: lastHash, sha256: digest)
    }
}

/// The walk through an archive's lines: the chain verifier and what was counted so far.
private struct ArchiveWalk {
    let name: String
    let manifest: AuditArchiveManifest
    var verifier: AuditChainVerifier
    var line = 0
    var count: Int64 = 0
    var first: Int64?
    let decoder = JSONDecoder()

    init(name: String, manifest: AuditArchiveManifest, verifier: AuditChainVerifier) {
        (self.name, self.manifest, self.verifier) = (name, manifest, verifier)
    }

    /// Checks the next line: an entry, inside the segment, hashing and linking as the chain says.
    mutating func take(_ text: Data) throws {
        line += 1
        let entry: AuditArchiveEntry
        do { entry = try decoder.decode(AuditArchiveEntry.self, from: text) } catch {
            throw AuditArchiveError(file: name, line: line, problem: "not an archive entry (\(error))")
        }
        guard let event = entry.event else {
            throw AuditArchiveError(file: name, line: line, problem: "prev_hash or row_hash is not a SHA-256")
        }
        guard event.seq >= manifest.firstSeq && event.seq < manifest.endSeq else {
            throw AuditArchiveError(file: name, line: line, problem: "event seq \(event.seq) is outside segment \(manifest.segment) [\(manifest.firstSeq), \(manifest.endSeq))")
        }
        guard verifier.check(event) else {
            throw AuditArchiveError(file: name, line: line, problem: verifier.problem?.description ?? "does not verify")
        }
        first = first ?? event.chainSeq
        count += 1
    }
}
