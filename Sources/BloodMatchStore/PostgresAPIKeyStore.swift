import Crypto
import Foundation
import PostgresNIO

/// A hospital API key as stored: never the secret, only its SHA-256.
public struct APIKeyRecord: Sendable, Hashable, Codable {
    /// Public key id (16 hex digits), the part of the token before the dot.
    public var keyID: String
    /// The hospital the key speaks for.
    public var hospital: String
    /// SHA-256 of the secret, hex.
    public var secretSHA256: String
    /// Free text (who the key was issued to).
    public var label: String
    /// When it was created.
    public var createdAt: Date
    /// After this instant the key is refused.
    public var expiresAt: Date
    /// When it was revoked, if it was.
    public var revokedAt: Date?

    /// Creates a record.
    public init(keyID: String, hospital: String, secretSHA256: String, label: String, createdAt: Date, expiresAt: Date, revokedAt: Date?) {
        self.keyID = keyID
        self.hospital = hospital
        self.secretSHA256 = secretSHA256
        self.label = label
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// Whether the key may be used at `now`.
    public func isUsable(now: Date) -> Bool { revokedAt == nil && now < expiresAt }
}

/// The bearer token format: `bmk_<key id>.<secret>`, key id 16 hex digits, secret 43 base64url
/// characters (32 random bytes). Only the key id is ever logged.
public struct APIKeyToken: Sendable, Hashable {
    /// Public key id.
    public var keyID: String
    /// The secret part.
    public var secret: String

    /// The prefix every token starts with (so leaked keys are easy to find by scanners).
    public static let prefix = "bmk_"

    /// Creates a token from its parts.
    public init(keyID: String, secret: String) {
        self.keyID = keyID
        self.secret = secret
    }

    /// Parses a token; nil when it is not of the form `bmk_<16 hex>.<43 base64url>`.
    public init?(parsing text: some StringProtocol) {
        guard text.hasPrefix(Self.prefix), text.utf8.count == Self.prefix.utf8.count + 16 + 1 + 43 else { return nil }
        let body = text.dropFirst(Self.prefix.count)
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count == 16, parts[1].utf8.count == 43,
              parts[0].utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }),
              parts[1].utf8.allSatisfy({ (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 45 || $0 == 95 })
        else { return nil }
        self.keyID = String(parts[0])
        self.secret = String(parts[1])
    }

    /// A new random token (system CSPRNG).
    public static func generate() -> APIKeyToken {
        var generator = SystemRandomNumberGenerator()
        let idBytes = (0..<8).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let secretBytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let secret = Data(secretBytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return APIKeyToken(keyID: idBytes.lowercaseHex, secret: secret)
    }

    /// The full bearer token.
    public var text: String { "\(Self.prefix)\(keyID).\(secret)" }

    /// SHA-256 of the secret, hex: what is stored and compared.
    public var secretSHA256: String { Self.sha256Hex(secret) }

    /// SHA-256 of a string, hex.
    public static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).lowercaseHex
    }

    /// Compares two hex digests in time independent of where they differ.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in x.indices { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}

/// Why a key operation was refused.
public struct APIKeyError: Error, Sendable, CustomStringConvertible {
    /// The key id or hospital at fault.
    public var value: String
    /// What is wrong.
    public var reason: String
    /// Creates the error.
    public init(value: String, reason: String) {
        self.value = value
        self.reason = reason
    }
    /// The value and the reason.
    public var description: String { "'\(value)': \(reason)" }
}

/// Hospital API keys in PostgreSQL (`bm.api_keys`); creation and revocation are also appended to
/// `bm.event_log` in the same transaction.
public struct PostgresAPIKeyStore: Sendable {
    /// The pool.
    public let database: Database

    /// Creates the store.
    public init(database: Database) { self.database = database }

    /// Creates a key for a hospital site and returns its record and the token (shown once).
    public func create(hospital: String, label: String, expiresAt: Date, createdBy: String) async throws -> (APIKeyRecord, APIKeyToken) {
        let token = APIKeyToken.generate()
        let logger = database.logger
        let hash = token.secretSHA256
        let keyID = token.keyID
        let payload = try jsonText(["key_id": keyID, "hospital": hospital, "label": label,
                                    "expires_at": ISO8601DateFormatter().string(from: expiresAt)])
        let created: Date = try await unwrap {
            try await database.withTransaction { conn in
                let kinds = try await conn.query("SELECT kind FROM sites WHERE site_id = \(hospital)", logger: logger).decode((String,).self)
                var kind: String?
                for try await (k,) in kinds { kind = k }
                guard kind == "hospital" else {
                    throw APIKeyError(value: hospital, reason: kind == nil ? "no such site" : "site is a \(kind ?? ""), not a hospital")
                }
                var createdAt = Date()
                for try await (at,) in try await conn.query("""
                    INSERT INTO api_keys (key_id, hospital, secret_sha256, label, expires_at, created_by)
                    VALUES (\(keyID), \(hospital), \(hash), \(label), \(expiresAt), \(createdBy))
                    RETURNING created_at
                    """, logger: logger).decode((Date,).self) { createdAt = at }
                try await conn.query("""
                    INSERT INTO event_log (actor, action, subject, payload)
                    VALUES (\(createdBy), 'api_key.created', \("hospital:\(hospital)"), \(payload)::jsonb)
                    """, logger: logger)
                return createdAt
            }
        }
        return (APIKeyRecord(keyID: keyID, hospital: hospital, secretSHA256: hash, label: label, createdAt: created,
                             expiresAt: expiresAt, revokedAt: nil), token)
    }

    /// Revokes a key (once); throws `APIKeyError` for an unknown or already revoked key.
    public func revoke(keyID: String, revokedBy: String, reason: String) async throws -> APIKeyRecord {
        let logger = database.logger
        return try await unwrap {
            try await database.withTransaction { conn in
                guard let record = try await Self.fetch(conn, keyID: keyID, logger: logger) else {
                    throw APIKeyError(value: keyID, reason: "no such key")
                }
                guard record.revokedAt == nil else { throw APIKeyError(value: keyID, reason: "already revoked") }
                try await conn.query("""
                    UPDATE api_keys SET revoked_at = now(), revoked_by = \(revokedBy) WHERE key_id = \(keyID)
                    """, logger: logger)
                let payload = try jsonText(["key_id": keyID, "hospital": record.hospital, "reason": reason])
                try await conn.query("""
                    INSERT INTO event_log (actor, action, subject, payload)
                    VALUES (\(revokedBy), 'api_key.revoked', \("hospital:\(record.hospital)"), \(payload)::jsonb)
                    """, logger: logger)
                return try await Self.fetch(conn, keyID: keyID, logger: logger) ?? record
            }
        }
    }

    /// One key by id.
    public func find(keyID: String) async throws -> APIKeyRecord? {
        try await database.observe("api_key.find") {
            try await database.client.withConnection { conn in
                try await Self.fetch(conn, keyID: keyID, logger: database.logger)
            }
        }
    }

    /// The ids of every key that exists (no secrets): lets the service refuse a key id that
    /// names no key without a query per request.
    public func allKeyIDs() async throws -> Set<String>? {
        try await database.observe("api_key.ids") {
            var ids: Set<String> = []
            for try await (id,) in try await database.client.query("SELECT key_id FROM api_keys", logger: database.logger)
                .decode((String,).self) { ids.insert(id) }
            return ids
        }
    }

    /// Every key, or one hospital's, newest first.
    public func list(hospital: String?) async throws -> [APIKeyRecord] {
        var out: [APIKeyRecord] = []
        let rows = try await database.client.query("""
            SELECT key_id, hospital, secret_sha256, label, created_at, expires_at, revoked_at FROM api_keys
            WHERE \(hospital)::text IS NULL OR hospital = \(hospital) ORDER BY created_at DESC, key_id
            """, logger: database.logger)
        for try await (id, h, hash, label, created, expires, revoked) in rows.decode((String, String, String, String, Date, Date, Date?).self) {
            out.append(APIKeyRecord(keyID: id, hospital: h, secretSHA256: hash, label: label, createdAt: created, expiresAt: expires, revokedAt: revoked))
        }
        return out
    }

    static func fetch(_ conn: PostgresConnection, keyID: String, logger: Logger) async throws -> APIKeyRecord? {
        let rows = try await conn.query("""
            SELECT key_id, hospital, secret_sha256, label, created_at, expires_at, revoked_at FROM api_keys WHERE key_id = \(keyID)
            """, logger: logger)
        for try await (id, h, hash, label, created, expires, revoked) in rows.decode((String, String, String, String, Date, Date, Date?).self) {
            return APIKeyRecord(keyID: id, hospital: h, secretSHA256: hash, label: label, createdAt: created, expiresAt: expires, revokedAt: revoked)
        }
        return nil
    }

    private func unwrap<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error.commitError ?? error
        }
    }
}

/// A JSON object from string values, for event payloads.
func jsonText(_ object: [String: String]) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(object), as: UTF8.self)
}
