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

    /// The seconds to wait before `key` has a token again (for Retry-After), nil when it has one
    /// now; takes nothing. Lets a limiter be charged only for requests that turn out to fail.
    public func wait(_ key: String, now: ContinuousClock.Instant = .now) -> Int? {
        buckets.withLock { buckets in
            guard let entry = buckets[key] else { return nil }
            let elapsed = now - entry.at
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let tokens = min(burst, entry.tokens + seconds * rate)
            return tokens >= 1 ? nil : max(1, Int(((1 - tokens) / rate).rounded(.up)))
        }
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
///
/// Each hospital may hold at most `perKeyLimit` of the slots, so that one hospital (a client
/// gone wrong, slow bodies, a flood within its rate) cannot take the whole budget from the others:
/// a fixed share rather than "any free slot", the stricter of the two.
public final class ConcurrencyBudget: Sendable {
    /// The most requests in flight.
    public let limit: Int
    /// The most requests in flight for one hospital.
    public let perKeyLimit: Int
    private let state = Mutex<(total: Int, byKey: [String: Int])>((0, [:]))

    /// Creates a budget; `perKeyLimit` defaults to a quarter of `limit` (at least 1).
    public init(limit: Int, perKeyLimit: Int? = nil) {
        self.limit = limit
        self.perKeyLimit = min(limit, max(1, perKeyLimit ?? limit / 4))
    }

    /// Why a slot was not given.
    public enum Refusal: Sendable, Equatable {
        /// Every slot is taken.
        case full
        /// This hospital holds its whole share.
        case shareTaken
    }

    /// Takes a slot for `key` (a hospital); nil when given, otherwise why not.
    public func tryAcquire(_ key: String) -> Refusal? {
        state.withLock { s in
            guard s.total < limit else { return .full }
            let held = s.byKey[key, default: 0]
            guard held < perKeyLimit else { return .shareTaken }
            s.total += 1
            s.byKey[key] = held + 1
            return nil
        }
    }

    /// Gives back a slot of `key`.
    public func release(_ key: String) {
        state.withLock { s in
            s.total -= 1
            let held = s.byKey[key, default: 1] - 1
            s.byKey[key] = held > 0 ? held : nil
        }
    }

    /// Requests in flight now.
    public var current: Int { state.withLock { $0.total } }

    /// Requests in flight now for `key`.
    public func current(_ key: String) -> Int { state.withLock { $0.byKey[key, default: 0] } }
}
