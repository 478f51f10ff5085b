import Foundation
import Logging
import PostgresNIO

extension PostgresAuditLog {
    /// Recomputes the chain from `fromChainSeq` (1 = the beginning) to the head, in one read-only
    /// snapshot: every link, every hash, the head, the given checkpoints; then the unchained tail
    /// (rows the sealer has not reached: none may be older than `maxUnchainedSeconds`, none may be
    /// behind its place unless it is a gap it waits for) and every covered record against the event that last wrote it.
    ///
    /// With `sealFirst` the committed tail is sealed before the snapshot is taken. Starting later
    /// than 1 trusts the stored hash of the row before the start; a checkpoint at or before the start
    /// makes that trust explicit (its hash must match).
    public func verify(fromChainSeq: Int64 = 1, checkpoints: [AuditCheckpoint] = [], sealFirst: Bool = true,
                       maxUnchainedSeconds: Double = 60, recordLimit: Int = 100) async throws -> AuditVerificationReport {
        let clock = ContinuousClock.now
        // A damaged end is not sealed over; verification then names it.
        if sealFirst { _ = try? await seal() }
        let logger = database.logger
        return try await database.client.withConnection { conn in
            try await database.transaction(on: conn, readOnlySnapshot: true) { conn in
                var from = max(1, fromChainSeq)
                var start: (chainSeq: Int64, hash: [UInt8])?
                // Segments moved to their archives: the attached chain starts after the newest of
                // them, from the hash its row records (checked below against its closing event).
                let anchor = try await self.archivedAnchor(on: conn)
                if let anchor, from <= anchor.chainLast + 1 {
                    from = anchor.chainLast + 1
                    start = (anchor.chainLast, anchor.hash)
                } else if from > 1 {
                    for try await (seq, hash) in try await conn.query(
                        "SELECT chain_seq, row_hash FROM bm.event_chain WHERE chain_seq = \(from - 1)",
                        logger: logger).decode((Int64, ByteBuffer).self) {
                        start = (seq, Array(hash.readableBytesView))
                    }
                    if start == nil { start = (from - 1, AuditChain.genesis) }
                }
                var verifier = AuditChainVerifier(start: start, checkpoints: checkpoints)
                // The chain is walked in position order by its primary key and each event fetched by
                // its own: no temporary files, however long the log. A hash join of the two tables
                // writes the whole log to temporary files first.
                _ = try await conn.query("SET LOCAL enable_hashjoin = off", logger: logger).collect()
                _ = try await conn.query("SET LOCAL enable_mergejoin = off", logger: logger).collect()
                var first: Int64?
                var firstSeq: Int64?
                let rows = try await conn.query(PostgresQuery(unsafeSQL: """
                    SELECT (e.seq IS NULL), c.seq, \(Self.columns)
                    FROM bm.event_chain c LEFT JOIN bm.event_log e ON e.seq = c.seq
                    WHERE c.chain_seq >= \(from) ORDER BY c.chain_seq
                    """), logger: logger)
                for try await row in rows.decode(VerifyRow.self) {
                    let chained = Self.event(Self.eventRow(row))
                    if first == nil { (first, firstSeq) = (chained.chainSeq, row.1) }
                    if row.0 {
                        verifier.missingEvent(chainSeq: chained.chainSeq, seq: row.1)
                        break
                    }
                    if !verifier.check(chained) { break }
                }
                _ = try await conn.query("RESET enable_hashjoin", logger: logger).collect()
                _ = try await conn.query("RESET enable_mergejoin", logger: logger).collect()
                var head: (chainSeq: Int64, hash: [UInt8]) = (0, AuditChain.genesis)
                for try await (seq, hash) in try await conn.query(
                    "SELECT chain_seq, row_hash FROM bm.audit_head", logger: logger).decode((Int64, ByteBuffer).self) {
                    head = (seq, Array(hash.readableBytesView))
                }
                if verifier.problem == nil { verifier.finish(head: head) }
                if let anchor, verifier.problem == nil {
                    let closing = try await self.closingRecord(segment: anchor.segment, on: conn)
                    if closing?.chainLast != anchor.chainLast || closing?.hash != hex(anchor.hash) {
                        verifier.anchorMismatch(chainSeq: anchor.chainLast, detail: closing.map {
                            "segment \(anchor.segment), moved to its archive, ends at position \(anchor.chainLast) with hash \(hex(anchor.hash)) in bm.audit_segments, but its closing event in the chain says position \($0.chainLast) hash \($0.hash)"
                        } ?? "segment \(anchor.segment) was moved to its archive, but no closing event of it is in the chain")
                    }
                }
                var report = AuditVerificationReport(
                    rowsChecked: verifier.rowsChecked, firstChainSeq: first, lastChainSeq: verifier.last?.chainSeq,
                    headChainSeq: head.chainSeq, headHash: hex(head.hash), checkpointsGiven: checkpoints.count,
                    checkpointsMatched: verifier.checkpointsMatched, problem: verifier.problem, seconds: 0)
                report.archivedThroughChainSeq = anchor?.chainLast
                report.archivedSegments = anchor?.segment
                try await Self.checkTail(on: conn, fromSeq: from > 1 ? firstSeq : nil, bound: maxUnchainedSeconds, into: &report,
                                         logger: logger)
                let recordClock = ContinuousClock.now
                try await Self.checkRecords(on: conn, limit: recordLimit, into: &report, logger: logger)
                report.recordSeconds = Self.seconds(ContinuousClock.now - recordClock)
                report.seconds = Self.seconds(ContinuousClock.now - clock)
                return report
            }
        }
    }

    typealias VerifyRow = (Bool, Int64, Int64, Int, Int64?, String?, Int64?, String?, String?, String?, String?, String?, String?,
                           String?, String?, String?, Int64?, ByteBuffer, ByteBuffer)

    /// The event columns of a verification row; a chain entry whose event is gone reads as empty text.
    static func eventRow(_ r: VerifyRow) -> Row {
        (r.2, r.3, r.4 ?? r.1, r.5, r.6 ?? 0, r.7 ?? "", r.8 ?? "", r.9 ?? "", r.10 ?? "", r.11 ?? "", r.12, r.13, r.14, r.15,
         r.16, r.17, r.18)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// The rows the sealer has not reached: how many, how old; a problem when one is older than the
    /// bound, or lies behind the sealer's place and is not a gap it waits for (it can never be sealed).
    ///
    /// Only rows from event number `fromSeq` on are looked at (the verified range; nil: all), and
    /// by index: the tail is the rows from the sealer's place on plus its gaps, and a row stranded
    /// behind the place shows as more events than chain entries and gaps in the range (two
    /// index-only counts); only then are the range's rows matched one by one to name it. Before,
    /// one anti-join read the whole log, so even `--since-checkpoint` cost a pass over every row.
    static func checkTail(on conn: PostgresConnection, fromSeq: Int64?, bound: Double, into report: inout AuditVerificationReport,
                          logger: Logger) async throws {
        let from = fromSeq ?? Int64.min
        for try await (count, oldest, oldestSeq) in try await conn.query("""
            SELECT count(*)::int, extract(epoch FROM clock_timestamp() - min(x.occurred_at))::float8, min(x.seq)
            FROM (SELECT e.seq, e.occurred_at FROM bm.event_log e WHERE e.seq >= (SELECT next_seq FROM bm.audit_head)
                  UNION ALL
                  SELECT e.seq, e.occurred_at FROM bm.audit_gaps g
                    CROSS JOIN LATERAL (SELECT * FROM bm.event_log e WHERE e.seq = g.seq OFFSET 0) e) x
            WHERE NOT EXISTS (SELECT 1 FROM bm.event_chain c WHERE c.seq = x.seq OFFSET 0)
            """, logger: logger).decode((Int, Double?, Int64?).self) {
            report.unchainedRows = count
            report.oldestUnchainedSeconds = oldest
            guard report.problem == nil, let oldest, oldest > bound, let oldestSeq else { continue }
            report.problem = AuditChainProblem(
                kind: .unchainedRow, chainSeq: report.headChainSeq, seq: oldestSeq,
                detail: "\(count) events are unsealed, the oldest (seq \(oldestSeq)) for \(Int(oldest)) s, over the \(Int(bound)) s bound: the sealer is not running (`bloodmatch audit seal`)")
        }
        var surplus = 0
        for try await (n,) in try await conn.query("""
            SELECT (SELECT count(*) FROM bm.event_log e WHERE e.seq >= \(from) AND e.seq < h.next_seq)
                 - (SELECT count(*) FROM bm.event_chain c WHERE c.seq >= \(from) AND c.seq < h.next_seq)
                 - (SELECT count(*) FROM bm.audit_gaps g WHERE g.seq >= \(from) AND g.seq < h.next_seq
                      AND EXISTS (SELECT 1 FROM bm.event_log e WHERE e.seq = g.seq)
                      AND NOT EXISTS (SELECT 1 FROM bm.event_chain c WHERE c.seq = g.seq))
            FROM bm.audit_head h
            """, logger: logger).decode((Int64,).self) { surplus = Int(n) }
        guard surplus > 0 else { return }
        // Some row in the range is in no chain entry: name the first.
        for try await (stranded,) in try await conn.query("""
            SELECT min(e.seq) FROM bm.event_log e CROSS JOIN bm.audit_head h
            WHERE e.seq >= \(from) AND e.seq < h.next_seq
              AND NOT EXISTS (SELECT 1 FROM bm.event_chain c WHERE c.seq = e.seq)
              AND NOT EXISTS (SELECT 1 FROM bm.audit_gaps g WHERE g.seq = e.seq)
            """, logger: logger).decode((Int64?,).self) {
            guard let stranded else { continue }
            // A stranded row outranks an old unsealed tail: it can never be sealed.
            if report.problem == nil || report.problem?.kind == .unchainedRow {
                report.problem = AuditChainProblem(
                    kind: .unchainedRow, chainSeq: report.headChainSeq, seq: stranded,
                    detail: "event seq \(stranded) is in no chain entry and lies behind the sealer's place without being a gap it waits for: it was inserted around the sealer, or its chain entry was deleted")
            }
        }
    }

    /// Every covered table's rows against the last `record.written` event for each.
    static func checkRecords(on conn: PostgresConnection, limit: Int, into report: inout AuditVerificationReport,
                             logger: Logger) async throws {
        for try await (n,) in try await conn.query("SELECT bm.audit_record_count()", logger: logger).decode((Int,).self) {
            report.recordsChecked = n
        }
        for try await (table, key, field, expected, actual, seq) in try await conn.query("""
            SELECT table_name, row_key, field, expected, actual, event_seq FROM bm.audit_record_mismatches(\(limit)::int)
            """, logger: logger).decode((String, String, String, String?, String?, Int64?).self) {
            report.recordMismatches.append(AuditRecordMismatch(table: table, key: key, field: field, expected: expected,
                                                               actual: actual, eventSeq: seq))
        }
    }

    /// The current head as a checkpoint to export, after checking that it is the last entry's hash;
    /// the export itself is also recorded as an event (so the next checkpoint covers it).
    public func checkpoint(actor: String) async throws -> AuditCheckpoint {
        // What is committed now is sealed first, so the checkpoint covers it.
        _ = try? await seal()
        let logger = database.logger
        return try await database.withTransaction { conn in
            var systemID = ""
            for try await (id,) in try await conn.query(
                "SELECT system_identifier::text FROM pg_control_system()", logger: logger).decode((String,).self) { systemID = id }
            var head: (Int64, [UInt8], Date)?
            for try await (seq, hash, at) in try await conn.query("""
                SELECT c.chain_seq, c.row_hash, now() FROM bm.event_chain c JOIN bm.audit_head h
                  ON h.chain_seq = c.chain_seq AND h.row_hash = c.row_hash
                """, logger: logger).decode((Int64, ByteBuffer, Date).self) {
                head = (seq, Array(hash.readableBytesView), at)
            }
            guard let head else {
                throw AuditHeadMismatchError(detail: "the head of bm.audit_head is not the hash of any chain entry; run `bloodmatch audit verify`")
            }
            let checkpoint = AuditCheckpoint(chainSeq: head.0, rowHash: hex(head.1), takenAt: iso(head.2),
                                             databaseSystemIdentifier: systemID)
            try await Self.append(NewAuditEvent(
                actor: actor, action: "audit.checkpoint", subject: "audit:chain",
                payloadJSON: #"{"chain_seq":\#(checkpoint.chainSeq),"row_hash":"\#(checkpoint.rowHash)"}"#), on: conn, logger: logger)
            return checkpoint
        }
    }

    /// Streams sealed events with chain positions in `[from, to]` (optionally one subject) to
    /// `body`, in chain order.
    public func export(from: Int64, to: Int64, subject: String?, _ body: (AuditEvent) throws -> Void) async throws {
        let rows = try await database.client.query("""
            SELECT \(unescaped: Self.columns) FROM bm.event_chain c JOIN bm.event_log e ON e.seq = c.seq
            WHERE c.chain_seq BETWEEN \(from) AND \(to) AND (\(subject)::text IS NULL OR e.subject = \(subject))
            ORDER BY c.chain_seq
            """, logger: database.logger)
        for try await row in rows.decode(Row.self) { try body(Self.event(row)) }
    }
}

/// The database's head does not point at a chain entry: the chain was damaged at its end.
public struct AuditHeadMismatchError: Error, Sendable, CustomStringConvertible {
    /// What was seen.
    public var detail: String
    public var description: String { detail }
}
