import BloodMatchStore
import Foundation
import Synchronization

/// Who a request speaks for, once its key is verified.
public struct AuthenticatedCaller: Sendable, Hashable {
    /// Creates a caller.
    public init(hospital: String, keyID: String) {
        self.hospital = hospital
        self.keyID = keyID
    }

    /// The hospital site id.
    public var hospital: String
    /// The key id (never the secret).
    public var keyID: String
}

/// Source of key records (PostgreSQL in production).
public protocol APIKeyLookup: Sendable {
    /// The key with this id, if any.
    func find(keyID: String) async throws -> APIKeyRecord?
}

extension PostgresAPIKeyStore: APIKeyLookup {}

/// Verifies `Authorization: Bearer bmk_…` tokens. Records are cached for `cacheTTL` so a busy
/// hospital costs no database round trip per request; a revocation therefore takes effect within
/// `cacheTTL` on every instance. Expiry is checked on every request.
public final class APIKeyAuthenticator: Sendable {
    let lookup: any APIKeyLookup
    /// How long a looked-up key record is reused.
    public let cacheTTL: Duration
    private let cache = Mutex<[String: (APIKeyRecord?, ContinuousClock.Instant)]>([:])

    /// Creates an authenticator.
    public init(lookup: any APIKeyLookup, cacheTTL: Duration = .seconds(5)) {
        self.lookup = lookup
        self.cacheTTL = cacheTTL
    }

    /// The caller, or an `APIError` (401 for a missing/malformed/unknown/wrong/expired/revoked
    /// key; a database failure propagates so the caller answers "unable to verify").
    public func authenticate(authorization: String?, now: Date) async throws -> AuthenticatedCaller {
        guard let authorization, !authorization.isEmpty else {
            throw APIError.unauthenticated("missing Authorization header; send 'Authorization: Bearer bmk_…'")
        }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError.unauthenticated("the Authorization scheme must be Bearer with a BloodMatch API key")
        }
        guard let token = APIKeyToken(parsing: parts[1].trimmingCharacters(in: .whitespaces)) else {
            throw APIError.unauthenticated("the API key is malformed")
        }
        let record = try await record(keyID: token.keyID)
        guard let record, APIKeyToken.constantTimeEqual(record.secretSHA256, token.secretSHA256) else {
            throw APIError.unauthenticated("unknown API key")
        }
        if record.revokedAt != nil { throw APIError.unauthenticated("the API key was revoked") }
        if now >= record.expiresAt { throw APIError.unauthenticated("the API key expired") }
        return AuthenticatedCaller(hospital: record.hospital, keyID: record.keyID)
    }

    private func record(keyID: String) async throws -> APIKeyRecord? {
        let now = ContinuousClock.now
        if let entry = cache.withLock({ $0[keyID] }), now - entry.1 < cacheTTL { return entry.0 }
        let fresh = try await answerWithin(.seconds(2)) { [lookup] in try await lookup.find(keyID: keyID) }
        cache.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[keyID] = (fresh, now)
        }
        return fresh
    }
}
