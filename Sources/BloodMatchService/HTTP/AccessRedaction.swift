import Foundation

/// What an access record may keep of a request's text: credentials are taken out before anything
/// reaches the append-only event log, where they could never be removed again.
///
/// Two rules. A query parameter whose name looks like a credential (`api_key`, `Token`,
/// `X-Signature`…) keeps its name and loses its value. And anything that parses as one of this
/// project's API keys (`bmk_<16 hex>.<secret>`), wherever it appears (a value, a name, the path of
/// an unmatched route) and whether or not it is percent-encoded, keeps its key id, which names the
/// leaked key for whoever revokes it, and loses its secret.
public enum AccessRedaction {
    /// What replaces a removed value or secret.
    public static let placeholder = "[redacted]"

    /// Words that make a parameter name a credential's, compared case-insensitively as substrings.
    public static let credentialWords = ["key", "token", "secret", "password", "passwd", "auth", "session", "signature", "sig", "credential"]

    /// Whether a parameter called `name` (percent-encoded or not) carries a credential.
    public static func isCredentialName(_ name: some StringProtocol) -> Bool {
        let decoded = String(name).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(name)
        let lowered = decoded.lowercased()
        return credentialWords.contains { lowered.contains($0) }
    }

    /// A raw query string (`a=1&api_key=…`) with credential parameters' values and every API key's
    /// secret replaced; order, names and the other values are kept as sent.
    public static func query(_ raw: String) -> String {
        raw.split(separator: "&", omittingEmptySubsequences: false).map { piece -> String in
            guard let equals = piece.firstIndex(of: "=") else { return text(String(piece)) }
            let name = piece[..<equals]
            if isCredentialName(name) { return text(String(name)) + "=" + placeholder }
            return text(String(name)) + "=" + text(String(piece[piece.index(after: equals)...]))
        }.joined(separator: "&")
    }

    /// `raw` with the secret of every API key in it replaced. A key hidden by percent-encoding
    /// (up to three levels) is found too; the text is then kept decoded, with the secret replaced.
    public static func text(_ raw: String) -> String {
        let direct = keys(in: raw)
        if direct != raw { return direct }
        var candidate = raw
        for _ in 0..<3 {
            guard candidate.contains("%"), let decoded = candidate.removingPercentEncoding, decoded != candidate else { break }
            candidate = decoded
            let redacted = keys(in: candidate)
            if redacted != candidate { return redacted }
        }
        return raw
    }

    /// Whether `raw` holds an API key, plainly or percent-encoded.
    public static func containsKey(_ raw: String) -> Bool { text(raw) != raw }

    /// `text` with `bmk_<16 hex>.<secret>` rewritten as `bmk_<16 hex>.[redacted]`, for every such key.
    /// The prefix and hex digits are matched in either case; the secret is the run of base64url
    /// characters after the dot (the whole of it, however long).
    static func keys(in text: String) -> String {
        let bytes = Array(text.utf8)
        let prefix = Array("bmk_".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        var changed = false
        while i < bytes.count {
            if let secret = secretRange(bytes, keyAt: i, prefix: prefix) {
                out.append(contentsOf: bytes[i..<secret.lowerBound])
                out.append(contentsOf: placeholder.utf8)
                i = secret.upperBound
                changed = true
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return changed ? String(decoding: out, as: UTF8.self) : text
    }

    /// Where the secret of a key starting at `start` lies, when one starts there.
    private static func secretRange(_ bytes: [UInt8], keyAt start: Int, prefix: [UInt8]) -> Range<Int>? {
        let dot = start + prefix.count + 16
        guard dot < bytes.count, bytes[dot] == UInt8(ascii: "."),
              zip(bytes[start..<start + prefix.count], prefix).allSatisfy({ lowercased($0) == $1 }),
              bytes[(start + prefix.count)..<dot].allSatisfy(isHexDigit) else { return nil }
        var end = dot + 1
        while end < bytes.count, isBase64URL(bytes[end]) { end += 1 }
        return end > dot + 1 ? (dot + 1)..<end : nil
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 { (65...90).contains(byte) ? byte + 32 : byte }
    private static func isHexDigit(_ byte: UInt8) -> Bool { (48...57).contains(byte) || (97...102).contains(lowercased(byte)) }
    private static func isBase64URL(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == 45 || byte == 95
    }
}
