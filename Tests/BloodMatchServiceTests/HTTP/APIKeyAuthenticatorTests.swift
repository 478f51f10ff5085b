@testable import BloodMatchService
import BloodMatchStore
import Foundation
import Synchronization
import Testing

/// The key cache: one read per key per TTL under steady use, a background read ahead of expiry,
/// and a revocation honoured within the TTL; each refusal says why and which key it named. Cache ages are measured on a clock the test moves,
/// so a loaded machine cannot change what is checked.
struct APIKeyAuthenticatorTests {
    /// Key records in memory, counting reads; `revoke` and `fail` change what later reads see.
    final class Lookup: APIKeyLookup {
        let state: Mutex<(records: [String: APIKeyRecord], reads: Int, failing: Bool)>
        init(_ record: APIKeyRecord) { state = Mutex(([record.keyID: record], 0, false)) }
        func find(keyID: String) async throws -> APIKeyRecord? {
            try state.withLock { s in
                s.reads += 1
                if s.failing { throw CancellationError() }
                return s.records[keyID]
            }
        }
        var reads: Int { state.withLock { $0.reads } }
        func revoke(_ keyID: String) { state.withLock { $0.records[keyID]?.revokedAt = Date() } }
        func fail(_ failing: Bool) { state.withLock { $0.failing = failing } }
    }

    /// A clock that moves only when told.
    final class ManualClock: Sendable {
        let start = ContinuousClock.now
        let offset = Mutex(Duration.zero)
        func now() -> ContinuousClock.Instant { start + offset.withLock { $0 } }
        func advance(to elapsed: Duration) { offset.withLock { $0 = elapsed } }
    }

    /// One key, its in-memory store, a clock at zero and an authenticator with `ttl` over them.
    static func setUp(ttl: Duration) -> (token: APIKeyToken, lookup: Lookup, clock: ManualClock, authenticator: APIKeyAuthenticator, header: String) {
        let token = APIKeyToken.generate()
        let record = APIKeyRecord(keyID: token.keyID, hospital: "H0001", secretSHA256: token.secretSHA256, label: "test",
                                  createdAt: Date(), expiresAt: Date().addingTimeInterval(3600), revokedAt: nil)
        let lookup = Lookup(record)
        let clock = ManualClock()
        return (token, lookup, clock, APIKeyAuthenticator(lookup: lookup, cacheTTL: ttl, clock: clock.now), "Bearer \(token.text)")
    }

    /// Polls (real time, up to 20 s) until `condition` holds.
    static func waitFor(_ condition: () async -> Bool) async throws {
        for _ in 0..<2_000 where !(await condition()) { try await Task.sleep(for: .milliseconds(10)) }
    }

    @Test("a busy key is read once, then again in the background at half its TTL; a revocation lands within the TTL")
    func readAheadAndRevocation() async throws {
        let (token, lookup, clock, authenticator, header) = Self.setUp(ttl: .seconds(2))
        for _ in 0..<50 { _ = try await authenticator.authenticate(authorization: header, now: Date()) }
        clock.advance(to: .milliseconds(900))
        for _ in 0..<50 { _ = try await authenticator.authenticate(authorization: header, now: Date()) }
        #expect(lookup.reads == 1)

        lookup.revoke(token.keyID)
        clock.advance(to: .milliseconds(1_100))
        // Past half the TTL: this request is answered from the cache and starts the read.
        let caller = try await authenticator.authenticate(authorization: header, now: Date())
        #expect(caller.hospital == "H0001")
        try await Self.waitFor { lookup.reads == 2 }
        #expect(lookup.reads == 2)
        // The read saw the revocation: requests are refused from then on, with the clock still
        // inside the 2 s TTL of the first read.
        try await Self.waitFor { (try? await authenticator.authenticate(authorization: header, now: Date())) == nil }
        await #expect(throws: AuthenticationFailure.self) { try await authenticator.authenticate(authorization: header, now: Date()) }
        #expect(lookup.reads == 2)
    }

    @Test("a failed background read keeps the record until its TTL, then the database error reaches the caller")
    func failedReadAhead() async throws {
        let (_, lookup, clock, authenticator, header) = Self.setUp(ttl: .seconds(1))
        _ = try await authenticator.authenticate(authorization: header, now: Date())
        lookup.fail(true)
        clock.advance(to: .milliseconds(550))
        _ = try await authenticator.authenticate(authorization: header, now: Date())
        try await Self.waitFor { lookup.reads >= 2 }
        // Still within the TTL: the record read at the start is used.
        clock.advance(to: .milliseconds(950))
        _ = try await authenticator.authenticate(authorization: header, now: Date())
        // Past the TTL the record is not used any more: the read is made in line and its failure
        // propagates (the middleware answers "unable to verify"), never a silent pass.
        clock.advance(to: .milliseconds(1_050))
        await #expect(throws: CancellationError.self) { try await authenticator.authenticate(authorization: header, now: Date()) }
    }

    /// Why `header` was refused (nil when it was accepted).
    static func failure(_ authenticator: APIKeyAuthenticator, _ header: String?, now: Date = Date()) async throws -> AuthenticationFailure? {
        do {
            _ = try await authenticator.authenticate(authorization: header, now: now)
            return nil
        } catch let failure as AuthenticationFailure {
            return failure
        }
    }

    @Test("each refusal names its reason and the key id presented; only an existing key's names its hospital")
    func refusalReasons() async throws {
        let (token, lookup, _, authenticator, header) = Self.setUp(ttl: .seconds(60))
        let id = token.keyID
        let missing = try await Self.failure(authenticator, nil)
        #expect(missing?.reason == .missing && missing?.keyID == nil)
        let basic = try await Self.failure(authenticator, "Basic \(token.text)")
        #expect(basic?.reason == .malformed && basic?.keyID == id && basic?.keyHospital == nil)
        let short = try await Self.failure(authenticator, "Bearer bmk_\(id).tooShort")
        #expect(short?.reason == .malformed && short?.keyID == id)
        let garbage = try await Self.failure(authenticator, "Bearer hello")
        #expect(garbage?.reason == .malformed && garbage?.keyID == nil)
        let stranger = APIKeyToken.generate()
        let unknown = try await Self.failure(authenticator, "Bearer \(stranger.text)")
        #expect(unknown?.reason == .unknown && unknown?.keyID == stranger.keyID && unknown?.keyHospital == nil)
        let wrong = try await Self.failure(authenticator, "Bearer \(APIKeyToken(keyID: id, secret: stranger.secret).text)")
        #expect(wrong?.reason == .wrongSecret && wrong?.keyID == id && wrong?.keyHospital == "H0001")
        // The caller is not told which of the id or the secret was wrong.
        #expect(wrong?.response.message == unknown?.response.message)
        #expect(wrong?.response.status == .unauthorized)
        #expect(!(wrong.map { "\($0)" } ?? "").contains(stranger.secret))
        let expired = try await Self.failure(authenticator, header, now: Date().addingTimeInterval(7200))
        #expect(expired?.reason == .expired && expired?.keyID == id && expired?.keyHospital == "H0001")
        #expect(try await Self.failure(authenticator, header) == nil)
        lookup.revoke(id)
        let revokedAuthenticator = APIKeyAuthenticator(lookup: lookup, cacheTTL: .seconds(60))
        let revoked = try await Self.failure(revokedAuthenticator, header)
        #expect(revoked?.reason == .revoked && revoked?.keyID == id && revoked?.keyHospital == "H0001")
    }

    @Test("a request id holding an API key, or too long, or with quotes, is replaced by a generated one")
    func requestIDs() {
        #expect(APIMiddleware.requestID("req-42") == "req-42")
        let key = APIKeyToken.generate().text
        for bad in [key, "id-\(key.prefix(40))x", String(repeating: "a", count: 65), "a\"b", "a b", ""] {
            let id = APIMiddleware.requestID(bad)
            #expect(id != bad && UUID(uuidString: id) != nil, "\(bad)")
        }
    }
}


/// Floods of key ids that name no key: refused without a query each, and unable to push real keys
/// out of the cache.
struct APIKeyDirectoryTests {
    /// Records in memory that can also be listed, counting both kinds of read.
    final class ListingLookup: APIKeyLookup {
        let state: Mutex<(records: [String: APIKeyRecord], finds: Int, lists: Int)>
        init(_ records: [APIKeyRecord]) { state = Mutex((Dictionary(uniqueKeysWithValues: records.map { ($0.keyID, $0) }), 0, 0)) }
        func find(keyID: String) async throws -> APIKeyRecord? { state.withLock { $0.finds += 1; return $0.records[keyID] } }
        func allKeyIDs() async throws -> Set<String>? { state.withLock { $0.lists += 1; return Set($0.records.keys) } }
        func add(_ record: APIKeyRecord) { state.withLock { $0.records[record.keyID] = record } }
        var counts: (finds: Int, lists: Int) { state.withLock { ($0.finds, $0.lists) } }
    }

    static func record(_ token: APIKeyToken) -> APIKeyRecord {
        APIKeyRecord(keyID: token.keyID, hospital: "H0001", secretSHA256: token.secretSHA256, label: "test",
                     createdAt: Date(), expiresAt: Date().addingTimeInterval(3600), revokedAt: nil)
    }

    @Test("10,000 random key ids cost one listing and no look-up each; the real key keeps working; a new key is found after the refresh")
    func randomKeyFlood() async throws {
        let real = APIKeyToken.generate()
        let lookup = ListingLookup([Self.record(real)])
        let clock = APIKeyAuthenticatorTests.ManualClock()
        let authenticator = APIKeyAuthenticator(lookup: lookup, cacheTTL: .seconds(5), directoryRefresh: .seconds(1), clock: clock.now)
        _ = try await authenticator.authenticate(authorization: "Bearer \(real.text)", now: Date())
        var refused = 0
        for _ in 0..<10_000 {
            do {
                _ = try await authenticator.authenticate(authorization: "Bearer \(APIKeyToken.generate().text)", now: Date())
            } catch let failure as AuthenticationFailure where failure.reason == .unknown {
                refused += 1
            }
        }
        #expect(refused == 10_000)
        #expect(lookup.counts.finds == 1, "only the real key was looked up")
        #expect(lookup.counts.lists == 1)
        #expect(try await authenticator.authenticate(authorization: "Bearer \(real.text)", now: Date()).hospital == "H0001")
        #expect(lookup.counts.finds == 1, "the real key stayed cached through the flood")
        #expect(authenticator.presentsKnownKey("Bearer \(real.text)"))
        #expect(!authenticator.presentsKnownKey("Bearer \(APIKeyToken.generate().text)"))

        // A key created elsewhere: refused while the listing is under a second old, found after.
        let fresh = APIKeyToken.generate()
        lookup.add(Self.record(fresh))
        await #expect(throws: AuthenticationFailure.self) {
            try await authenticator.authenticate(authorization: "Bearer \(fresh.text)", now: Date())
        }
        clock.advance(to: .milliseconds(1_100))
        #expect(try await authenticator.authenticate(authorization: "Bearer \(fresh.text)", now: Date()).keyID == fresh.keyID)
        #expect(lookup.counts.lists == 2)
    }

    /// Lists after a gate opens, so a test can hold a listing read in flight.
    final class GatedListingLookup: APIKeyLookup {
        let inner: ListingLookup
        let open = Mutex(true)
        init(_ inner: ListingLookup) { self.inner = inner }
        func find(keyID: String) async throws -> APIKeyRecord? { try await inner.find(keyID: keyID) }
        func allKeyIDs() async throws -> Set<String>? {
            while !open.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
            return try await inner.allKeyIDs()
        }
    }

    @Test("a listed key never waits for the listing: an old one is read again behind the answer")
    func listedKeyDoesNotWait() async throws {
        let real = APIKeyToken.generate()
        let inner = ListingLookup([Self.record(real)])
        let lookup = GatedListingLookup(inner)
        let clock = APIKeyAuthenticatorTests.ManualClock()
        let authenticator = APIKeyAuthenticator(lookup: lookup, cacheTTL: .seconds(5), directoryRefresh: .seconds(1), clock: clock.now)
        _ = try await authenticator.authenticate(authorization: "Bearer \(real.text)", now: Date())
        #expect(inner.counts.lists == 1)
        // Past the whole TTL, with the database's listing stuck: the real key still answers at once.
        lookup.open.withLock { $0 = false }
        clock.advance(to: .seconds(6))
        // (Bounded, so a request that waits for the stuck listing fails the test rather than hanging it.)
        let answered = try await withDeadline(.seconds(5)) { [authenticator] in
            var ids: [String] = []
            for _ in 0..<20 { ids.append(try await authenticator.authenticate(authorization: "Bearer \(real.text)", now: Date()).keyID) }
            return ids
        }
        #expect(answered == Array(repeating: real.keyID, count: 20))
        #expect(inner.counts.lists == 1, "the listing is still in flight")
        // Once the listing answers, the directory is current again: one read, not one per request.
        lookup.open.withLock { $0 = true }
        for _ in 0..<200 where inner.counts.lists < 2 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(inner.counts.lists == 2)
        #expect(authenticator.directoryReads == 2)
    }

    @Test("concurrent ids missing from a stale listing share one read of it")
    func oneListingForConcurrentMisses() async throws {
        let lookup = ListingLookup([Self.record(APIKeyToken.generate())])
        let authenticator = APIKeyAuthenticator(lookup: lookup, cacheTTL: .seconds(5), directoryRefresh: .seconds(1))
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask { _ = try? await authenticator.authenticate(authorization: "Bearer \(APIKeyToken.generate().text)", now: Date()) }
            }
        }
        #expect(lookup.counts.finds == 0)
        #expect(lookup.counts.lists <= 2, "\(lookup.counts.lists) listings")
    }
}

/// The concurrency budget's per-hospital share and the failure limiter's peek.
struct LimitsTests {
    @Test("one hospital holds at most its share; others still get slots; the whole budget still bounds all")
    func perHospitalShare() {
        let budget = ConcurrencyBudget(limit: 8, perKeyLimit: 2)
        #expect(budget.tryAcquire("A") == nil)
        #expect(budget.tryAcquire("A") == nil)
        #expect(budget.tryAcquire("A") == .shareTaken)
        for _ in 0..<2 { #expect(budget.tryAcquire("B") == nil) }
        for _ in 0..<2 { #expect(budget.tryAcquire("C") == nil) }
        for _ in 0..<2 { #expect(budget.tryAcquire("D") == nil) }
        #expect(budget.tryAcquire("E") == .full)
        budget.release("A")
        #expect(budget.current("A") == 1)
        #expect(budget.tryAcquire("A") == nil)
        #expect(ConcurrencyBudget(limit: 64).perKeyLimit == 16)
    }

    @Test("wait looks without taking; acquire takes")
    func limiterPeek() {
        let limiter = RateLimiter(rate: 1, burst: 2)
        let now = ContinuousClock.now
        #expect(limiter.wait("x", now: now) == nil)
        #expect(limiter.acquire("x", now: now) == nil)
        #expect(limiter.wait("x", now: now) == nil)
        #expect(limiter.acquire("x", now: now) == nil)
        #expect(limiter.wait("x", now: now) == 1)
        #expect(limiter.wait("x", now: now + .seconds(1)) == nil)
    }
}
