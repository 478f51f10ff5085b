import Foundation

/// Writes the API's response bodies: JSON with sorted keys and unescaped slashes, the same text
/// `JSONSerialization` gives for these values, without its per-call bridging through `NSDictionary`
/// (measured as a large share of a lookup's CPU time under load).
///
/// Accepts `String`, `Substring`, `Bool`, `Int`, `Int64`, `Double`, `NSNull`, `[Any]`,
/// `[String: Any]` and optionals of these (nil is `null`); anything else is written as `null`.
/// Non-finite doubles are written as `null`.
enum ResponseJSON {
    /// The UTF-8 bytes of `value`.
    static func encode(_ value: Any) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        write(value, to: &out)
        return out
    }

    /// `value` as a string.
    static func string(_ value: Any) -> String {
        String(decoding: encode(value), as: UTF8.self)
    }

    static func write(_ value: Any, to out: inout [UInt8]) {
        switch value {
        case let s as String: writeString(s, to: &out)
        case let s as Substring: writeString(String(s), to: &out)
        case let b as Bool: out.append(contentsOf: b ? Array("true".utf8) : Array("false".utf8))
        case let n as Int: out.append(contentsOf: String(n).utf8)
        case let n as Int64: out.append(contentsOf: String(n).utf8)
        case let n as Int32: out.append(contentsOf: String(n).utf8)
        case let n as UInt64: out.append(contentsOf: String(n).utf8)
        case let d as Double:
            if d.isFinite {
                out.append(contentsOf: (d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)).utf8)
            } else {
                out.append(contentsOf: "null".utf8)
            }
        case let object as [String: Any]:
            out.append(UInt8(ascii: "{"))
            var first = true
            for key in object.keys.sorted() {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                write(object[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case let array as [Any]:
            out.append(UInt8(ascii: "["))
            for (i, item) in array.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let optional as OptionalProtocol:
            if let wrapped = optional.wrapped { write(wrapped, to: &out) } else { out.append(contentsOf: "null".utf8) }
        default:
            out.append(contentsOf: "null".utf8)
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
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

/// Lets `ResponseJSON` see through `Optional` values stored as `Any`.
private protocol OptionalProtocol {
    var wrapped: Any? { get }
}

extension Optional: OptionalProtocol {
    fileprivate var wrapped: Any? {
        switch self {
        case .some(let value): return value
        case .none: return nil
        }
    }
}

/// ISO 8601 in UTC with whole seconds (`2026-11-29T07:00:00Z`), the form `Date.ISO8601FormatStyle`
/// gives by default, computed from the civil calendar directly (no formatter per call).
func isoUTC(seconds: Int64) -> String {
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
