import Crypto
import Foundation

/// The control record written beside an inventory snapshot (`SNAPSHOT.csv` + `SNAPSHOT.ctl.json`).
///
/// It names the centre, the instant the stock was counted, the number of data rows and the
/// SHA-256 of the exact CSV bytes, so a truncated, half-written or swapped file is refused, and
/// an empty stock is only believed when the producer says so explicitly. Decoding is strict:
/// unknown, missing, duplicated or wrongly typed fields are errors.
///
/// ```json
/// {"format": "bloodmatch-inventory/1", "centre": "DC-SYD-01", "as_of": "2025-06-01T06:00:00Z",
///  "row_count": 3, "sha256": "9f86d0…", "empty_stock": false}
/// ```
public struct SnapshotControl: Sendable, Hashable {
    /// The only format this decoder reads.
    public static let currentFormat = "bloodmatch-inventory/1"
    /// The largest control record read, in bytes.
    public static let maximumBytes = 64 * 1024

    /// The format identifier, always `bloodmatch-inventory/1`.
    public var format: String
    /// The distribution centre's site id; every row's `site_id` must equal it.
    public var centre: String
    /// The instant the stock was counted.
    public var asOf: Date
    /// Number of data rows (excluding the header).
    public var rowCount: Int
    /// Lower-case hex SHA-256 of the CSV file's exact bytes.
    public var sha256: String
    /// True exactly when `rowCount` is 0: the centre really holds no units.
    public var emptyStock: Bool

    /// Creates a control record without checks; `decode` is the checked path for files.
    public init(format: String = SnapshotControl.currentFormat, centre: String, asOf: Date, rowCount: Int, sha256: String, emptyStock: Bool) {
        self.format = format
        self.centre = centre
        self.asOf = asOf
        self.rowCount = rowCount
        self.sha256 = sha256
        self.emptyStock = emptyStock
    }

    /// The lower-case hex SHA-256 of `bytes`, as the `sha256` field carries it (for producers and tests;
    /// the decoder hashes incrementally).
    public static func checksum(of bytes: some Collection<UInt8>) -> String {
        let digest = SHA256.hash(data: Array(bytes))
        return digest.map { DisplayText.hex(UInt32($0), width: 2) }.joined().lowercased()
    }

    /// The control record's file name for a snapshot: `X.csv` → `X.ctl.json`.
    public static func controlFileName(forSnapshot csvName: String) -> String {
        for suffix in [".csv", ".fhir.json", ".json"] where csvName.hasSuffix(suffix) {
            return String(csvName.dropLast(suffix.count)) + ".ctl.json"
        }
        return csvName + ".ctl.json"
    }

    /// Decodes and checks a control record. Errors carry `fileName` and the field at fault.
    public static func decode(_ bytes: some Collection<UInt8>, fileName: String) throws(SnapshotFileError) -> SnapshotControl {
        func fail(_ field: String?, _ value: String? = nil, _ message: String) -> SnapshotFileError {
            SnapshotFileError(kind: .controlRecordInvalid, file: fileName, field: field, value: value, message: message)
        }
        guard bytes.count <= maximumBytes else {
            throw fail(nil, nil, "control record is \(bytes.count) bytes; at most \(maximumBytes) are read")
        }
        var object: [String: ControlValue] = [:]
        switch Result(catching: { () throws(JSONInputError) in try StrictJSON(maximumDepth: 2).parse(Array(bytes)) }) {
        case .failure(let error):
            throw fail(error.topMember, nil, "control record is not a flat JSON object: \(error.description)")
        case .success(.object(let members)):
            for (key, value) in members { object[key] = ControlValue(value) }
        case .success(let other):
            throw fail(nil, nil, "control record is not a flat JSON object: the document is \(other.kind == "array" ? "an" : "a") \(other.kind)")
        }
        let known = ["format", "centre", "as_of", "row_count", "sha256", "empty_stock"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw fail(DisplayText.make(Array(unknown.utf8)), nil, "unknown field '\(DisplayText.make(Array(unknown.utf8)))' (allowed: \(known.joined(separator: ", ")))")
        }
        if let missing = known.first(where: { object[$0] == nil }) {
            throw fail(missing, nil, "required field '\(missing)' is missing")
        }
        func string(_ key: String) throws(SnapshotFileError) -> String {
            guard case .string(let text)? = object[key] else {
                throw fail(key, object[key]?.shown, "'\(key)' must be a string, found \(object[key]?.typeName ?? "nothing")")
            }
            return text
        }

        let format = try string("format")
        guard format == currentFormat else {
            throw fail("format", DisplayText.make(Array(format.utf8)), "format '\(DisplayText.make(Array(format.utf8)))' is not supported; expected '\(currentFormat)'")
        }
        let centre = try string("centre")
        guard SiteIdentifier.isValid(centre) else {
            throw fail("centre", DisplayText.make(Array(centre.utf8)), "centre '\(DisplayText.make(Array(centre.utf8)))' is not a site id (1–64 of A–Z a–z 0–9 . _ -)")
        }
        let asOfText = try string("as_of")
        let asOf: Double
        do {
            asOf = try ISO8601Timestamp.secondsSince1970(asOfText)
        } catch {
            throw fail("as_of", DisplayText.make(Array(asOfText.utf8)), "as_of '\(DisplayText.make(Array(asOfText.utf8)))' is not an ISO 8601 instant with offset: \(error.explanation)")
        }
        guard case .integer(let rowCount)? = object["row_count"], rowCount >= 0 else {
            throw fail("row_count", object["row_count"]?.shown, "'row_count' must be a non-negative integer, found \(object["row_count"]?.shown ?? "nothing")")
        }
        let sha256 = try string("sha256")
        guard sha256.utf8.count == 64, sha256.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            throw fail("sha256", DisplayText.make(Array(sha256.utf8)), "'sha256' must be 64 lower-case hex digits")
        }
        guard case .boolean(let emptyStock)? = object["empty_stock"] else {
            throw fail("empty_stock", object["empty_stock"]?.shown, "'empty_stock' must be true or false, found \(object["empty_stock"]?.shown ?? "nothing")")
        }
        guard emptyStock == (rowCount == 0) else {
            throw fail(
                "empty_stock", String(emptyStock),
                emptyStock
                    ? "empty_stock is true but row_count is \(rowCount)"
                    : "row_count is 0 but empty_stock is false; an empty stock must be declared with empty_stock: true")
        }
        return SnapshotControl(
            format: format, centre: centre, asOf: Date(timeIntervalSince1970: asOf), rowCount: rowCount,
            sha256: sha256, emptyStock: emptyStock)
    }
}

/// Site identifiers: 1–64 characters from `A–Z a–z 0–9 . _ -`, e.g. `DC-SYD-01`.
enum SiteIdentifier {
    static func isValid(_ text: String) -> Bool {
        let bytes = text.utf8
        return !bytes.isEmpty && bytes.count <= 64 && bytes.allSatisfy(isAllowed)
    }

    static func isAllowed(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
    }
}

extension ISO8601Timestamp.Problem {
    /// A short phrase for messages.
    var explanation: String {
        switch self {
        case .format(let hint): hint
        case .missingZone: "no time-zone offset (add 'Z' or ±hh:mm)"
        case .impossible(let hint): hint
        }
    }
}

/// A control record's value: the kinds its fields may hold; anything else is named for the error.
enum ControlValue: Equatable {
    case string(String)
    case integer(Int)
    case boolean(Bool)
    case other(String)

    init(_ value: JSONValue) {
        switch value {
        case .string(let text): self = .string(text)
        case .bool(let flag): self = .boolean(flag)
        case .number(let text):
            // RFC 8259 grammar is checked by the reader; an integer has no fraction or exponent.
            if !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let n = Int(text) { self = .integer(n) } else { self = .other("number \(text)") }
        case .null: self = .other("null")
        default: self = .other(value.kind == "array" ? "an array" : "an object")
        }
    }

    var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .boolean: "a boolean"
        case .other(let kind): kind
        }
    }

    var shown: String {
        switch self {
        case .string(let text): "\"" + DisplayText.make(Array(text.utf8)) + "\""
        case .integer(let number): String(number)
        case .boolean(let flag): String(flag)
        case .other(let kind): kind
        }
    }
}
