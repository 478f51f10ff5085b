import BloodMatchIngest
import BloodMatchStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Records every API request in `bm.event_log`, in batches, without losing one silently.
///
/// A request first reserves a slot (`reserve()`); when the queue is full, or the last write to
/// PostgreSQL failed, there is no slot and the request is answered 503 "unable to verify" before
/// any work is done. Accepted records are written every `interval` or once `batchSize` are queued,
/// kept and retried while the database refuses them, and flushed before the service stops.
///
/// Failed authentications that name no existing key are not queued one by one: they are counted
/// in a `FailedAuthenticationTally` (per client address, route, reason and minute) and each count
/// is queued as one record once its minute has closed, `lateAttemptAllowance` after the minute's
/// end (a request that arrived in it may still be finishing its key look-up), or at shutdown.
public final class AccessRecorder: Service, Sendable {
    /// Writes one batch (PostgreSQL in production).
    public typealias Writer = @Sendable ([AccessRecord]) async throws -> Void

    struct State {
        var pending: [AccessRecord] = []
        var reserved = 0
        var failingSince: Date?
        var lastError: String?
        var written = 0
        var tally: FailedAuthenticationTally
        /// One flush at a time: two would write the same batch twice.
        var flushing = false
    }

    let writer: Writer
    let logger: Logger
    /// The most records held (queued plus reserved) before new requests are refused.
    public let capacity: Int
    /// Records per INSERT.
    public let batchSize: Int
    /// Longest wait before queued records are written.
    public let interval: Duration
    /// Longest a batch's write is waited for. A write that does not answer (a connection to a
    /// frozen or vanished server can hang until TCP gives up) counts as failed: new requests are
    /// refused and the batch is written again later. Records are therefore written at least once;
    /// a write that answered too late but had landed leaves its records twice, with the same
    /// request ids, rather than none.
    public let writeDeadline: Duration
    /// The wall clock, which closes the tally's minutes.
    let now: @Sendable () -> Date
    private let state: Mutex<State>

    /// How long after its end a minute's failed authentications are still counted in it.
    public static let lateAttemptAllowance: TimeInterval = 5

    /// Creates a recorder.
    public init(writer: @escaping Writer, logger: Logger, capacity: Int = 20_000, batchSize: Int = 500,
                interval: Duration = .milliseconds(200), writeDeadline: Duration = .seconds(10),
                maximumAggregates: Int = 1_000, now: @escaping @Sendable () -> Date = { Date() }) {
        self.writer = writer
        self.logger = logger
        self.capacity = capacity
        self.batchSize = batchSize
        self.interval = interval
        self.writeDeadline = writeDeadline
        self.now = now
        self.state = Mutex(State(tally: FailedAuthenticationTally(maximumGroups: maximumAggregates)))
    }

    /// A promise to record one request.
    public struct Ticket: Sendable {}

    /// Reserves room for one record; nil when the queue is full or the database is refusing writes.
    public func reserve() -> Ticket? {
        state.withLock { s in
            guard s.failingSince == nil, s.pending.count + s.reserved < capacity else { return nil }
            s.reserved += 1
            return Ticket()
        }
    }

    /// Queues the record for a reserved slot.
    public func commit(_ ticket: Ticket, _ record: AccessRecord) {
        state.withLock { s in
            s.reserved -= 1
            s.pending.append(record)
        }
    }

    /// Counts a failed authentication that named no existing key, for a reserved slot; it is
    /// written as part of its group's record when the minute closes.
    public func count(_ ticket: Ticket, _ attempt: FailedAuthenticationTally.Attempt) {
        state.withLock { s in
            s.reserved -= 1
            s.tally.add(attempt)
        }
    }

    /// Why records cannot be accepted now, and since when; nil when they can.
    public var refusal: (since: Date, reason: String)? {
        state.withLock { s in
            if let since = s.failingSince { return (since, "access records cannot be written: \(s.lastError ?? "database error")") }
            if s.pending.count + s.reserved >= capacity { return (Date(), "the access record queue is full (\(capacity))") }
            return nil
        }
    }

    /// Records queued and not yet written.
    public var pendingCount: Int { state.withLock { $0.pending.count } }

    /// Records written since start.
    public var writtenCount: Int { state.withLock { $0.written } }

    /// Failed authentications counted in minutes not yet closed.
    public var countedAttempts: Int { state.withLock { $0.tally.attemptCount } }

    /// Queues the counts of closed minutes (every minute with `includingOpenMinutes`), then writes
    /// queued records, batch by batch; false if a write failed (records are kept).
    @discardableResult
    public func flush(includingOpenMinutes: Bool = false) async -> Bool {
        while !beginFlush() {
            try? await Task.sleep(for: .milliseconds(5))
        }
        defer { state.withLock { $0.flushing = false } }
        let closeBefore = FailedAuthenticationTally.minute(of: now().addingTimeInterval(-Self.lateAttemptAllowance))
        state.withLock { s in
            s.pending += includingOpenMinutes ? s.tally.closeAll() : s.tally.close(before: closeBefore)
        }
        while true {
            let batch = state.withLock { Array($0.pending.prefix(batchSize)) }
            if batch.isEmpty { return true }
            do {
                // The write runs in its own task, so a shutdown that cancels this one does not
                // cancel the last writes; the deadline bounds the wait, not the write.
                let write = Task { [writer] in try await writer(batch) }
                try await withDeadline(writeDeadline) { try await write.value }
                let recovered: Date? = state.withLock { s in
                    s.pending.removeFirst(batch.count)
                    s.written += batch.count
                    defer { s.failingSince = nil; s.lastError = nil }
                    return s.failingSince
                }
                if let recovered {
                    logger.notice("access records are being written again", metadata: ["failing_since": "\(recovered)"])
                }
            } catch {
                let message = error is DeadlineExceededError ? "no answer from the database within \(writeDeadline)" : serverMessage(error)
                state.withLock { s in
                    if s.failingSince == nil { s.failingSince = Date() }
                    s.lastError = message
                }
                logger.error("access records could not be written; new requests are refused until they are",
                             metadata: ["error": "\(message)", "pending": "\(pendingCount)"])
                return false
            }
        }
    }

    private func beginFlush() -> Bool {
        state.withLock { s in
            if s.flushing { return false }
            s.flushing = true
            return true
        }
    }

    /// Writes every `interval` until graceful shutdown, then flushes what is left (retrying for up
    /// to 10 s); anything still unwritten is logged record by record, never dropped silently.
    public func run() async throws {
        var backoff = interval
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let pause = backoff
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            backoff = await flush() ? interval : min(backoff * 2, .seconds(5))
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !(await flush(includingOpenMinutes: true)) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(250))
        }
        let left = state.withLock { s in
            let left = s.pending
            s.pending.removeAll()
            return left
        }
        for record in left {
            logger.critical("access record not written at shutdown", metadata: [
                "actor": "\(record.actor)", "subject": "\(record.subject)", "payload": "\(record.payloadJSON)",
                "request_id": "\(record.requestID)", "client_addr": "\(record.clientAddress ?? "")",
                "requested_at": "\(isoUTCMilliseconds(record.requestedAt))",
            ])
        }
    }
}

extension AccessRecord {
    /// A record whose payload carries `requested_at`, the arrival time in UTC with milliseconds,
    /// taken from `requestedAt` so the two can never disagree.
    public init(actor: String, subject: String, payload: [String: JSONValue], requestedAt: Date, requestID: String,
                traceID: String?, clientAddress: String?) {
        var payload = payload
        payload["requested_at"] = .string(isoUTCMilliseconds(requestedAt))
        self.init(actor: actor, subject: subject, payloadJSON: ResponseJSON.string(.object(payload)), requestID: requestID,
                  traceID: traceID, clientAddress: clientAddress, requestedAt: requestedAt)
    }
}
