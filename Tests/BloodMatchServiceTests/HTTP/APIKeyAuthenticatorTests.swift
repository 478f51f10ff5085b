@testable import BloodMatchService
import BloodMatchStore
import Foundation
import Synchronization
import Testing

/// The key cache: one read per key per TTL under steady use, a background read ahead of expiry,
/// and a revocation honoured within the TTL.
struct APIKeyAuthenticatorTests {
    /// Key records in memory, counting reads; `revoke` and `failing` change what later reads see.
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

    static func key() -> (APIKeyToken, APIKeyRecord) {
        let token = APIKeyToken.generate()
        let record = APIKeyRecord(keyID: token.keyID, hospital: "H0001", secretSHA256: token.secretSHA256, label: "test",
                                  createdAt: Date(), expiresAt: Date().addingTimeInterval(3600), revokedAt: nil)
        return (token, record)
    }

    static func waitFor(_ condition: () -> Bool) async throws {
        for _ in 0..<200 where !condition() { try await Task.sleep(for: .milliseconds(5)) }
    }

    @Test("a busy key is read once, then again in the background at half its TTL; a revocation lands within the TTL")
    func readAheadAndRevocation() async throws {
        let (token, record) = Self.key()
        let lookup = Lookup(record)
        let authenticator = APIKeyAuthenticator(lookup: lookup, cacheTTL: .seconds(2))
        let header = "Bearer \(token.text)"
        let firstRead = ContinuousClock.now
        for _ in 0..<50 { _ = try await authenticator.authenticate(authorization: header, now: Date()) }
        #expect(lookup.reads == 1)

        lookup.revoke(token.keyID)
        try await Task.sleep(for: .milliseconds(1_100))
        // Past half the TTL: this request is answered from the cache and starts the read.
        let caller = try await authenticator.authenticate(authorization: header, now: Date())
        #expect(caller.hospital == "H0001")
        try await Self.waitFor { lookup.reads == 2 }
        #expect(lookup.reads == 2)
        // The read saw the revocation: requests are refused from then on, before the 2 s TTL of the
        // first read is over.
        var refused = false
        for _ in 0..<100 where !refused {
            refused = (try? await authenticator.authenticate(authorization: header, now: Date())) == nil
            if !refused { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(refused)
        #expect(ContinuousClock.now - firstRead < .seconds(2))
        await #expect(throws: APIError.self) { try await authenticator.authenticate(authorization: header, now: Date()) }
    }

    @Test("a failed background read keeps the record until its TTL, then the database error reaches the caller")
    func failedReadAhead() async throws {
        let (token, record) = Self.key()
        let lookup = Lookup(record)
        let authenticator = APIKeyAuthenticator(lookup: lookup, cacheTTL: .seconds(1))
        let header = "Bearer \(token.text)"
        _ = try await authenticator.authenticate(authorization: header, now: Date())
        lookup.fail(true)
        try await Task.sleep(for: .milliseconds(550))
        _ = try await authenticator.authenticate(authorization: header, now: Date())
        try await Self.waitFor { lookup.reads == 2 }
        _ = try await authenticator.authenticate(authorization: header, now: Date())
        try await Task.sleep(for: .milliseconds(600))
        // Past the TTL the record is not used any more: the read is made in line and its failure
        // propagates (the middleware answers "unable to verify"), never a silent pass.
        await #expect(throws: CancellationError.self) { try await authenticator.authenticate(authorization: header, now: Date()) }
    }
}
