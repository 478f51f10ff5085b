import Crypto
import Foundation

/// One row of `bm.event_log` as the hash chain sees it.
public struct AuditEvent: Sendable, Hashable {
    /// Position in the chain (1, 2, 3, … in sealing order).
    public var chainSeq: Int64
    /// The canonical encoding the row was sealed with: 1 (migration 0002, before sealing) or 2.
    public var format: Int
    /// The row's number in insertion order (database-assigned; hashed from format 2 on).
    public var seq: Int64
    /// The writing transaction's id (format 2).
    public var transactionID: String?
    /// Database time of the insert, microseconds since 1970-01-01T00:00:00Z.
    public var occurredAtMicros: Int64
    /// The database role that wrote the row.
    public var actorRole: String
    /// Operator, job, or `hospital:<id>`.
    public var actor: String
    /// What happened, e.g. `reservation.made`.
    public var action: String
    /// What it happened to, e.g. `reservation:<uuid>` or `unit:<din>`.
    public var subject: String
    /// Details, as PostgreSQL renders the stored `jsonb` (`payload::text`).
    public var payload: String
    /// Client request id.
    public var requestID: String?
    /// W3C trace id.
    public var traceID: String?
    /// The database connection's address (`local` for the unix socket).
    public var clientAddress: String?
    /// The HTTP client's address as the API service saw it (format 2).
    public var peerAddress: String?
    /// The earlier row this one corrects.
    public var correctsSeq: Int64?
    /// The previous row's hash as stored.
    public var prevHash: [UInt8]
    /// This row's hash as stored.
    public var rowHash: [UInt8]

    /// Creates an event.
    public init(chainSeq: Int64, format: Int = 2, seq: Int64, transactionID: String? = nil, occurredAtMicros: Int64,
                actorRole: String, actor: String, action: String, subject: String, payload: String, requestID: String?,
                traceID: String?, clientAddress: String?, peerAddress: String? = nil, correctsSeq: Int64?,
                prevHash: [UInt8], rowHash: [UInt8]) {
        self.chainSeq = chainSeq
        self.format = format
        self.seq = seq
        self.transactionID = transactionID
        self.peerAddress = peerAddress
        self.occurredAtMicros = occurredAtMicros
        self.actorRole = actorRole
        self.actor = actor
        self.action = action
        self.subject = subject
        self.payload = payload
        self.requestID = requestID
        self.traceID = traceID
        self.clientAddress = clientAddress
        self.correctsSeq = correctsSeq
        self.prevHash = prevHash
        self.rowHash = rowHash
    }

    /// When it happened.
    public var occurredAt: Date { Date(timeIntervalSince1970: Double(occurredAtMicros) / 1_000_000) }
}

/// The chain's encoding and hash, independent of the database's own copy (`bm.audit_canonical2`,
/// migration 0009; format 1 was migration 0002's): a row that PostgreSQL and this code hash
/// differently fails verification.
///
/// `row_hash = SHA-256(prev_hash ‖ "bloodmatch-audit/2" ‖ field…)`, each field as a 4-byte
/// big-endian UTF-8 byte length then the bytes, NULL as the length `0xFFFFFFFF` alone; the time is
/// epoch microseconds in decimal, so no TimeZone, DateStyle or locale setting can change it
/// (Data/SOURCES.md §S21). Format 2's fields: chain position, seq, transaction id, time, login
/// role, actor, action, subject, payload, request id, trace id, connection address, peer address,
/// corrected seq. Format 1 had no seq, transaction id or peer address.
public enum AuditChain {
    /// The `prev_hash` of the first row.
    public static let genesis = [UInt8](repeating: 0, count: 32)

    /// The canonical bytes of an event (without the previous hash).
    public static func canonical(_ e: AuditEvent) -> [UInt8] {
        var out = Array((e.format == 1 ? "bloodmatch-audit/1" : "bloodmatch-audit/2").utf8)
        func field(_ text: String?) {
            guard let text else { out.append(contentsOf: [0xFF, 0xFF, 0xFF, 0xFF]); return }
            let bytes = Array(text.utf8)
            let n = UInt32(bytes.count)
            out.append(contentsOf: [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)])
            out.append(contentsOf: bytes)
        }
        field(String(e.chainSeq))
        if e.format != 1 {
            field(String(e.seq))
            field(e.transactionID)
        }
        field(String(e.occurredAtMicros))
        field(e.actorRole)
        field(e.actor)
        field(e.action)
        field(e.subject)
        field(e.payload)
        field(e.requestID)
        field(e.traceID)
        field(e.clientAddress)
        if e.format != 1 { field(e.peerAddress) }
        field(e.correctsSeq.map { String($0) })
        return out
    }

    /// The hash a row must carry, given the previous row's hash.
    public static func hash(of event: AuditEvent, previous: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(data: canonical(event))
        return Array(hasher.finalize())
    }
}

/// What is wrong with the chain at one place.
public struct AuditChainProblem: Sendable, Hashable, CustomStringConvertible {
    /// The kinds of damage verification can see.
    public enum Kind: String, Sendable, Hashable {
        /// The row's content does not hash to its stored hash: edited.
        case contentChanged = "content_changed"
        /// The row does not point at the previous row's hash: a row before it was removed, replaced or moved.
        case brokenLink = "broken_link"
        /// A chain position is missing: a row was deleted.
        case missingRow = "missing_row"
        /// The database's head does not match the last row: rows were removed from the end.
        case headMismatch = "head_mismatch"
        /// An exported checkpoint does not match the row at its position: the chain was rewritten.
        case checkpointMismatch = "checkpoint_mismatch"
        /// An exported checkpoint names a position the chain no longer reaches: rows were removed.
        case checkpointBeyondChain = "checkpoint_beyond_chain"
        /// A chain entry points at an event row that is gone: the row was deleted.
        case eventMissing = "event_missing"
        /// An event row is in no chain entry although it should be: older than the sealing bound,
        /// or behind the sealer's place without being a gap it waits for (inserted around the sealer, or its entry deleted).
        case unchainedRow = "unchained_row"
        /// A covered record's fields differ from the last event that wrote it, or a covered row has
        /// no event at all, or an event names a row that is gone.
        case recordMismatch = "record_mismatch"
        case archiveAnchorMismatch = "archive_anchor_mismatch"
    }

    /// The kind.
    public var kind: Kind
    /// The chain position of the first row that does not match.
    public var chainSeq: Int64
    /// That row's identity value, when the row exists.
    public var seq: Int64?
    /// A sentence for the auditor.
    public var detail: String

    /// Creates a problem.
    public init(kind: Kind, chainSeq: Int64, seq: Int64?, detail: String) {
        self.kind = kind
        self.chainSeq = chainSeq
        self.seq = seq
        self.detail = detail
    }

    public var description: String {
        "chain_seq \(chainSeq)\(seq.map { " (seq \($0))" } ?? ""): \(kind.rawValue): \(detail)"
    }
}

/// An exported head of the chain, kept away from the database host.
public struct AuditCheckpoint: Codable, Sendable, Hashable {
    /// Always `bloodmatch-audit-checkpoint/1`.
    public var format: String
    /// The chain position of the head.
    public var chainSeq: Int64
    /// Its hash, lower-case hex.
    public var rowHash: String
    /// When the checkpoint was taken (database clock), ISO 8601 UTC.
    public var takenAt: String
    /// The PostgreSQL cluster's system identifier, so a checkpoint is never compared with another cluster.
    public var databaseSystemIdentifier: String

    /// Creates a checkpoint.
    public init(chainSeq: Int64, rowHash: String, takenAt: String, databaseSystemIdentifier: String) {
        self.format = "bloodmatch-audit-checkpoint/1"
        self.chainSeq = chainSeq
        self.rowHash = rowHash
        self.takenAt = takenAt
        self.databaseSystemIdentifier = databaseSystemIdentifier
    }

    enum CodingKeys: String, CodingKey {
        case format
        case chainSeq = "chain_seq"
        case rowHash = "row_hash"
        case takenAt = "taken_at"
        case databaseSystemIdentifier = "database_system_identifier"
    }
}

/// Checks rows in chain order as they stream past; pure, so it is tested without a database.
public struct AuditChainVerifier: Sendable {
    /// Rows checked so far.
    public private(set) var rowsChecked = 0
    /// The first problem found; verification stops looking after it.
    public private(set) var problem: AuditChainProblem?
    /// The last row checked.
    public private(set) var last: (chainSeq: Int64, hash: [UInt8])?
    private var checkpoints: [Int64: AuditCheckpoint]
    /// Checkpoints matched so far.
    public private(set) var checkpointsMatched = 0

    /// Starts at the beginning of the chain, or after `start` (a trusted position and hash, e.g. a checkpoint).
    public init(start: (chainSeq: Int64, hash: [UInt8])? = nil, checkpoints: [AuditCheckpoint] = []) {
        last = start
        self.checkpoints = Dictionary(checkpoints.map { ($0.chainSeq, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Records that the chain entry at `chainSeq` points at event `seq`, which no longer exists.
    public mutating func missingEvent(chainSeq: Int64, seq: Int64) {
        guard problem == nil else { return }
        problem = AuditChainProblem(
            kind: .eventMissing, chainSeq: chainSeq, seq: seq,
            detail: "the chain entry at position \(chainSeq) names event seq \(seq), which is not in bm.event_log: the event was deleted")
    }

    /// Records that the hash the attached chain starts from (the last of the segments moved to
    /// their archives) is not the one the chain's own closing event gives.
    public mutating func anchorMismatch(chainSeq: Int64, detail: String) {
        guard problem == nil else { return }
        problem = AuditChainProblem(kind: .archiveAnchorMismatch, chainSeq: chainSeq, seq: nil, detail: detail)
    }

    /// Checks the next row; returns false once a problem has been found.
    @discardableResult
    public mutating func check(_ event: AuditEvent) -> Bool {
        guard problem == nil else { return false }
        let expectedSeq = (last?.chainSeq ?? 0) + 1
        if event.chainSeq != expectedSeq {
            problem = AuditChainProblem(
                kind: .missingRow, chainSeq: expectedSeq, seq: nil,
                detail: "expected chain position \(expectedSeq), found \(event.chainSeq) (seq \(event.seq)): a row is missing")
            return false
        }
        let previous = last?.hash ?? AuditChain.genesis
        if event.prevHash != previous {
            problem = AuditChainProblem(
                kind: .brokenLink, chainSeq: event.chainSeq, seq: event.seq,
                detail: "prev_hash \(hex(event.prevHash)) does not equal the previous row's hash \(hex(previous))")
            return false
        }
        let computed = AuditChain.hash(of: event, previous: previous)
        if computed != event.rowHash {
            problem = AuditChainProblem(
                kind: .contentChanged, chainSeq: event.chainSeq, seq: event.seq,
                detail: "content hashes to \(hex(computed)) but the row carries \(hex(event.rowHash)) (action \(event.action), subject \(event.subject))")
            return false
        }
        if let checkpoint = checkpoints[event.chainSeq] {
            guard checkpoint.rowHash == hex(event.rowHash) else {
                problem = AuditChainProblem(
                    kind: .checkpointMismatch, chainSeq: event.chainSeq, seq: event.seq,
                    detail: "checkpoint taken \(checkpoint.takenAt) says \(checkpoint.rowHash), the chain now has \(hex(event.rowHash)): the chain was rewritten")
                return false
            }
            checkpointsMatched += 1
        }
        rowsChecked += 1
        last = (event.chainSeq, event.rowHash)
        return true
    }

    /// Checks the end of the chain against the database's head and the checkpoints not yet reached.
    public mutating func finish(head: (chainSeq: Int64, hash: [UInt8])) {
        guard problem == nil else { return }
        let lastSeq = last?.chainSeq ?? 0
        if head.chainSeq != lastSeq || (lastSeq > 0 && head.hash != last?.hash) {
            problem = AuditChainProblem(
                kind: .headMismatch, chainSeq: head.chainSeq, seq: nil,
                detail: "the head says position \(head.chainSeq) hash \(hex(head.hash)); the last row is position \(lastSeq)")
            return
        }
        if let beyond = checkpoints.values.filter({ $0.chainSeq > lastSeq }).min(by: { $0.chainSeq < $1.chainSeq }) {
            problem = AuditChainProblem(
                kind: .checkpointBeyondChain, chainSeq: beyond.chainSeq, seq: nil,
                detail: "checkpoint taken \(beyond.takenAt) names position \(beyond.chainSeq), but the chain ends at \(lastSeq): rows were removed")
        }
    }
}

/// Lower-case hex.
public func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}
