import BloodMatchStore
import Synchronization

/// Runs `operation` and answers by `deadline` whatever it does: on time its result, otherwise
/// `DeadlineExceededError` while the operation is cancelled and left to finish in the background.
///
/// Unlike `withDeadline` (a task group, which waits for every child), this returns on time even
/// when the operation ignores cancellation — a query waiting on a lock, a connection attempt to a
/// paused server — which is what an answer "within the deadline" needs.
func answerWithin<T: Sendable>(_ deadline: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let work = Task { try await operation() }
    let gate = ResumeOnce<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            gate.install(continuation)
            Task {
                let result = await work.result
                gate.resume(with: result)
            }
            Task {
                try? await Task.sleep(for: deadline)
                if gate.resume(with: .failure(DeadlineExceededError(deadline: deadline))) { work.cancel() }
            }
        }
    } onCancel: {
        work.cancel()
    }
}

/// Resumes a continuation exactly once, from whichever side comes first.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let state = Mutex<(CheckedContinuation<T, any Error>?, Result<T, any Error>?, Bool)>((nil, nil, false))

    func install(_ continuation: CheckedContinuation<T, any Error>) {
        let early: Result<T, any Error>? = state.withLock { s in
            if let result = s.1 { return result }
            s.0 = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    /// True when this call was the one that answered.
    @discardableResult
    func resume(with result: Result<T, any Error>) -> Bool {
        let (continuation, first): (CheckedContinuation<T, any Error>?, Bool) = state.withLock { s in
            guard !s.2 else { return (nil, false) }
            s.2 = true
            if let c = s.0 {
                s.0 = nil
                return (c, true)
            }
            s.1 = result
            return (nil, true)
        }
        continuation?.resume(with: result)
        return first
    }
}
