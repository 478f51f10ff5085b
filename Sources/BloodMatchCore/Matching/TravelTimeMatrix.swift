/// Measured travel times between sites, overriding the great-circle model for the pairs listed.
///
/// File format (`Data/travel-times.csv` when present): header `from_site,to_site,minutes`, one
/// row per directed pair, minutes a positive number (road or courier time, handling excluded;
/// `MatchingSettings.handlingMinutes` is added on top).
public struct TravelTimeMatrix: Sendable, Hashable {
    private var minutes: [String: [String: Double]]

    /// An empty matrix: every pair uses the great-circle model.
    public init() { minutes = [:] }

    /// Number of pairs.
    public var count: Int { minutes.values.reduce(0) { $0 + $1.count } }

    /// Travel minutes from one site to another, if measured.
    @inline(__always)
    public func minutes(from origin: String, to destination: String) -> Double? { minutes[origin]?[destination] }

    /// Sets one pair.
    public mutating func set(from origin: String, to destination: String, minutes value: Double) {
        minutes[origin, default: [:]][destination] = value
    }

    /// A row that cannot be used, with its line and field.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The file.
        public var file: String
        /// 1-based line.
        public var line: Int
        /// The field (`header` for the header line).
        public var field: String
        /// The offending text.
        public var value: String
        /// What is wrong.
        public var reason: String
        public var description: String { "\(file):\(line): \(field) '\(value)': \(reason)" }
    }

    /// Parses the CSV text; any bad row refuses the whole file (a half-applied matrix would mix models).
    public init(csv text: String, fileName: String) throws(ParseError) {
        self.init()
        var lineNumber = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if lineNumber == 1 {
                guard line == "from_site,to_site,minutes" else {
                    throw ParseError(file: fileName, line: 1, field: "header", value: String(line.prefix(80)),
                                     reason: "expected exactly from_site,to_site,minutes")
                }
                continue
            }
            if line.isEmpty { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == 3 else {
                throw ParseError(file: fileName, line: lineNumber, field: "row", value: String(line.prefix(80)), reason: "expected 3 fields, found \(fields.count)")
            }
            for (name, value) in [("from_site", fields[0]), ("to_site", fields[1])] where value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" }) {
                throw ParseError(file: fileName, line: lineNumber, field: name, value: String(value), reason: "not a site id")
            }
            guard let value = Double(fields[2]), value.isFinite, value > 0, value < 7 * 24 * 60 else {
                throw ParseError(file: fileName, line: lineNumber, field: "minutes", value: String(fields[2]),
                                 reason: "must be a number of minutes above 0 and below one week")
            }
            if minutes(from: String(fields[0]), to: String(fields[1])) != nil {
                throw ParseError(file: fileName, line: lineNumber, field: "to_site", value: String(fields[1]), reason: "pair listed twice")
            }
            set(from: String(fields[0]), to: String(fields[1]), minutes: value)
        }
    }
}
