@testable import BloodMatchService
import BloodMatchIngest
import Foundation
import Testing

/// The response writer gives what `JSONSerialization` (sorted keys, unescaped slashes) and
/// `Date.ISO8601FormatStyle` give, which the API's bodies were written with before.
struct ResponseJSONTests {
    static func reference(_ object: Any) throws -> Any {
        try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    @Test("bodies parse to the same values as JSONSerialization's, keys in sorted order")
    func sameAsJSONSerialization() throws {
        let text = "x/y \"quoted\" \\ back\nline\ttab\u{01} é 🩸"
        let body: JSONValue = [
            "b": 1, "a": .string(text), "c": .array([1.5, 2.0, -0.25, 1e21, 12.3].map { JSONValue.double($0) }),
            "d": ["z": true, "y": false, "x": nil], "e": [["k": 1]],
            "f": .int(Int64(-9_000_000_000)), "g": .nullable(nil), "h": .strings(["s", "t"]), "i": ["p": "q"],
            "j": .string("plain ascii, no escapes"),
        ]
        let same: [String: Any] = [
            "b": 1, "a": text, "c": [1.5, 2.0, -0.25, 1e21, 12.3], "d": ["z": true, "y": false, "x": NSNull()] as [String: Any],
            "e": [["k": 1]], "f": Int64(-9_000_000_000), "g": NSNull(), "h": ["s", "t"], "i": ["p": "q"],
            "j": "plain ascii, no escapes",
        ]
        let ours = ResponseJSON.encode(body)
        let parsed = try JSONSerialization.jsonObject(with: Data(ours))
        #expect(NSDictionary(dictionary: parsed as! [String: Any]).isEqual(to: try Self.reference(same) as! [String: Any]))
        let written = String(decoding: ours, as: UTF8.self)
        #expect(written.hasPrefix(#"{"a":"x/y \"quoted\" \\ back\nline\ttab\u0001 é 🩸","b":1,"c":[1.5,2,-0.25,"#), "\(written)")
        #expect(written.contains(#""g":null"#))
        #expect(written.hasSuffix(#""j":"plain ascii, no escapes"}"#))
        #expect(ResponseJSON.string(.array([.double(.nan), .double(.infinity)])) == "[null,null]")
        // The strict reader reads back what the writer wrote.
        #expect(try StrictJSON().parse(ours) == body)
    }

    @Test("ISO 8601 instants equal Date.ISO8601FormatStyle's, across eras, leap days and negative instants")
    func isoMatchesFormatStyle() {
        var seconds: [Int64] = [0, -1, 59, 86_399, 86_400, 951_782_400, 951_868_799, 1_800_000_000, 4_102_444_800, -2_208_988_800, 253_402_300_799]
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2_000 {
            x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            seconds.append(Int64(x >> 30) % 8_000_000_000 - 2_000_000_000)
        }
        for s in seconds {
            let date = Date(timeIntervalSince1970: Double(s))
            #expect(isoUTC(seconds: s) == Date.ISO8601FormatStyle().format(date), "\(s)")
            #expect(iso(Date(timeIntervalSince1970: Double(s) + 0.75)) == Date.ISO8601FormatStyle().format(date), "\(s).75")
        }
    }
}
