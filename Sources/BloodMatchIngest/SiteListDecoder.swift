import BloodMatchCore

/// A problem in a site list file; the whole list is refused (sites are reference data).
///
/// `description` reads `sites.csv:7: field latitude: <message> [coordinate]`.
public struct SiteListError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a stable code.
    public enum Kind: String, Sendable, Hashable, CaseIterable, Codable {
        /// Encoding, NUL, quoting, line-end, header or size problems of the file itself.
        case structure
        /// Not as many fields as the header (seven, or six in lists without addresses).
        case wrongFieldCount
        /// A site id outside `A–Z a–z 0–9 . _ -` or longer than 64 characters.
        case siteIdentifier
        /// The same site id twice.
        case duplicateSite
        /// Empty, over-long, padded or control-character text in `name` or `region`.
        case text
        /// Kind not `distribution_centre` or `hospital`.
        case siteKind
        /// Latitude or longitude not a plain decimal in range.
        case coordinate
    }

    /// The stable code.
    public var kind: Kind
    /// The file name.
    public var file: String
    /// Physical line (1-based), when the problem has one.
    public var line: Int?
    /// The column at fault, when there is one.
    public var field: String?
    /// The offending value, escaped and truncated for display.
    public var value: String?
    /// A sentence a person can act on.
    public var message: String

    /// Creates an error; `value` is expected to be display-safe already.
    public init(kind: Kind, file: String, line: Int?, field: String?, value: String?, message: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.field = field
        self.value = value
        self.message = message
    }

    /// `file:line: field name: message [kind]`.
    public var description: String {
        locatedDescription(file: file, line: line, field: field, message: message, kind: kind.rawValue)
    }
}

/// Decodes a site list CSV `site_id,name,kind,latitude,longitude,region,address` into `Site`
/// values. The older header without `address` is still read (addresses left empty); a hospital
/// without an address cannot be issued to, since a distribution record names the consignee's
/// address (21 CFR 606.165).
///
/// All or nothing: the first problem refuses the list. Same file rules as inventory snapshots
/// (UTF-8 with an optional byte-order mark skipped, LF or CRLF, RFC 4180 quoting, no NUL or bare
/// CR). `name` and `region` are free text kept exactly as written, so a name such as `=SUM(1)`
/// stays text; whoever exports it to a spreadsheet must prefix it with `'`. Coordinates are plain
/// decimals (`-33.8688`): no exponent, hex, decimal comma, NaN or infinity.
public enum SiteListDecoder {
    /// The header, exactly, in this order.
    public static let columns = ["site_id", "name", "kind", "latitude", "longitude", "region", "address"]
    /// The header of lists written before sites had addresses.
    public static let columnsWithoutAddress = Array(columns.dropLast())
    /// Largest site list read, in bytes.
    public static let maximumBytes = 16 * 1024 * 1024
    /// Longest `name` or `region`, in bytes.
    public static let maximumTextBytes = 200

    /// Decodes the whole file.
    public static func decode(_ bytes: some Collection<UInt8>, fileName: String) throws(SiteListError) -> [Site] {
        func structure(_ line: Int?, _ field: String?, _ message: String) -> SiteListError {
            SiteListError(kind: .structure, file: fileName, line: line, field: field, value: nil, message: message)
        }
        guard bytes.count <= maximumBytes else { throw structure(nil, nil, "site list is larger than \(maximumBytes) bytes") }
        guard !bytes.isEmpty else { throw structure(nil, nil, "the site list is empty (0 bytes)") }
        var data = Array(bytes)
        if data.starts(with: [0xFF, 0xFE]) || data.starts(with: [0xFE, 0xFF]) {
            throw structure(1, nil, "the file starts with a UTF-16 byte-order mark; save it as UTF-8")
        }
        if data.starts(with: [0xEF, 0xBB, 0xBF]) { data.removeFirst(3) }
        return try data.withUnsafeBufferPointer { (buffer) throws(SiteListError) -> [Site] in
            var sites: [Site] = []
            var seen: [String: Int] = [:]
            var spans: [CSVFieldSpan] = []
            var position = 0
            var line = 1
            var headerSeen = false
            var expected = columns
            while position < buffer.count {
                let outcome = CSVRecordScanner.scan(buffer, from: position, isFinal: true, spans: &spans)
                guard case .record(let next, _, let lineEnds, _) = outcome else {
                    switch outcome {
                    case .bareCarriageReturn(_, let offset):
                        throw structure(line + offset, nil, "carriage return not followed by a line feed; line ends must be LF or CRLF")
                    case .characterAfterClosingQuote(_, let offset, _):
                        throw structure(line + offset, nil, "character after a closing quote; a quoted field must end at ',' or the line end")
                    case .unterminatedQuote(_, let offset):
                        throw structure(line + offset, nil, "a quote opened here is never closed")
                    default:
                        throw structure(line, nil, "incomplete record")
                    }
                }
                let fields = spans.map { span in
                    span.hasEscapedQuote ? CSVRecordScanner.unescaped(buffer, span) : Array(buffer[span.start..<span.end])
                }
                for (index, field) in fields.enumerated() {
                    let name = headerSeen && index < expected.count ? expected[index] : "column \(index + 1)"
                    if field.contains(0) { throw structure(line, name, "NUL byte (0x00) in the field") }
                    if let bad = field.withUnsafeBufferPointer({ UTF8Validation.firstInvalidOffset($0) }) {
                        throw structure(line, name, "byte 0x\(DisplayText.hex(UInt32(field[bad]), width: 2)) is not valid UTF-8; save the file as UTF-8")
                    }
                }
                if !headerSeen {
                    if fields.count == columnsWithoutAddress.count { expected = columnsWithoutAddress }
                    if let problem = CSVHeader.check(fields, expected: expected) {
                        throw SiteListError(kind: .structure, file: fileName, line: line, field: problem.field, value: problem.value, message: problem.message)
                    }
                    headerSeen = true
                } else {
                    let site = try decodeSite(fields, columns: expected, line: line, fileName: fileName)
                    if let first = seen[site.id] {
                        throw SiteListError(
                            kind: .duplicateSite, file: fileName, line: line, field: "site_id", value: site.id,
                            message: "site_id '\(site.id)' already appears at line \(first)")
                    }
                    seen[site.id] = line
                    sites.append(site)
                }
                line += 1 + lineEnds
                position = next
            }
            guard headerSeen else { throw structure(1, nil, "the file has no header line") }
            return sites
        }
    }

    private static func decodeSite(_ fields: [[UInt8]], columns: [String], line: Int, fileName: String) throws(SiteListError) -> Site {
        func fail(_ kind: SiteListError.Kind, _ column: Int?, _ message: String) -> SiteListError {
            SiteListError(
                kind: kind, file: fileName, line: line, field: column.map { columns[$0] },
                value: column.map { DisplayText.make(fields[$0]) }, message: message)
        }
        guard fields.count == columns.count else {
            throw fail(.wrongFieldCount, nil, "row has \(fields.count) fields; expected \(columns.count) (\(columns.joined(separator: ",")))")
        }
        let id = String(decoding: fields[0], as: UTF8.self)
        guard SiteIdentifier.isValid(id) else {
            throw fail(.siteIdentifier, 0, "site_id '\(DisplayText.make(fields[0]))' must be 1–64 of A–Z a–z 0–9 . _ -")
        }
        let name = try text(fields[1], column: 1, fail: fail)
        guard let kind = SiteKind(rawValue: String(decoding: fields[2], as: UTF8.self)) else {
            throw fail(.siteKind, 2, "kind '\(DisplayText.make(fields[2]))' is not distribution_centre or hospital")
        }
        guard let latitude = decimal(fields[3]), abs(latitude) <= 90 else {
            throw fail(.coordinate, 3, "latitude '\(DisplayText.make(fields[3]))' is not a plain decimal between -90 and 90")
        }
        guard let longitude = decimal(fields[4]), abs(longitude) <= 180 else {
            throw fail(.coordinate, 4, "longitude '\(DisplayText.make(fields[4]))' is not a plain decimal between -180 and 180")
        }
        let region = try text(fields[5], column: 5, fail: fail)
        let address = fields.count > 6 ? try text(fields[6], column: 6, fail: fail) : ""
        return Site(id: id, name: name, kind: kind, location: GeoPoint(latitude: latitude, longitude: longitude), region: region,
                    address: address)
    }

    private static func text(
        _ bytes: [UInt8], column: Int, fail: (SiteListError.Kind, Int?, String) -> SiteListError
    ) throws(SiteListError) -> String {
        let label = columns[column]
        guard !bytes.isEmpty else { throw fail(.text, column, "\(label) is empty") }
        guard bytes.count <= maximumTextBytes else { throw fail(.text, column, "\(label) is longer than \(maximumTextBytes) bytes") }
        guard bytes.first != 0x20, bytes.last != 0x20 else { throw fail(.text, column, "\(label) has leading or trailing spaces") }
        guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw fail(.text, column, "\(label) holds a control character (tab, line end or similar)")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `-?digits(.digits)?` with at most 3 integer and 12 fractional digits.
    static func decimal(_ bytes: [UInt8]) -> Double? {
        var index = 0
        if bytes.first == UInt8(ascii: "-") { index = 1 }
        let integerStart = index
        while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
        let integerDigits = index - integerStart
        guard integerDigits >= 1, integerDigits <= 3 else { return nil }
        if index < bytes.count {
            guard bytes[index] == UInt8(ascii: ".") else { return nil }
            index += 1
            let fractionStart = index
            while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
            guard index - fractionStart >= 1, index - fractionStart <= 12, index == bytes.count else { return nil }
        }
        return Double(String(decoding: bytes, as: UTF8.self))
    }
}
