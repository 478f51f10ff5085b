import BloodMatchIngest
import Foundation

/// Writes the API's response bodies and access-record payloads from `JSONValue`: JSON with sorted
/// keys and unescaped slashes, the text `JSONSerialization` gives for the same values (checked in
/// the tests). Typed values, not `Any`: dynamic casts and `NSDictionary` bridging were measured as
/// a large share of a lookup's CPU time under load.
public enum ResponseJSON {
    /// The UTF-8 bytes of `value`.
    public static func encode(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        write(value, to: &out)
        return out
    }

    /// `value` as a string.
    static func string(_ value: JSONValue) -> String {
        String(decoding: encode(value), as: UTF8.self)
    }

    static func write(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .string(let s): writeString(s, to: &out)
        case .number(let text): out.append(contentsOf: text.utf8)
        case .bool(let b): out.append(contentsOf: b ? "true".utf8 : "false".utf8)
        case .null: out.append(contentsOf: "null".utf8)
        case .encoded(let bytes): out.append(contentsOf: bytes)
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            var first = true
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                write(member, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings need no escape: copy them whole.
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            out.append(contentsOf: s.utf8)
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                        hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// Building response values: literals for constants, and the number forms the API writes.
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    /// A string constant.
    public init(stringLiteral value: String) { self = .string(value) }
    /// `true` or `false`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// A whole-number constant.
    public init(integerLiteral value: Int) { self = .number(String(value)) }
    /// An array of values.
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// An object; a repeated key keeps its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    /// `null`.
    public init(nilLiteral: ()) { self = .null }

    /// A whole number.
    public static func int(_ n: some BinaryInteger) -> JSONValue { .number(String(n)) }

    /// A number as `JSONSerialization` writes it: whole values without a fraction, non-finite as `null`.
    public static func double(_ d: Double) -> JSONValue {
        guard d.isFinite else { return .null }
        return .number(d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d))
    }

    /// A string, or `null` when absent.
    public static func nullable(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }

    /// An array of strings.
    public static func strings(_ list: some Sequence<String>) -> JSONValue { .array(list.map { .string($0) }) }
}

/// ISO 8601 in UTC with whole seconds (`2026-11-29T07:00:00Z`), the form `Date.ISO8601FormatStyle`
/// gives by default, computed from the civil calendar directly (no formatter per call).
public func isoUTC(seconds: Int64) -> String {
    let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
    let secondOfDay = Int(seconds - days * 86_400)
    // Days since 1970-01-01 to the proleptic Gregorian civil date.
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let mp = (5 * dayOfYear + 2) / 153
    let day = Int(dayOfYear - (153 * mp + 2) / 5 + 1)
    let month = Int(mp < 10 ? mp + 3 : mp - 9)
    let year = Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0))
    var out = [UInt8]()
    out.reserveCapacity(20)
    func two(_ n: Int) { out.append(UInt8(48 + n / 10)); out.append(UInt8(48 + n % 10)) }
    if (0...9999).contains(year) {
        two(year / 100); two(year % 100)
    } else {
        out.append(contentsOf: String(format: "%04d", year).utf8)
    }
    out.append(UInt8(ascii: "-")); two(month)
    out.append(UInt8(ascii: "-")); two(day)
    out.append(UInt8(ascii: "T")); two(secondOfDay / 3600)
    out.append(UInt8(ascii: ":")); two(secondOfDay / 60 % 60)
    out.append(UInt8(ascii: ":")); two(secondOfDay % 60)
    out.append(UInt8(ascii: "Z"))
    return String(decoding: out, as: UTF8.self)
}

/// Whole milliseconds since the epoch, to the nearest (a `Date` holds `…12.345` as a binary
/// fraction a hair below or above it).
func epochMilliseconds(_ date: Date) -> Int64 {
    Int64((date.timeIntervalSince1970 * 1000).rounded())
}

/// ISO 8601 in UTC with milliseconds (`2026-12-02T10:11:12.345Z`): when a request arrived.
public func isoUTCMilliseconds(_ date: Date) -> String {
    let milliseconds = epochMilliseconds(date)
    let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
    let fraction = Int(milliseconds - seconds * 1000)
    let digits = String(fraction)
    return isoUTC(seconds: seconds).dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
}

/// ISO 8601 in UTC to the minute (`2026-12-02T10:11Z`) of a minute counted from the epoch.
func isoUTC(minute: Int64) -> String {
    isoUTC(seconds: minute * 60).dropLast(4) + "Z"
}
