import Crypto
import Foundation
import Logging
import PostgresNIO

#if canImport(Glibc)
import Glibc
#endif

/// One segment of the event log (migration 0014) and how far it has gone on its way out.
public struct AuditSegment: Sendable, Hashable {
    public var segment: Int
    /// Event numbers `firstSeq ..< endSeq`.
    public var firstSeq: Int64
    public var endSeq: Int64
    public var closedAt: Date?
    /// Its chain positions, once closed.
    public var chainFirst: Int64?
    public var chainLast: Int64?
    /// The hash at `chainLast`, hex.
    public var lastHash: String?
    public var exportedAt: Date?
    public var exportedSHA256: String?
    public var carriedAt: Date?
    public var detachedAt: Date?

    /// The furthest step it has reached: `open`, `closed`, `exported`, `carried` or `detached`.
    public var state: String {
        if detachedAt != nil { return "detached" }
        if carriedAt != nil && exportedAt != nil { return "archived" }
        if exportedAt != nil { return "exported" }
        if closedAt != nil { return "closed" }
        return "open"
    }

    /// The archive file's name for segment `n`.
    public static func archiveName(_ n: Int) -> String { "bloodmatch-audit-s\(String(repeating: "0", count: max(0, 6 - String(n).count)))\(n).jsonl" }
}

/// A segment step that cannot be taken, naming the segment and why.
public struct AuditSegmentError: Error, Sendable, CustomStringConvertible {
    public var segment: Int
    public var problem: String
    public init(segment: Int, problem: String) { (self.segment, self.problem) = (segment, problem) }
    public var description: String { "segment \(segment): \(problem)" }
}

extension PostgresAuditLog {
    /// Every segment the database knows, attached or moved out, in order.
    public func segments() async throws -> [AuditSegment] {
        var out: [AuditSegment] = []
        for try await r in try await database.client.query("""
            SELECT segment, first_seq, end_seq, closed_at, chain_first, chain_last, encode(last_hash, 'hex'),
                   exported_at, exported_sha256, carried_at, detached_at
            FROM bm.audit_segments ORDER BY segment
            """, logger: database.logger).decode((Int, Int64, Int64, Date?, Int64?, Int64?, String?, Date?, String?, Date?, Date?).self) {
            out.append(AuditSegment(segment: r.0, firstSeq: r.1, endSeq: r.2, closedAt: r.3, chainFirst: r.4, chainLast: r.5,
                                    lastHash: r.6, exportedAt: r.7, exportedSHA256: r.8, carriedAt: r.9, detachedAt: r.10))
        }
        return out
    }

    /// Archives closed segment `n` into `folder`: its events, in chain order, as JSON lines in
    /// `bloodmatch-audit-sNNNNNN.jsonl` with a manifest beside it. The file is written under a
    /// temporary name, flushed to disk, read back and verified from the file alone before it is
    /// named and recorded (`audit.segment_exported`, with its SHA-256); then every covered record
    /// whose latest event lies in the segment is carried forward. An archive already in the folder
    /// is verified and kept, never overwritten. Returns the manifest and the records carried.
    public func archive(segment n: Int, into folder: URL) async throws -> (manifest: AuditArchiveManifest, carried: Int64) {
        let all = try await segments()
        guard let segment = all.first(where: { $0.segment == n }) else {
            throw AuditSegmentError(segment: n, problem: "no such segment (segments 1–\(all.last?.segment ?? 0) exist)")
        }
        guard segment.detachedAt == nil else { throw AuditSegmentError(segment: n, problem: "already moved out of the database") }
        guard segment.closedAt != nil, let chainFirst = segment.chainFirst, let chainLast = segment.chainLast,
              let lastHash = segment.lastHash else {
            throw AuditSegmentError(segment: n, problem: "not closed yet: the sealer closes a segment once every event numbered in it is chained")
        }
        // The hash before the segment's first position: its predecessor's last, or the genesis.
        let previous = all.last { $0.segment < n && $0.chainLast != nil && $0.chainLast! == chainFirst - 1 }
        let prevHash = chainFirst == 1 ? hex(AuditChain.genesis) : (previous?.lastHash ?? "")
        guard !prevHash.isEmpty else {
            throw AuditSegmentError(segment: n, problem: "the segment before it is not closed, so the hash its first entry links to is not known")
        }
        let name = AuditSegment.archiveName(n)
        let file = folder.appendingPathComponent(name)
        let manifestFile = folder.appendingPathComponent(AuditArchiveManifest.fileName(forArchive: name))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var manifest: AuditArchiveManifest
        if FileManager.default.fileExists(atPath: file.path) {
            guard let data = FileManager.default.contents(atPath: manifestFile.path),
                  let kept = try? JSONDecoder().decode(AuditArchiveManifest.self, from: data) else {
                throw AuditSegmentError(segment: n, problem: "\(file.path) exists without a readable manifest \(manifestFile.lastPathComponent) beside it; move it aside to write the archive again")
            }
            manifest = kept
            _ = try AuditArchive.verify(file: file, manifest: manifest)
            guard manifest.segment == n, manifest.lastHash == lastHash else {
                throw AuditSegmentError(segment: n, problem: "\(file.path) exists and is not this segment's archive")
            }
        } else {
            let (sha256, events) = try await write(segment: segment, to: file, prevHash: prevHash)
            manifest = AuditArchiveManifest(
                segment: n, firstSeq: segment.firstSeq, endSeq: segment.endSeq, chainFirst: chainFirst, chainLast: chainLast,
                prevHash: prevHash, lastHash: lastHash, events: events, file: name, sha256: sha256,
                exportedAt: iso(Date()), databaseSystemIdentifier: try await systemIdentifier())
            let temporary = file.deletingLastPathComponent().appendingPathComponent(".\(name).part")
            do {
                _ = try AuditArchive.verify(file: temporary, manifest: manifest)
            } catch {
                try? FileManager.default.removeItem(at: temporary)
                throw error
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try (encoder.encode(manifest) + Data("\n".utf8)).write(to: manifestFile, options: .atomic)
            guard rename(temporary.path, file.path) == 0 else {
                throw AuditSegmentError(segment: n, problem: "cannot name \(file.path): \(String(cString: strerror(errno)))")
            }
        }
        if segment.exportedSHA256 != manifest.sha256 {
            // The rows are read: a function's error arrives after its row description.
            try await Self.refusal(segment: n) {
                _ = try await database.client.query(
                    "SELECT bm.audit_segment_exported(\(n)::int, \(manifest.sha256), \(name), \(manifest.events)::bigint)",
                    logger: database.logger).collect()
            }
        }
        var carried: Int64 = 0
        for try await (c,) in try await database.client.query("SELECT bm.audit_carry_forward(\(n)::int)", logger: database.logger)
            .decode((Int64,).self) { carried = c }
        _ = try? await seal()
        return (manifest, carried)
    }

    /// Writes the segment's chained events to `file`'s temporary name, flushed to disk; returns
    /// the file's SHA-256 and the number of events.
    private func write(segment: AuditSegment, to file: URL, prevHash: String) async throws -> (String, Int64) {
        let temporary = file.deletingLastPathComponent().appendingPathComponent(".\(file.lastPathComponent).part")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
              let handle = FileHandle(forWritingAtPath: temporary.path) else {
            throw AuditSegmentError(segment: segment.segment, problem: "cannot create \(temporary.path)")
        }
        var hasher = SHA256()
        var count: Int64 = 0
        var buffer = Data()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func flush() throws {
            hasher.update(data: buffer)
            try handle.write(contentsOf: buffer)
            buffer.removeAll(keepingCapacity: true)
        }
        do {
            let logger = database.logger
            try await database.client.withConnection { conn in
                try await database.transaction(on: conn, readOnlySnapshot: true) { conn in
                    // By position, each event by its own key (as `verify`): no temporary files.
                    _ = try await conn.query("SET LOCAL enable_hashjoin = off", logger: logger).collect()
                    _ = try await conn.query("SET LOCAL enable_mergejoin = off", logger: logger).collect()
                    let rows = try await conn.query("""
                        SELECT \(unescaped: Self.columns) FROM bm.event_chain c JOIN bm.event_log e ON e.seq = c.seq
                        WHERE c.seq >= \(segment.firstSeq) AND c.seq < \(segment.endSeq) ORDER BY c.chain_seq
                        """, logger: logger)
                    for try await row in rows.decode(Row.self) {
                        buffer.append(try encoder.encode(AuditArchiveEntry(Self.event(row))))
                        buffer.append(10)
                        count += 1
                        if buffer.count >= 1 << 20 { try flush() }
                    }
                }
            }
            try flush()
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        return (hex(Array(hasher.finalize())), count)
    }

    /// Moves archived segment `n` out of the database (the schema owner's connection): the archive
    /// and its manifest are read back and verified here, and the database checks the rest (oldest
    /// attached, closed, exported with this SHA-256, carried forward, each step chained) before
    /// detaching and dropping its two partitions and recording `audit.segment_detached`.
    public func detach(segment n: Int, archive file: URL) async throws -> AuditArchiveVerification {
        let manifestFile = file.deletingLastPathComponent().appendingPathComponent(AuditArchiveManifest.fileName(forArchive: file.lastPathComponent))
        let manifest: AuditArchiveManifest
        do {
            manifest = try JSONDecoder().decode(AuditArchiveManifest.self, from: Data(contentsOf: manifestFile))
        } catch {
            throw AuditSegmentError(segment: n, problem: "no readable manifest \(manifestFile.path) beside the archive (\(error.localizedDescription))")
        }
        guard manifest.segment == n else {
            throw AuditSegmentError(segment: n, problem: "\(file.lastPathComponent) is the archive of segment \(manifest.segment)")
        }
        let verified = try AuditArchive.verify(file: file, manifest: manifest)
        try await Self.refusal(segment: n) {
            _ = try await database.client.query("SELECT bm.audit_detach_segment(\(n)::int, \(verified.sha256))", logger: database.logger).collect()
        }
        return verified
    }

    /// Runs `body`; a condition the database refuses the step on (SQLSTATE 55000, with the
    /// segment and the reason in its message) becomes an `AuditSegmentError` naming it.
    static func refusal(segment n: Int, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55000" {
            throw AuditSegmentError(segment: n, problem: error.serverInfo?[.message] ?? "refused by the database")
        }
    }

    /// The database cluster's identifier (as in checkpoints).
    func systemIdentifier() async throws -> String {
        var id = ""
        for try await (s,) in try await database.client.query("SELECT system_identifier::text FROM pg_control_system()", logger: database.logger)
            .decode((String,).self) { id = s }
        return id
    }

    /// Where verification of the attached chain starts once segments have left: after the last
    /// position of the newest segment moved out, from the hash its row records (nil: none moved out).
    func archivedAnchor(on conn: PostgresConnection) async throws -> (segment: Int, chainLast: Int64, hash: [UInt8])? {
        var anchor: (Int, Int64, [UInt8])?
        for try await (n, last, hash) in try await conn.query("""
            SELECT segment, chain_last, last_hash FROM bm.audit_segments WHERE detached_at IS NOT NULL ORDER BY segment DESC LIMIT 1
            """, logger: database.logger).decode((Int, Int64, ByteBuffer).self) {
            anchor = (n, last, Array(hash.readableBytesView))
        }
        return anchor
    }

    /// The closing event of segment `n` as the attached chain holds it: its last position and hash.
    func closingRecord(segment n: Int, on conn: PostgresConnection) async throws -> (chainLast: Int64, hash: String)? {
        var found: (Int64, String)?
        for try await (last, hash) in try await conn.query("""
            SELECT (e.payload->>'chain_last')::bigint, e.payload->>'last_hash' FROM bm.event_log e JOIN bm.event_chain c ON c.seq = e.seq
            WHERE e.action = 'audit.segment_closed' AND e.subject = \("segment:\(n)") ORDER BY e.seq LIMIT 1
            """, logger: database.logger).decode((Int64, String).self) { found = (last, hash) }
        return found
    }
}
