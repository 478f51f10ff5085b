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

/// A key refused by `APIKeyAuthenticator`: why, and which key it named, for the access record.
/// The caller sees only `response`, which does not tell an unknown key id from a wrong secret.
public struct AuthenticationFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why a key was refused.
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        /// No `Authorization` header.
        case missing
        /// Not `Bearer bmk_<16 hex>.<43 base64url>`.
        case malformed
        /// No key has this id.
        case unknown
        /// The key exists; the secret is not its secret.
        case wrongSecret = "wrong_secret"
        /// The key exists and has expired.
        case expired
        /// The key exists and was revoked.
        case revoked
        /// Not looked at: its client address sent too many refused keys just before.
        case throttled

        /// Whether the failure names a key that exists: those are recorded one row each; the
        /// others, which anyone can send in any number, are counted per minute.
        public var namesExistingKey: Bool { self == .wrongSecret || self == .expired || self == .revoked }
    }

    /// Why.
    public var reason: Reason
    /// The key id the request presented, when its token began `bmk_<16 hex>.` (never the secret).
    public var keyID: String?
    /// The hospital the presented key belongs to, when that key exists.
    public var keyHospital: String?
    /// What the 401 says.
    public var message: String

    /// Creates a failure answered by a 401 saying `message`.
    public init(_ reason: Reason, keyID: String? = nil, keyHospital: String? = nil, message: String) {
        self.reason = reason
        self.keyID = keyID
        self.keyHospital = keyHospital
        self.message = message
    }

    /// The 401 the caller receives.
    public var response: APIError { .unauthenticated(message) }

    /// The reason and the key id presented.
    public var description: String { "\(reason.rawValue) (key id \(keyID ?? "none"))" }

    /// The key id of a presented token that starts `bmk_<16 lowercase hex>.`, whatever follows.
    public static func keyID(presentedIn token: some StringProtocol) -> String? {
        let bytes = Array(token.utf8.prefix(APIKeyToken.prefix.utf8.count + 17))
        let prefixLength = APIKeyToken.prefix.utf8.count
        guard bytes.count == prefixLength + 17, bytes[..<prefixLength].elementsEqual(APIKeyToken.prefix.utf8),
              bytes[prefixLength + 16] == UInt8(ascii: "."),
              bytes[prefixLength..<(prefixLength + 16)].allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        return String(decoding: bytes[prefixLength..<(prefixLength + 16)], as: UTF8.self)
    }
}

/// Source of key records (PostgreSQL in production).
public protocol APIKeyLookup: Sendable {
    /// The key with this id, if any.
    func find(keyID: String) async throws -> APIKeyRecord?
    /// The id of every key that exists, or nil when the source cannot list them.
    func allKeyIDs() async throws -> Set<String>?
}

extension APIKeyLookup {
    /// Not listed: every key id is looked up on its own.
    public func allKeyIDs() async throws -> Set<String>? { nil }
}

extension PostgresAPIKeyStore: APIKeyLookup {}

/// Verifies `Authorization: Bearer bmk_…` tokens. Records are cached for `cacheTTL` so a busy
/// hospital costs no database round trip per request; a revocation therefore takes effect within
/// `cacheTTL` on every instance. Expiry is checked on every request. A record in use is read again
/// in the background once it is half its `cacheTTL` old, so a busy key never waits for the
/// database (measured: requests that found their record expired waited 13 ms on average under load).
///
/// Key ids that name no key cost no query each: the ids of every key are listed (no secrets) and
/// an id not among them is refused at once. The list is read again in the background once it is
/// half its `cacheTTL` old, and at once when an id is missing from it and it is over
/// `directoryRefresh` old (a key just created elsewhere), so a flood of random ids costs at most
/// one query per `directoryRefresh`, and a listed key never waits for the list.
/// Only keys that exist are cached, so such a flood cannot push real keys out of the cache.
public final class APIKeyAuthenticator: Sendable {
    let lookup: any APIKeyLookup
    /// How long a looked-up key record is reused.
    public let cacheTTL: Duration

    struct Entry {
        var record: APIKeyRecord?
        var fetchedAt: ContinuousClock.Instant
        var refreshing = false
    }

    private let cache = Mutex<[String: Entry]>([:])
    private let clock: @Sendable () -> ContinuousClock.Instant
    /// The ids of every key, when the lookup can list them, and when they were read.
    private let directory = Mutex<(ids: Set<String>, at: ContinuousClock.Instant)?>(nil)
    /// One directory read at a time; others wait for it rather than query again.
    private let directoryRead = Mutex<Task<Set<String>?, any Error>?>(nil)
    /// How old the directory must be before an id missing from it causes a new read.
    public let directoryRefresh: Duration
    /// Directory reads so far (for tests and the flood check).
    public var directoryReads: Int { directoryReadCount.withLock { $0 } }
    private let directoryReadCount = Mutex(0)

    /// Creates an authenticator; `clock` measures cache ages (tests pass their own).
    public init(lookup: any APIKeyLookup, cacheTTL: Duration = .seconds(5), directoryRefresh: Duration = .seconds(1),
                clock: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.lookup = lookup
        self.cacheTTL = cacheTTL
        self.directoryRefresh = directoryRefresh
        self.clock = clock
    }

    /// Whether `authorization` presents the id of a key that exists, by the directory as last read
    /// (no query): a throttled address may still use a real key.
    public func presentsKnownKey(_ authorization: String?) -> Bool {
        guard let authorization, let space = authorization.firstIndex(of: " "),
              let id = AuthenticationFailure.keyID(presentedIn: authorization[authorization.index(after: space)...]) else { return false }
        return directory.withLock { $0?.ids.contains(id) ?? false }
    }

    /// Whether `keyID` may name a key: false only when the directory, read recently enough, lacks it.
    ///
    /// An id the directory lists goes on to its record (cached, read again on its own schedule),
    /// which decides; it never waits for the directory. A directory past half its `cacheTTL` is
    /// read again behind the answer, so a real key does not queue behind a listing read among a
    /// flood of random ids.
    private func mayExist(_ keyID: String) async throws -> Bool {
        let now = clock()
        let known = directory.withLock { $0 }
        if let known {
            let age = now - known.at
            if known.ids.contains(keyID) {
                if age >= cacheTTL / 2 && directoryRead.withLock({ $0 == nil }) {
                    Task { [self] in _ = try? await readDirectory() }
                }
                return true
            }
            if age < directoryRefresh { return false }
        }
        guard let ids = try await readDirectory() else { return true }
        return ids.contains(keyID)
    }

    /// Reads the directory once for all concurrent callers.
    private func readDirectory() async throws -> Set<String>? {
        let task: Task<Set<String>?, any Error> = directoryRead.withLock { running in
            if let running { return running }
            let started = clock()
            let task = Task { [self] () throws -> Set<String>? in
                defer { directoryRead.withLock { $0 = nil } }
                directoryReadCount.withLock { $0 += 1 }
                let ids = try await answerWithin(.seconds(2)) { [lookup] in try await lookup.allKeyIDs() }
                if let ids { directory.withLock { $0 = (ids, started) } }
                return ids
            }
            running = task
            return task
        }
        return try await task.value
    }

    /// The caller, or an `AuthenticationFailure` saying why the key was refused (its `response`
    /// is the 401 the caller gets); a database failure propagates so the caller answers "unable
    /// to verify".
    public func authenticate(authorization: String?, now: Date) async throws -> AuthenticatedCaller {
        guard let authorization, !authorization.isEmpty else {
            throw AuthenticationFailure(.missing, message: "missing Authorization header; send 'Authorization: Bearer bmk_…'")
        }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        let presented = parts.count == 2 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
        let presentedKeyID = AuthenticationFailure.keyID(presentedIn: presented)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw AuthenticationFailure(.malformed, keyID: presentedKeyID,
                                        message: "the Authorization scheme must be Bearer with a BloodMatch API key")
        }
        guard let token = APIKeyToken(parsing: presented) else {
            throw AuthenticationFailure(.malformed, keyID: presentedKeyID, message: "the API key is malformed")
        }
        guard try await mayExist(token.keyID), let record = try await record(keyID: token.keyID) else {
            throw AuthenticationFailure(.unknown, keyID: token.keyID, message: "unknown API key")
        }
        // The caller is not told whether the id or the secret was wrong.
        guard APIKeyToken.constantTimeEqual(record.secretSHA256, token.secretSHA256) else {
            throw AuthenticationFailure(.wrongSecret, keyID: token.keyID, keyHospital: record.hospital, message: "unknown API key")
        }
        if record.revokedAt != nil {
            throw AuthenticationFailure(.revoked, keyID: token.keyID, keyHospital: record.hospital, message: "the API key was revoked")
        }
        if now >= record.expiresAt {
            throw AuthenticationFailure(.expired, keyID: token.keyID, keyHospital: record.hospital, message: "the API key expired")
        }
        return AuthenticatedCaller(hospital: record.hospital, keyID: record.keyID)
    }

    private func record(keyID: String) async throws -> APIKeyRecord? {
        let now = clock()
        let (cached, refresh): (Entry?, Bool) = cache.withLock { cache in
            guard var entry = cache[keyID], now - entry.fetchedAt < cacheTTL else { return (nil, false) }
            let due = !entry.refreshing && now - entry.fetchedAt >= cacheTTL / 2
            if due {
                entry.refreshing = true
                cache[keyID] = entry
            }
            return (entry, due)
        }
        if let cached {
            if refresh {
                Task { [self] in
                    do {
                        _ = try await fetch(keyID: keyID)
                    } catch {
                        // The cached record stays until its TTL; the next request tries again.
                        cache.withLock { $0[keyID]?.refreshing = false }
                    }
                }
            }
            return cached.record
        }
        return try await fetch(keyID: keyID)
    }

    /// Reads the record and caches it with the instant the read started.
    private func fetch(keyID: String) async throws -> APIKeyRecord? {
        let started = clock()
        let fresh = try await answerWithin(.seconds(2)) { [lookup] in try await lookup.find(keyID: keyID) }
        cache.withLock { cache in
            // Only keys that exist are kept (their number is bounded by the keys issued); entries
            // past their TTL go first when the cache is large.
            if cache.count > 10_000 { cache = cache.filter { started - $0.value.fetchedAt < cacheTTL } }
            if fresh != nil || cache.count < 10_000 { cache[keyID] = Entry(record: fresh, fetchedAt: started) }
        }
        return fresh
    }
}
