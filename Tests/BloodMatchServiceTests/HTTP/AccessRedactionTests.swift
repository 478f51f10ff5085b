import BloodMatchService
import Testing

/// What an access record keeps of a request's text: credential parameters lose their values, and
/// every API key, wherever it appears, keeps its key id and loses its secret.
@Suite("Access record redaction")
struct AccessRedactionTests {
    static let keyID = "0123456789abcdef"
    static let secret = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"
    static let key = "bmk_\(keyID).\(secret)"
    static let redactedKey = "bmk_\(keyID).[redacted]"

    @Test("credential-like parameter names lose their values, whatever their case; the rest are kept as sent",
          arguments: ["api_key", "API_KEY", "Token", "access_token", "client_secret", "Password", "passwd", "X-Auth", "SESSIONID",
                      "signature", "sig", "Credential", "x%2Dapi%2Dkey"])
    func credentialNames(name: String) {
        #expect(AccessRedaction.query("component=RBC&\(name)=hunter2&abo=O") == "component=RBC&\(name)=[redacted]&abo=O")
    }

    @Test("ordinary parameters, empty values and bare names are left alone")
    func ordinaryQuery() {
        let query = "component=RBC&abo=O&rhd=NEG&require=IRRADIATED,CMV_NEG&limit=&flag"
        #expect(AccessRedaction.query(query) == query)
        #expect(!AccessRedaction.isCredentialName("component"))
        #expect(AccessRedaction.isCredentialName("MyApiKey"))
    }

    @Test("a key in any value keeps its key id and loses its secret, however many there are")
    func keyInValue() {
        #expect(AccessRedaction.query("component=RBC&note=\(Self.key)") == "component=RBC&note=\(Self.redactedKey)")
        #expect(AccessRedaction.text("a \(Self.key) and \(Self.key)!") == "a \(Self.redactedKey) and \(Self.redactedKey)!")
        // A secret of another length, and mixed case in the prefix and id, are still a key's.
        #expect(AccessRedaction.text("BMK_0123456789ABCDEF.short-secret_1") == "BMK_0123456789ABCDEF.[redacted]")
        // A key sent as a parameter name, or as a bare parameter.
        #expect(AccessRedaction.query("\(Self.key)=1&\(Self.key)") == "\(Self.redactedKey)=1&\(Self.redactedKey)")
    }

    @Test("a percent-encoded key is found too")
    func encodedKey() {
        let encoded = "bmk%5F\(Self.keyID)%2E\(Self.secret)"
        #expect(AccessRedaction.query("note=\(encoded)") == "note=\(Self.redactedKey)")
        #expect(AccessRedaction.text("note%3Dbmk%255F\(Self.keyID)%252E\(Self.secret)") == "note=\(Self.redactedKey)")
        #expect(AccessRedaction.containsKey(encoded))
    }

    @Test("a key inside the path of an unmatched route keeps its id only")
    func keyInPath() {
        #expect(AccessRedaction.text("/v1/keys/\(Self.key)/use") == "/v1/keys/\(Self.redactedKey)/use")
        #expect(AccessRedaction.text("/v1/%62mk_\(Self.keyID).\(Self.secret)") == "/v1/\(Self.redactedKey)")
    }

    @Test("text that only resembles a key is kept", arguments: [
        "bmk_0123456789abcdef.", "bmk_0123456789abcde.secret", "bmk_0123456789abcdeg.secret", "bmk0123456789abcdef.secret",
        "/v1/matches/6b1f0c7e-8d2a-4c1e-9f3b-2a7d5e4c3b1a", "100%", "%zz",
    ])
    func lookalikes(text: String) {
        #expect(AccessRedaction.text(text) == text)
        #expect(!AccessRedaction.containsKey(text))
    }
}
