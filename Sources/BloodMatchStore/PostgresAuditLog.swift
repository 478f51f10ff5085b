import Foundation
import Logging
import PostgresNIO

/// What `verify` found.
public struct AuditVerificationReport: Sendable {
    /// Rows whose hash and link were recomputed.
    public var rowsChecked: Int
    /// First and last chain positions checked.
    public var firstChainSeq: Int64?
    /// Last chain position checked.
    public var lastChainSeq: Int64?
    /// The database's head position and hash.
    public var headChainSeq: Int64
    /// Head hash, hex.
    public var headHash: String
    /// Checkpoints given, and how many matched a row.
    public var checkpointsGiven: Int
    /// Checkpoints that matched.
    public var checkpointsMatched: Int
    /// The first problem, if any.
    public var problem: AuditChainProblem?
    /// Wall time of the verification.
    public var seconds: Double

    /// True when nothing is wrong.
    public var isIntact: Bool { problem == nil }
}

/// A new event to append. The chain, the database clock and the writing role are filled in by the
/// database (migration 0002); callers supply what happened.
public struct NewAuditEvent: Sendable {
    /// Operator, job, or `hospital:<id>`.
    public var actor: String
    /// What happened.
    public var action: String
    /// What it happened to.
    public var subject: String
    /// Details as a JSON object text.
    public var payloadJSON: String
    /// Client request id.
    public var requestID: String?
    /// W3C trace id.
    public var traceID: String?
    /// Where the request came from, if not this connection.
    public var clientAddress: String?
    /// The event this one corrects.
    public var correctsSeq: Int64?

    /// Creates an event.
    public init(actor: String, action: String, subject: String, payloadJSON: String = "{}", requestID: String? = nil,
                traceID: String? = nil, clientAddress: String? = nil, correctsSeq: Int64? = nil) {
        self.actor = actor
        self.action = action
        self.subject = subject
        self.payloadJSON = payloadJSON
        self.requestID = requestID
        self.traceID = traceID
        self.clientAddress = clientAddress
        self.correctsSeq = correctsSeq
    }
}

/// The audit log in PostgreSQL: appending, reading, verifying the hash chain, exporting checkpoints.
public struct PostgresAuditLog: Sendable {
    /// The pool (any role may read; the writing roles may only INSERT).
    public let database: Database

    /// Creates the log.
    public init(database: Database) { self.database = database }

    static let columns = """
        chain_seq, seq, (extract(epoch FROM occurred_at) * 1000000)::bigint, actor_role, actor, action, subject,
        payload::text, request_id, trace_id, client_addr, corrects_seq, prev_hash, row_hash
        """

    /// Appends one event on `conn` (inside the caller's transaction); returns its chain position.
    @discardableResult
    public static func append(_ event: NewAuditEvent, on conn: PostgresConnection, logger: Logger) async throws -> Int64 {
        var position: Int64 = 0
        for try await (chainSeq,) in try await conn.query("""
            INSERT INTO bm.event_log (actor, action, subject, payload, request_id, trace_id, client_addr, corrects_seq)
            VALUES (\(event.actor), \(event.action), \(event.subject), \(event.payloadJSON)::jsonb, \(event.requestID),
              \(event.traceID), \(event.clientAddress), \(event.correctsSeq))
            RETURNING chain_seq
            """, logger: logger).decode((Int64,).self) { position = chainSeq }
        return position
    }

    /// Appends one event in a transaction of its own.
    @discardableResult
    public func append(_ event: NewAuditEvent) async throws -> Int64 {
        let logger = database.logger
        return try await database.withTransaction { conn in try await Self.append(event, on: conn, logger: logger) }
    }

    /// Events about a subject (exact) or any of several subjects, in chain order.
    public func events(subjects: [String]) async throws -> [AuditEvent] {
        try await fetch(where: "subject = ANY($1::text[])", bind: subjects)
    }

    /// Events whose payload mentions a DIN anywhere (decisions, reservations, issues), in chain order.
    public func events(mentioning din: String) async throws -> [AuditEvent] {
        try await fetch(where: "payload::text LIKE '%' || $1 || '%'", bind: din)
    }

    private func fetch<B: PostgresEncodable & Sendable>(where condition: String, bind: B) async throws -> [AuditEvent] {
        var binds = PostgresBindings()
        try binds.append(bind)
        let query = PostgresQuery(unsafeSQL: "SELECT \(Self.columns) FROM bm.event_log WHERE \(condition) ORDER BY chain_seq", binds: binds)
        var out: [AuditEvent] = []
        for try await row in try await database.client.query(query, logger: database.logger).decode(Row.self) {
            out.append(Self.event(row))
        }
        return out
    }

    typealias Row = (Int64, Int64, Int64, String, String, String, String, String, String?, String?, String?, Int64?, ByteBuffer, ByteBuffer)

    static func event(_ r: Row) -> AuditEvent {
        AuditEvent(chainSeq: r.0, seq: r.1, occurredAtMicros: r.2, actorRole: r.3, actor: r.4, action: r.5, subject: r.6,
                   payload: r.7, requestID: r.8, traceID: r.9, clientAddress: r.10, correctsSeq: r.11,
                   prevHash: Array(r.12.readableBytesView), rowHash: Array(r.13.readableBytesView))
    }

    /// The head as the database keeps it.
    public func head() async throws -> (chainSeq: Int64, hash: [UInt8]) {
        var head: (Int64, [UInt8]) = (0, AuditChain.genesis)
        for try await (seq, hash) in try await database.client.query(
            "SELECT chain_seq, row_hash FROM bm.audit_head", logger: database.logger).decode((Int64, ByteBuffer).self) {
            head = (seq, Array(hash.readableBytesView))
        }
        return head
    }

    /// Recomputes the chain from `fromChainSeq` (1 = the beginning) to the head, in one read-only
    /// snapshot, checking every link, every hash, the head, and the given checkpoints.
    ///
    /// Starting later than 1 trusts the stored hash of the row before the start; a checkpoint at
    /// or before the start makes that trust explicit (its hash must match).
    public func verify(fromChainSeq: Int64 = 1, checkpoints: [AuditCheckpoint] = []) async throws -> AuditVerificationReport {
        let clock = ContinuousClock.now
        let logger = database.logger
        let from = max(1, fromChainSeq)
        return try await database.client.withConnection { conn in
            try await database.transaction(on: conn) { conn in
                _ = try await conn.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger).collect()
                var start: (chainSeq: Int64, hash: [UInt8])?
                if from > 1 {
                    for try await (seq, hash) in try await conn.query(
                        "SELECT chain_seq, row_hash FROM bm.event_log WHERE chain_seq = \(from - 1)",
                        logger: logger).decode((Int64, ByteBuffer).self) {
                        start = (seq, Array(hash.readableBytesView))
                    }
                    if start == nil { start = (from - 1, AuditChain.genesis) }
                }
                var verifier = AuditChainVerifier(start: start, checkpoints: checkpoints)
                var first: Int64?
                let rows = try await conn.query(PostgresQuery(
                    unsafeSQL: "SELECT \(Self.columns) FROM bm.event_log WHERE chain_seq >= \(from) ORDER BY chain_seq"),
                    logger: logger)
                for try await row in rows.decode(Row.self) {
                    if first == nil { first = row.0 }
                    if !verifier.check(Self.event(row)) { break }
                }
                var head: (chainSeq: Int64, hash: [UInt8]) = (0, AuditChain.genesis)
                for try await (seq, hash) in try await conn.query(
                    "SELECT chain_seq, row_hash FROM bm.audit_head", logger: logger).decode((Int64, ByteBuffer).self) {
                    head = (seq, Array(hash.readableBytesView))
                }
                if verifier.problem == nil { verifier.finish(head: head) }
                let elapsed = ContinuousClock.now - clock
                return AuditVerificationReport(
                    rowsChecked: verifier.rowsChecked, firstChainSeq: first, lastChainSeq: verifier.last?.chainSeq,
                    headChainSeq: head.chainSeq, headHash: hex(head.hash), checkpointsGiven: checkpoints.count,
                    checkpointsMatched: verifier.checkpointsMatched, problem: verifier.problem,
                    seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            }
        }
    }

    /// The current head as a checkpoint to export, after checking that it is the last row's hash;
    /// the export itself is also recorded as an event (so the next checkpoint covers it).
    public func checkpoint(actor: String) async throws -> AuditCheckpoint {
        let logger = database.logger
        return try await database.withTransaction { conn in
            var systemID = ""
            for try await (id,) in try await conn.query(
                "SELECT system_identifier::text FROM pg_control_system()", logger: logger).decode((String,).self) { systemID = id }
            var head: (Int64, [UInt8], Date)?
            for try await (seq, hash, at) in try await conn.query("""
                SELECT e.chain_seq, e.row_hash, now() FROM bm.event_log e JOIN bm.audit_head h
                  ON h.chain_seq = e.chain_seq AND h.row_hash = e.row_hash
                """, logger: logger).decode((Int64, ByteBuffer, Date).self) {
                head = (seq, Array(hash.readableBytesView), at)
            }
            guard let head else {
                throw AuditHeadMismatchError(detail: "the head of bm.audit_head is not the hash of any row; run `bloodmatch audit verify`")
            }
            let checkpoint = AuditCheckpoint(chainSeq: head.0, rowHash: hex(head.1), takenAt: iso(head.2),
                                             databaseSystemIdentifier: systemID)
            try await Self.append(NewAuditEvent(
                actor: actor, action: "audit.checkpoint", subject: "audit:chain",
                payloadJSON: #"{"chain_seq":\#(checkpoint.chainSeq),"row_hash":"\#(checkpoint.rowHash)"}"#), on: conn, logger: logger)
            return checkpoint
        }
    }
}

/// The database's head does not point at a row: the chain was damaged at its end.
public struct AuditHeadMismatchError: Error, Sendable, CustomStringConvertible {
    /// What was seen.
    public var detail: String
    public var description: String { detail }
}

extension PostgresAuditLog {
    /// Streams events with chain positions in `[from, to]` (optionally one subject) to `body`, in chain order.
    public func export(from: Int64, to: Int64, subject: String?, _ body: (AuditEvent) throws -> Void) async throws {
        let rows = try await database.client.query("""
            SELECT \(unescaped: Self.columns) FROM bm.event_log
            WHERE chain_seq BETWEEN \(from) AND \(to) AND (\(subject)::text IS NULL OR subject = \(subject))
            ORDER BY chain_seq
            """, logger: database.logger)
        for try await row in rows.decode(Row.self) { try body(Self.event(row)) }
    }
}
