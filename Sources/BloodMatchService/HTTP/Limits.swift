import Foundation
import Synchronization

/// Per-hospital token buckets: `rate` requests per second sustained, `burst` at once.
public final class RateLimiter: Sendable {
    /// Sustained requests per second per hospital.
    public let rate: Double
    /// Bucket size.
    public let burst: Double
    private let buckets = Mutex<[String: (tokens: Double, at: ContinuousClock.Instant)]>([:])

    /// Creates a limiter.
    public init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    /// Takes one token for `key`; returns nil when allowed, or the seconds to wait (for Retry-After).
    public func acquire(_ key: String, now: ContinuousClock.Instant = .now) -> Int? {
        buckets.withLock { buckets in
            var entry = buckets[key] ?? (burst, now)
            let elapsed = now - entry.at
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            entry.tokens = min(burst, entry.tokens + seconds * rate)
            entry.at = now
            defer { buckets[key] = entry }
            if entry.tokens >= 1 {
                entry.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - entry.tokens) / rate).rounded(.up)))
        }
    }
}

/// A bound on requests doing work at once, so a slow database cannot pile up unbounded work:
/// past the bound, requests are refused at once (503 with Retry-After) instead of queuing.
public final class ConcurrencyBudget: Sendable {
    /// The most requests in flight.
    public let limit: Int
    private let inFlight = Mutex(0)

    /// Creates a budget.
    public init(limit: Int) { self.limit = limit }

    /// Takes a slot; false when none is free.
    public func tryAcquire() -> Bool {
        inFlight.withLock { n in
            guard n < limit else { return false }
            n += 1
            return true
        }
    }

    /// Gives a slot back.
    public func release() { inFlight.withLock { $0 -= 1 } }

    /// Requests in flight now.
    public var current: Int { inFlight.withLock { $0 } }
}
