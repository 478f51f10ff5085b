import Crypto
import Foundation

/// A PostgreSQL SCRAM-SHA-256 password verifier (RFC 5802, RFC 7677), computed here so that a new
/// operator's password never travels to the server, its logs or `pg_stat_statements` in clear.
///
/// Format, as PostgreSQL stores it in `pg_authid.rolpassword`:
/// `SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>`.
/// No library on the stack offers it (PostgresNIO implements only the client side of SCRAM).
public enum ScramVerifier {
    /// PostgreSQL's default iteration count (`scram_iterations`).
    public static let iterations = 4096

    /// The verifier for `password` with `salt` (16 random bytes unless given).
    public static func make(password: String, salt: [UInt8]? = nil, iterations: Int = iterations) -> String {
        let salt = salt ?? (0..<16).map { _ in UInt8.random(in: 0...255) }
        let salted = pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations)
        let key = SymmetricKey(data: salted)
        let clientKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: key))
        let storedKey = Array(SHA256.hash(data: clientKey))
        let serverKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Server Key".utf8), using: key))
        func b64(_ b: [UInt8]) -> String { Data(b).base64EncodedString() }
        return "SCRAM-SHA-256$\(iterations):\(b64(salt))$\(b64(storedKey)):\(b64(serverKey))"
    }

    /// PBKDF2-HMAC-SHA-256 with one 32-byte block (RFC 8018 §5.2), which is all SCRAM needs.
    static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let key = SymmetricKey(data: password)
        var u = Array(HMAC<SHA256>.authenticationCode(for: salt + [0, 0, 0, 1], using: key))
        var out = u
        for _ in 1..<max(1, iterations) {
            u = Array(HMAC<SHA256>.authenticationCode(for: u, using: key))
            for i in 0..<out.count { out[i] ^= u[i] }
        }
        return out
    }
}
