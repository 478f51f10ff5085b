import BloodMatchCore
import BloodMatchStore
import Foundation
import PostgresNIO
import Testing

/// Hospital API keys: only a hash is stored, a key can only be revoked (once), and both
/// creation and revocation are in the event log.
@Suite("Hospital API keys in PostgreSQL")
struct APIKeyStoreTests {
    @Test("tokens round-trip through their text form; anything else is refused")
    func tokenFormat() {
        let token = APIKeyToken.generate()
        #expect(APIKeyToken(parsing: token.text) == token)
        #expect(token.text.hasPrefix("bmk_") && token.keyID.count == 16 && token.secret.count == 43)
        for bad in ["", "bmk_", token.text + "x", token.text.replacingOccurrences(of: ".", with: "_"), "Bearer " + token.text,
                    "bmk_ZZZZZZZZZZZZZZZZ." + token.secret, token.text.uppercased()] {
            #expect(APIKeyToken(parsing: bad) == nil, "\(bad)")
        }
        #expect(APIKeyToken.constantTimeEqual(token.secretSHA256, APIKeyToken.sha256Hex(token.secret)))
        #expect(!APIKeyToken.constantTimeEqual(token.secretSHA256, APIKeyToken.sha256Hex(token.secret + "x")))
    }

    @Test("a key is stored hashed, revoked once, never changed otherwise, and both steps are in the event log")
    func lifecycle() async throws {
        try await TestDatabase.withFresh { test in
            try await test.with(.owner) { db in
                _ = try await PostgresSiteStore(database: db).upsert([
                    Site(id: "H1", name: "Hospital", kind: .hospital, location: GeoPoint(latitude: -34, longitude: 151), region: "AU-02"),
                    Site(id: "DC1", name: "Centre", kind: .distributionCentre, location: GeoPoint(latitude: -33, longitude: 151), region: "AU-02"),
                ], source: "test")
                let store = PostgresAPIKeyStore(database: db)
                let (record, token) = try await store.create(hospital: "H1", label: "lab", expiresAt: Date().addingTimeInterval(3600), createdBy: "test")
                #expect(record.secretSHA256 == token.secretSHA256)
                var stored: [String] = []
                for try await (hash,) in try await db.client.query("SELECT secret_sha256 FROM bm.api_keys", logger: db.logger).decode((String,).self) { stored.append(hash) }
                #expect(stored == [token.secretSHA256])
                #expect(!stored.contains(token.secret))

                await #expect(throws: APIKeyError.self) {
                    _ = try await store.create(hospital: "DC1", label: "", expiresAt: Date().addingTimeInterval(3600), createdBy: "test")
                }
                await #expect(throws: APIKeyError.self) {
                    _ = try await store.create(hospital: "NOPE", label: "", expiresAt: Date().addingTimeInterval(3600), createdBy: "test")
                }
                let revoked = try await store.revoke(keyID: record.keyID, revokedBy: "test", reason: "rotation")
                #expect(revoked.revokedAt != nil)
                let found = try await store.find(keyID: record.keyID)
                #expect(found?.isUsable(now: Date()) == false)
                await #expect(throws: APIKeyError.self) { _ = try await store.revoke(keyID: record.keyID, revokedBy: "test", reason: "again") }
                for sql in ["UPDATE bm.api_keys SET revoked_at = NULL", "UPDATE bm.api_keys SET expires_at = now() + interval '10 years'",
                            "DELETE FROM bm.api_keys", "TRUNCATE bm.api_keys"] {
                    await #expect(throws: PSQLError.self, "\(sql)") { try await db.client.query(PostgresQuery(unsafeSQL: sql), logger: db.logger) }
                }
                var actions: [String] = []
                for try await (action,) in try await db.client.query(
                    "SELECT action FROM bm.event_log WHERE action LIKE 'api_key.%' ORDER BY seq", logger: db.logger
                ).decode((String,).self) { actions.append(action) }
                #expect(actions == ["api_key.created", "api_key.revoked"])
            }
        }
    }

    @Test("the application role can read keys but not create, change or delete them")
    func applicationRoleReadsOnly() async throws {
        try await TestDatabase.withFresh { test in
            try await test.with(.app) { db in
                _ = try await PostgresAPIKeyStore(database: db).list(hospital: nil)
                await #expect(throws: PSQLError.self) {
                    try await db.client.query("""
                        INSERT INTO bm.api_keys (key_id, hospital, secret_sha256, expires_at)
                        VALUES ('0123456789abcdef', 'H1', repeat('0', 64), now() + interval '1 day')
                        """, logger: db.logger)
                }
            }
        }
    }
}
