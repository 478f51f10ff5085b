import BloodMatchCore
import Foundation
import Synchronization

/// Gathers concurrent calls into batches: each call's item waits while a batch is in flight, and
/// the items queued meanwhile go together in the next one (group commit).
///
/// A caller alone is served at once: batching adds no wait, it only gathers what is already
/// queued. At most `maxInFlight` batches run at a time, each of at most `maxBatch` items. Each
/// call returns when the batch holding it has completed, with its own answer or error.
public final class CallBatcher<Item: Sendable, Answer: Sendable>: Sendable {
    /// Serves one batch: one result per item, in order.
    public typealias Serve = @Sendable ([Item]) async throws -> [Result<Answer, any Error>]

    /// Most items in one batch.
    public let maxBatch: Int
    /// Most batches in flight at once.
    public let maxInFlight: Int
    private let serve: Serve

    private struct Waiting: Sendable {
        var item: Item
        var continuation: CheckedContinuation<Answer, any Error>
    }
    private struct State: Sendable {
        var queue: [Waiting] = []
        var inFlight = 0
    }
    private let state = Mutex(State())

    /// Creates a batcher; `serve` must return exactly one result per item.
    public init(maxBatch: Int, maxInFlight: Int, serve: @escaping Serve) {
        self.maxBatch = max(1, maxBatch)
        self.maxInFlight = max(1, maxInFlight)
        self.serve = serve
    }

    /// `item`'s answer, served in a batch with whatever other items are waiting.
    public func call(_ item: Item) async throws -> Answer {
        try await withCheckedThrowingContinuation { continuation in
            let start: [Waiting]? = state.withLock { s in
                s.queue.append(Waiting(item: item, continuation: continuation))
                guard s.inFlight < maxInFlight else { return nil }
                s.inFlight += 1
                return take(&s)
            }
            if let start { Task { await self.drain(start) } }
        }
    }

    /// The next batch off the queue.
    private func take(_ s: inout State) -> [Waiting] {
        let n = min(maxBatch, s.queue.count)
        defer { s.queue.removeFirst(n) }
        return Array(s.queue.prefix(n))
    }

    /// Serves `batch`, then the next one queued meanwhile, until the queue is empty.
    private func drain(_ first: [Waiting]) async {
        var batch = first
        while !batch.isEmpty {
            var outcomes: [Result<Answer, any Error>]
            do {
                outcomes = try await serve(batch.map(\.item))
            } catch {
                outcomes = Array(repeating: .failure(error), count: batch.count)
            }
            if outcomes.count != batch.count {
                outcomes = Array(repeating: .failure(BatchAnswerCountError(items: batch.count, answers: outcomes.count)),
                                 count: batch.count)
            }
            for (waiting, outcome) in zip(batch, outcomes) { waiting.continuation.resume(with: outcome) }
            batch = state.withLock { s in
                let next = take(&s)
                if next.isEmpty { s.inFlight -= 1 }
                return next
            }
        }
    }
}

/// A batch was served with a different number of answers than items (a defect in the server).
public struct BatchAnswerCountError: Error, Sendable, CustomStringConvertible {
    /// Items sent.
    public var items: Int
    /// Answers received.
    public var answers: Int
    public var description: String { "a batch of \(items) item(s) was answered with \(answers) result(s)" }
}

extension PostgresDecisionStore {
    /// Group commit for decisions: concurrent callers' decisions are written together, one
    /// statement and one commit for all that arrived while the previous write was in flight.
    ///
    /// A decision is acknowledged only when the statement holding it has committed, so every answer
    /// given is in the database; 30 concurrent decisions cost one round trip, one WAL flush and one
    /// firing of each table's record trigger instead of 30.
    public func groupWriter(maxBatch: Int = 64, maxInFlight: Int = 2) -> CallBatcher<PendingDecision, (decision: StoredDecision, isNew: Bool)> {
        CallBatcher(maxBatch: maxBatch, maxInFlight: maxInFlight) { pending in try await record(pending) }
    }
}

extension PostgresInventoryReader {
    /// `unavailable(units:)` for concurrent callers in one statement: each gets the units of its
    /// own list that are unavailable, read in one snapshot with the others'.
    public func groupRecheck(maxBatch: Int = 64, maxInFlight: Int = 2) -> CallBatcher<[UnitKey], Set<UnitKey>> {
        CallBatcher(maxBatch: maxBatch, maxInFlight: maxInFlight) { lists in
            let gone = try await unavailable(units: Array(Set(lists.joined())))
            return lists.map { list in .success(gone.intersection(list)) }
        }
    }
}
