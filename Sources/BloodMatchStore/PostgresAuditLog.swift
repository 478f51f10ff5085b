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
    /// The first problem of the chain itself, if any.
    public var problem: AuditChainProblem?
    /// Committed events not yet sealed into the chain (the tail the sealer has still to reach).
    public var unchainedRows: Int = 0
    /// Age of the oldest of them, seconds (database clock).
    public var oldestUnchainedSeconds: Double?
    /// Covered records whose fields differ from the chain (first `recordLimit`).
    public var recordMismatches: [AuditRecordMismatch] = []
    /// Covered rows compared with the chain.
    public var recordsChecked: Int = 0
    /// Wall time of the verification.
    public var seconds: Double
    /// Of which the record comparison.
    public var recordSeconds: Double = 0
    /// The last chain position of the segments moved to their archives (nil: none); the chain in
    /// the database, verified here, starts after it. `audit verify-archive` checks those files.
    public var archivedThroughChainSeq: Int64?
    /// How many segments have been moved out (they are the first ones, in order).
    public var archivedSegments: Int?

    /// True when nothing is wrong.
    public var isIntact: Bool { problem == nil && recordMismatches.isEmpty }
}

/// One covered record that does not match the event that last wrote it.
public struct AuditRecordMismatch: Sendable, Hashable, CustomStringConvertible {
    /// The table, e.g. `distributions`.
    public var table: String
    /// The row's primary key values joined by `/`.
    public var key: String
    /// The field (column) that differs, or `(row)` when the whole row is missing or has no event.
    public var field: String
    /// The value the chain holds (values over 64 characters as `sha256:<hex>`), nil when none.
    public var expected: String?
    /// The value the row holds now, nil when none.
    public var actual: String?
    /// The event that last wrote the row, when there is one.
    public var eventSeq: Int64?

    /// Creates a mismatch.
    public init(table: String, key: String, field: String, expected: String?, actual: String?, eventSeq: Int64?) {
        self.table = table
        self.key = key
        self.field = field
        self.expected = expected
        self.actual = actual
        self.eventSeq = eventSeq
    }

    /// What kind of damage: `field_changed`, `row_not_in_chain` or `row_deleted`.
    public var kind: String {
        if field != "(row)" { return "field_changed" }
        return eventSeq == nil ? "row_not_in_chain" : "row_deleted"
    }

    public var description: String {
        switch kind {
        case "row_not_in_chain": "\(table) row \(key): row_not_in_chain: no event ever recorded this row"
        case "row_deleted": "\(table) row \(key): row_deleted: event seq \(eventSeq ?? 0) recorded it, the table no longer has it"
        default: "\(table) row \(key): field \(field) changed: the chain (event seq \(eventSeq ?? 0)) has \(expected.map { "'\($0)'" } ?? "null"), the row has \(actual.map { "'\($0)'" } ?? "null")"
        }
    }
}

/// A new event to append. Its number, the database clock, the login, the connection address and
/// the acting identity are set by the database (migration 0009), whatever is sent; the chain link
/// is added when the row is sealed. Callers supply what happened.
public struct NewAuditEvent: Sendable {
    /// Who the writer says acted: honoured only for the API service speaking for a hospital
    /// (`hospital:<id>` or `anonymous`); an operator or job login is always recorded as itself.
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
    /// The HTTP client's address (kept only when the API service writes it; stored as `peer_addr`).
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

    /// The event columns after the chain's (`c.chain_seq, c.format` first), for `FROM bm.event_log e`
    /// joined with `bm.event_chain c`.
    static let columns = """
        coalesce(c.chain_seq, 0), coalesce(c.format, 2)::int, e.seq, e.xid::text, (extract(epoch FROM e.occurred_at) * 1000000)::bigint,
        e.actor_role, e.actor, e.action, e.subject, e.payload::text, e.request_id, e.trace_id, e.client_addr, e.peer_addr,
        e.corrects_seq, coalesce(c.prev_hash, ''::bytea), coalesce(c.row_hash, ''::bytea)
        """

    /// Appends one event on `conn` (inside the caller's transaction); returns its `seq` (its chain
    /// position is given when it is sealed).
    @discardableResult
    public static func append(_ event: NewAuditEvent, on conn: PostgresConnection, logger: Logger) async throws -> Int64 {
        var position: Int64 = 0
        for try await (seq,) in try await conn.query("""
            INSERT INTO bm.event_log (actor, action, subject, payload, request_id, trace_id, peer_addr, corrects_seq)
            VALUES (\(event.actor), \(event.action), \(event.subject), \(event.payloadJSON)::jsonb, \(event.requestID),
              \(event.traceID), \(event.clientAddress), \(event.correctsSeq))
            RETURNING seq
            """, logger: logger).decode((Int64,).self) { position = seq }
        return position
    }

    /// Seals committed events into the chain until none are waiting (at most `rounds` passes of
    /// `batch` rows); returns how many were sealed and the head position. A concurrent sealer makes
    /// this return early: its pass covers the same rows. Throws `AuditHeadMismatchError` when the
    /// database refuses to extend a chain whose head is not its last entry.
    @discardableResult
    public func seal(batch: Int = 50_000, rounds: Int = 100) async throws -> (sealed: Int, head: Int64) {
        var total = 0
        var head: Int64 = 0
        for _ in 0..<max(1, rounds) {
            var more = false
            for try await (n, h, waiting) in try await database.client.query(
                "SELECT sealed, head_chain_seq, more_waiting FROM bm.audit_seal(\(batch)::int)",
                logger: database.logger).decode((Int, Int64, Bool).self) {
                if n < 0 {
                    throw AuditHeadMismatchError(detail: "the audit head (position \(h)) is not the last chain entry: sealing stopped; run `bloodmatch audit verify`")
                }
                total += n
                head = h
                // More waits when the pass stopped at its limit or closed a segment (migration 0014).
                more = waiting
            }
            if !more { break }
        }
        await extendSegments()
        return (total, head)
    }

    /// Makes event-log segments ahead of need (`bm.audit_extend_segments()`: at least two wholly
    /// unused beyond the number in use); returns how many it made. A failure is logged, not
    /// thrown: the events are sealed already, the next pass tries again, and the metric
    /// `bloodmatch_audit_segments_ahead` with its alert says when the margin shrinks.
    @discardableResult
    public func extendSegments() async -> Int {
        do {
            var made = 0
            for try await (n,) in try await database.client.query("SELECT bm.audit_extend_segments()", logger: database.logger)
                .decode((Int,).self) { made = n }
            if made > 0 { database.logger.info("audit segments made ahead", metadata: ["segments": "\(made)"]) }
            return made
        } catch {
            database.logger.warning("could not make audit segments ahead; the next pass tries again",
                                    metadata: ["error": "\(String(reflecting: error).prefix(300))"])
            return 0
        }
    }

    /// Appends one event in a transaction of its own.
    @discardableResult
    public func append(_ event: NewAuditEvent) async throws -> Int64 {
        let logger = database.logger
        return try await database.withTransaction { conn in try await Self.append(event, on: conn, logger: logger) }
    }

    /// Events about a subject (exact) or any of several subjects, in chain order.
    public func events(subjects: [String]) async throws -> [AuditEvent] {
        try await fetch(where: "e.subject = ANY($1::text[])", bind: subjects)
    }

    /// The event at a chain position.
    public func event(chainSeq: Int64) async throws -> AuditEvent? {
        try await fetch(where: "c.chain_seq = $1", bind: chainSeq).first
    }

    /// Events whose payload mentions a DIN anywhere (decisions, reservations, issues), in chain order.
    public func events(mentioning din: String) async throws -> [AuditEvent] {
        try await fetch(where: "e.action <> 'record.written' AND e.payload::text LIKE '%' || $1 || '%'", bind: din)
    }

    private func fetch<B: PostgresEncodable & Sendable>(where condition: String, bind: B) async throws -> [AuditEvent] {
        var binds = PostgresBindings()
        try binds.append(bind)
        let query = PostgresQuery(
            unsafeSQL: "SELECT \(Self.columns) FROM bm.event_log e LEFT JOIN bm.event_chain c ON c.seq = e.seq WHERE \(condition) ORDER BY e.seq",
            binds: binds)
        var out: [AuditEvent] = []
        for try await row in try await database.client.query(query, logger: database.logger).decode(Row.self) {
            out.append(Self.event(row))
        }
        return out
    }

    typealias Row = (Int64, Int, Int64, String?, Int64, String, String, String, String, String, String?, String?, String?, String?,
                     Int64?, ByteBuffer, ByteBuffer)

    static func event(_ r: Row) -> AuditEvent {
        AuditEvent(chainSeq: r.0, format: r.1, seq: r.2, transactionID: r.3, occurredAtMicros: r.4, actorRole: r.5, actor: r.6,
                   action: r.7, subject: r.8, payload: r.9, requestID: r.10, traceID: r.11, clientAddress: r.12, peerAddress: r.13,
                   correctsSeq: r.14, prevHash: Array(r.15.readableBytesView), rowHash: Array(r.16.readableBytesView))
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
}

extension PostgresAuditLog {
    /// Records `configuration.changed` for `name` when `sha256` differs from the last one recorded
    /// (the previous value goes in the payload); returns whether it recorded. Every process that
    /// loads a policy or settings file calls this, so the log shows which rules were in force when.
    @discardableResult
    public func recordConfiguration(name: String, path: String, sha256: String, version: String?, actor: String) async throws -> Bool {
        let logger = database.logger
        let subject = "configuration:" + name
        return try await database.withTransaction { conn in
            _ = try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\(subject)))", logger: logger).collect()
            var previous: String?
            for try await (sha,) in try await conn.query("""
                SELECT payload->>'sha256' FROM bm.event_log WHERE subject = \(subject) ORDER BY seq DESC LIMIT 1
                """, logger: logger).decode((String?,).self) { previous = sha }
            guard previous != sha256 else { return false }
            let payload = #"{"path":\#(jsonString(path)),"sha256":"\#(sha256)","version":\#(version.map(jsonString) ?? "null"),"previous_sha256":\#(previous.map(jsonString) ?? "null")}"#
            try await Self.append(NewAuditEvent(actor: actor, action: "configuration.changed", subject: subject, payloadJSON: payload),
                                  on: conn, logger: logger)
            return true
        }
    }
}

extension PostgresAuditLog {
    /// Records a verification's result as an `audit.verified` event (what the metrics and the
    /// "audit verification failed" alert read).
    public func recordVerification(_ report: AuditVerificationReport, actor: String) async throws {
        var payload = #"{"intact":\#(report.isIntact),"rows_checked":\#(report.rowsChecked),"head_chain_seq":\#(report.headChainSeq),"checkpoints_matched":\#(report.checkpointsMatched),"unchained_rows":\#(report.unchainedRows),"records_checked":\#(report.recordsChecked),"record_mismatches":\#(report.recordMismatches.count)"#
        if let p = report.problem {
            payload += #","problem":{"kind":"\#(p.kind.rawValue)","chain_seq":\#(p.chainSeq),"detail":\#(jsonString(p.detail))}"#
        }
        if let m = report.recordMismatches.first {
            payload += #","first_record_mismatch":{"table":\#(jsonString(m.table)),"key":\#(jsonString(m.key)),"field":\#(jsonString(m.field)),"kind":"\#(m.kind)"}"#
        }
        payload += "}"
        try await append(NewAuditEvent(actor: actor, action: "audit.verified", subject: "audit:chain", payloadJSON: payload))
    }
}
