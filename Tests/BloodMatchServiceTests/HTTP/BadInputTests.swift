import BloodMatchService
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Data/SOURCES.md §S22 HTTP items 46–60 and the issue's bad-input list: each gets a precise 4xx
/// `{"error":{"code","message","field"}}` and changes nothing.
@Suite("Hospital HTTP API refuses bad input")
struct BadInputTests {
    enum Key: Sendable { case valid, other, expired, revoked, none, literal(String) }

    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var method: HTTPRequest.Method = .post
        var uri: String = "/v1/matches"
        var key: Key = .valid
        var headers: [(String, String)] = []
        var body: [UInt8]?
        var contentType: String? = "application/json"
        var status: Int
        var code: String?
        var field: String?
        var description: String { name }
    }

    static func body(_ text: String) -> [UInt8] { Array(text.utf8) }
    static func match(_ replacing: [String: String] = [:], extra: String = "") -> [UInt8] {
        var fields: [String: String] = [
            "component": #""RBC""#, "recipient": #"{"abo":"O","rhd":"NEG"}"#, "quantity": "1",
        ]
        for (k, v) in replacing { fields[k] = v }
        let inner = fields.sorted { $0.key < $1.key }.filter { $0.value != "-" }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
        return Array(("{" + inner + extra + "}").utf8)
    }

    static let availability = "/v1/availability?component=RBC&abo=O&rhd=NEG"
    static let allRequirements = "[" + (0..<47).map { i in "\"\(["IRRADIATED", "CMV_NEG", "K_NEG", "E_NEG", "c_NEG"][i % 5])\"" }.joined(separator: ",") + "]"

    static let cases: [Case] = [
        // 46 oversize body
        Case(name: "46 10 MB JSON body", body: Array(repeating: UInt8(ascii: " "), count: 10 * 1024 * 1024) + match(), status: 413, code: "body_too_large"),
        Case(name: "46 65 KiB body", body: match(["component": "\"" + String(repeating: "R", count: 65 * 1024) + "\""]), status: 413, code: "body_too_large"),
        // 47 deep nesting
        Case(name: "47 50k nested [", body: Array(repeating: UInt8(ascii: "["), count: 50_000), status: 400, code: "malformed_json", field: "body"),
        Case(name: "47 100k nested [ (over the cap)", body: Array(repeating: UInt8(ascii: "["), count: 100_000), status: 413, code: "body_too_large"),
        Case(name: "47 17 nested objects", body: body(String(repeating: #"{"a":"#, count: 17) + "1" + String(repeating: "}", count: 17)), status: 400, code: "malformed_json"),
        // 48 duplicate keys
        Case(name: "48 duplicate keys", body: body(#"{"component":"RBC","component":"PLT","recipient":{"abo":"O","rhd":"NEG"},"quantity":1}"#), status: 400, code: "malformed_json"),
        Case(name: "48 duplicate nested keys", body: match(["recipient": #"{"abo":"O","abo":"AB","rhd":"NEG"}"#]), status: 400, code: "malformed_json"),
        // 49 encoding
        Case(name: "49 lone surrogate", body: match(["component": #""\ud800""#]), status: 400, code: "malformed_json"),
        Case(name: "49 invalid UTF-8", body: [UInt8(ascii: "{"), UInt8(ascii: "\"")] + [0xC0, 0xAF] + Array(#"":1}"#.utf8), status: 400, code: "malformed_json"),
        Case(name: "49 NUL escape", body: match(["component": #""RBC\u0000""#]), status: 400, code: "malformed_json"),
        Case(name: "malformed JSON", body: body(#"{"component":"RBC","#), status: 400, code: "malformed_json"),
        Case(name: "empty body", body: [], status: 400, code: "malformed_json"),
        Case(name: "JSON array body", body: body("[]"), status: 400, code: "invalid_field", field: "body"),
        Case(name: "trailing garbage", body: match() + Array("x".utf8), status: 400, code: "malformed_json"),
        // 50 numbers
        Case(name: "50 quantity 1e309", body: match(["quantity": "1e309"]), status: 400, code: "invalid_field", field: "quantity"),
        Case(name: "50 quantity -0", body: match(["quantity": "-0"]), status: 400, code: "invalid_field", field: "quantity"),
        Case(name: "50 quantity 2^64", body: match(["quantity": "18446744073709551616"]), status: 400, code: "invalid_field", field: "quantity"),
        Case(name: "50 quantity 1.5", body: match(["quantity": "1.5"]), status: 400, code: "invalid_field", field: "quantity"),
        Case(name: "50 quantity 1e3", body: match(["quantity": "1e3"]), status: 400, code: "invalid_field", field: "quantity"),
        Case(name: "50 a 40-digit number", body: match(["quantity": String(repeating: "9", count: 40)]), status: 400, code: "malformed_json"),
        // 51 content type
        Case(name: "51 text/plain", body: match(), contentType: "text/plain", status: 415, code: "unsupported_media_type"),
        Case(name: "51 no Content-Type", body: match(), contentType: nil, status: 415, code: "unsupported_media_type"),
        // 52, 53 requirements and quantities
        Case(name: "52 47 requirements", body: match(["requirements": allRequirements]), status: 400, code: "too_many_requirements", field: "requirements"),
        Case(name: "52 47 requirements in a query", method: .get, uri: availability + "&require=" + (0..<47).map { _ in "IRRADIATED" }.joined(separator: ","),
             body: nil, status: 400, code: "too_many_requirements", field: "require"),
        Case(name: "53 unknown requirement", body: match(["requirements": #"["GLOW_IN_THE_DARK"]"#]), status: 400, code: "invalid_field", field: "requirements"),
        Case(name: "53 requirement twice", body: match(["requirements": #"["IRRADIATED","IRRADIATED"]"#]), status: 400, code: "invalid_field", field: "requirements"),
        Case(name: "53 quantity 0", body: match(["quantity": "0"]), status: 400, code: "invalid_field", field: "quantity"),
        Case(name: "53 quantity -1", body: match(["quantity": "-1"]), status: 400, code: "invalid_field", field: "quantity"),
        Case(name: "53 quantity 10000", body: match(["quantity": "10000"]), status: 400, code: "invalid_field", field: "quantity"),
        Case(name: "quantity missing", body: match(["quantity": "-"]), status: 400, code: "invalid_field", field: "quantity"),
        Case(name: "quantity as a string", body: match(["quantity": #""2""#]), status: 400, code: "invalid_field", field: "quantity"),
        Case(name: "component as a number", body: match(["component": "7"]), status: 400, code: "invalid_field", field: "component"),
        Case(name: "unknown component", body: match(["component": #""BLOOD""#]), status: 400, code: "invalid_field", field: "component"),
        Case(name: "component lower case", body: match(["component": #""rbc""#]), status: 400, code: "invalid_field", field: "component"),
        Case(name: "ABO zero instead of O", body: match(["recipient": #"{"abo":"0","rhd":"NEG"}"#]), status: 400, code: "invalid_field", field: "recipient.abo"),
        Case(name: "ABO 'AB Pos'", body: match(["recipient": #"{"abo":"AB Pos","rhd":"POS"}"#]), status: 400, code: "invalid_field", field: "recipient.abo"),
        Case(name: "RhD missing", body: match(["recipient": #"{"abo":"O"}"#]), status: 400, code: "invalid_field", field: "recipient.rhd"),
        Case(name: "recipient age 200", body: match(["recipient": #"{"abo":"O","rhd":"NEG","age":200}"#]), status: 400, code: "invalid_field", field: "recipient.age"),
        Case(name: "contradictory context", body: match(["recipient": #"{"abo":"O","rhd":"NEG","context":["childbearing","not-childbearing"]}"#]), status: 400, code: "invalid_field", field: "recipient.context"),
        Case(name: "unknown field", body: match(extra: #","priority":"VIP""#), status: 400, code: "unknown_field", field: "priority"),
        Case(name: "unknown recipient field", body: match(["recipient": #"{"abo":"O","rhd":"NEG","name":"Jane Doe"}"#]), status: 400, code: "unknown_field", field: "recipient.name"),
        Case(name: "bad needed_by", body: match(["needed_by": #""tomorrow""#]), status: 400, code: "invalid_field", field: "needed_by"),
        Case(name: "bad Idempotency-Key", headers: [("Idempotency-Key", "has spaces in it")], body: match(), status: 400, code: "invalid_field", field: "Idempotency-Key"),
        // 54 another hospital
        Case(name: "54 hospital_id of another hospital", body: match(["hospital_id": #""HOTH""#]), status: 403, code: "forbidden", field: "hospital_id"),
        // 56 smuggling
        Case(name: "56 Content-Length with Transfer-Encoding", headers: [("Transfer-Encoding", "chunked"), ("Content-Length", "40")], body: match(), status: 400, code: "ambiguous_length"),
        // 57 headers
        Case(name: "57 a 64 KB header", method: .get, uri: availability, headers: [("X-Padding", String(repeating: "a", count: 64 * 1024))], status: 431, code: "headers_too_large"),
        // 58 paths
        Case(name: "58 /v1/..%2f..%2f", method: .get, uri: "/v1/..%2f..%2fetc%2fpasswd", status: 404, code: "not_found"),
        Case(name: "58 double-encoded slash", method: .get, uri: "/v1/matches/..%252f..%252fetc", status: 400, code: "invalid_field", field: "id"),
        Case(name: "58 traversal in a decision id", method: .get, uri: "/v1/matches/..%2F..%2Fopenapi.json", status: 400, code: "invalid_field", field: "id"),
        Case(name: "58 100 KB URL", method: .get, uri: availability + "&x=" + String(repeating: "a", count: 100 * 1024), status: 414, code: "uri_too_long"),
        Case(name: "58 path traversal without a key", method: .get, uri: "/v1/../../etc/passwd", key: .none, status: 401, code: "unauthenticated"),
        // 59 methods
        Case(name: "59 TRACE", method: .trace, uri: "/v1/matches", status: 405, code: "method_not_allowed"),
        Case(name: "59 PUT", method: .put, uri: "/v1/matches", body: match(), status: 405, code: "method_not_allowed"),
        Case(name: "59 DELETE", method: .delete, uri: "/v1/matches/\(UUID().uuidString)", status: 405, code: "method_not_allowed"),
        Case(name: "59 POST on availability", method: .post, uri: "/v1/availability", body: match(), status: 405, code: "method_not_allowed"),
        Case(name: "59 DELETE on /health", method: .delete, uri: "/health", key: .none, status: 405, code: "method_not_allowed"),
        // 60 keys
        Case(name: "60 no key", key: .none, body: match(), status: 401, code: "unauthenticated"),
        Case(name: "60 unknown key", key: .literal("bmk_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), body: match(), status: 401, code: "unauthenticated"),
        Case(name: "60 expired key", key: .expired, body: match(), status: 401, code: "unauthenticated"),
        Case(name: "60 revoked key", key: .revoked, body: match(), status: 401, code: "unauthenticated"),
        Case(name: "60 JWT alg:none", key: .literal("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJIV09MIn0."), body: match(), status: 401, code: "unauthenticated"),
        Case(name: "60 Basic scheme", key: .none, headers: [("Authorization", "Basic SFdPTDpzZWNyZXQ=")], body: match(), status: 401, code: "unauthenticated"),
        // query parameters
        Case(name: "unknown query parameter", method: .get, uri: availability + "&hospital=HOTH", status: 400, code: "unknown_parameter", field: "hospital"),
        Case(name: "parameter twice", method: .get, uri: availability + "&abo=AB", status: 400, code: "invalid_field", field: "abo"),
        Case(name: "component missing", method: .get, uri: "/v1/availability?abo=O&rhd=NEG", status: 400, code: "invalid_field", field: "component"),
        Case(name: "limit 0", method: .get, uri: availability + "&limit=0", status: 400, code: "invalid_field", field: "limit"),
        Case(name: "unknown path", method: .get, uri: "/v2/availability", key: .none, status: 404, code: "not_found"),
    ]

    @Test("each bad request gets its precise 4xx error and changes nothing")
    func refusals() async throws {
        try await APITestHarness.run { client, h in
            for c in Self.cases {
                var headers = HTTPFields()
                for (name, value) in c.headers { headers.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
                switch c.key {
                case .valid: headers[.authorization] = "Bearer \(h.token)"
                case .other: headers[.authorization] = "Bearer \(h.otherToken)"
                case .expired: headers[.authorization] = "Bearer \(h.expiredToken)"
                case .revoked: headers[.authorization] = "Bearer \(h.revokedToken)"
                case .literal(let token): headers[.authorization] = "Bearer \(token)"
                case .none: break
                }
                if c.body != nil, let type = c.contentType { headers[.contentType] = type }
                let reply = try await client.execute(uri: c.uri, method: c.method, headers: headers, body: c.body.map { ByteBuffer(bytes: $0) }) { response in
                    Reply(status: response.status, headers: response.headers, body: Array(response.body.readableBytesView))
                }
                #expect(Int(reply.status.code) == c.status, "\(c.name): \(reply.text.prefix(300))")
                if let code = c.code { #expect(reply.errorCode == code, "\(c.name): \(reply.text.prefix(300))") }
                if let field = c.field { #expect(reply.error["field"] as? String == field, "\(c.name)") }
                #expect(reply.error["message"] is String, "\(c.name)")
                #expect(reply.headers[.contentType]?.hasPrefix("application/json") == true, "\(c.name)")
                if c.status == 401 { #expect(reply.headers[.wwwAuthenticate] != nil, "\(c.name)") }
                if c.status == 405 { #expect(reply.headers[.allow] != nil, "\(c.name)") }
            }
            let decisions = try await h.test.with(.owner) { db in
                var n = 0
                for try await (count,) in try await db.client.query("SELECT count(*)::int FROM bm.decisions", logger: db.logger).decode((Int,).self) { n = count }
                return n
            }
            #expect(decisions == 0, "a refused request left a decision behind")
        }
    }

    @Test("twenty requirements at once are answered within the deadline, not refused")
    func allRequirementsAnswered() async throws {
        try await APITestHarness.run { client, h in
            let every = "[" + ["IRRADIATED", "CMV_NEG", "LEUKOREDUCED", "WASHED", "HBS_NEG", "HLA_MATCHED", "LOW_TITRE", "VOLUME_REDUCED", "K_NEG", "C_NEG",
                               "c_NEG", "E_NEG", "e_NEG", "FYA_NEG", "FYB_NEG", "JKA_NEG", "JKB_NEG", "S_NEG", "s_NEG", "M_NEG"].map { "\"\($0)\"" }.joined(separator: ",") + "]"
            let started = ContinuousClock.now
            let reply = try await client.send("/v1/matches", .post, token: h.token, body: String(decoding: Self.match(["requirements": every]), as: UTF8.self))
            #expect(ContinuousClock.now - started < .seconds(6))
            #expect([200, 201].contains(Int(reply.status.code)), "\(reply.text)")
            #expect(reply.object["outcome"] as? String == "none_compatible_available")
        }
    }
}
