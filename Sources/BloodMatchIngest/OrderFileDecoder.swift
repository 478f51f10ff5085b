import BloodMatchCore
import Foundation

/// One order line of an order file, validated (`Data/order-format.md`).
public struct DecodedOrder: Sendable, Hashable {
    /// Order id.
    public var orderID: String
    /// Hospital site id.
    public var hospitalID: String
    /// Component.
    public var component: Component
    /// Recipient group; nil for UNKNOWN.
    public var group: BloodGroup?
    /// Recipient context.
    public var context: RecipientContext
    /// Units wanted.
    public var quantity: Int
    /// Special requirements.
    public var requirements: [UnitAttribute]
    /// Urgency.
    public var urgency: Urgency
    /// Needed-by instant, if given.
    public var neededBy: Date?
    /// Maximum unit age in days, if given.
    public var maximumUnitAgeDays: Int?
    /// Line number in the file (1-based, header = 1).
    public var line: Int
}

/// Why an order file was refused: the first bad field, with its line and value. Nothing is stored.
public struct OrderFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// File name.
    public var file: String
    /// Line (1-based).
    public var line: Int
    /// Field name.
    public var field: String
    /// The value found.
    public var value: String
    /// What is wrong.
    public var reason: String

    /// Text for people and logs.
    public var description: String { "\(file):\(line): \(field) '\(value)': \(reason)" }
}

/// Decodes an order file: a header line and one order per line, comma-separated, no quoting.
///
/// All or nothing: the first bad line refuses the file, so a half-imported day of orders never
/// reaches a batch run.
public enum OrderFileDecoder {
    /// The header, in this order.
    public static let header = ["order_id", "hospital", "component", "abo", "rhd", "context", "quantity", "requirements",
                                "urgency", "needed_by", "max_age_days"]

    /// Decodes the bytes of a file.
    public static func decode(_ data: Data, file: String) throws(OrderFileError) -> [DecodedOrder] {
        var text = String(decoding: data, as: UTF8.self)
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        // "\r\n" is one Character in Swift: normalise line ends before splitting.
        text = text.replacingOccurrences(of: "\r\n", with: "\n")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let first = lines.first, first.split(separator: ",", omittingEmptySubsequences: false).map(String.init) == header else {
            throw OrderFileError(file: file, line: 1, field: "header", value: String(lines.first ?? "").prefix(200).description,
                                 reason: "expected exactly: \(header.joined(separator: ","))")
        }
        var out: [DecodedOrder] = []
        var seen = Set<String>()
        for (i, raw) in lines.enumerated().dropFirst() {
            let line = i + 1
            if raw.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let fields = raw.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            func fail(_ field: String, _ value: String, _ reason: String) -> OrderFileError {
                OrderFileError(file: file, line: line, field: field, value: String(value.prefix(120)), reason: reason)
            }
            guard fields.count == header.count else {
                throw fail("line", String(raw), "has \(fields.count) fields; expected \(header.count) (no quoting: use ';' inside context and requirements)")
            }
            let id = fields[0]
            guard id.range(of: #"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"#, options: .regularExpression) != nil else {
                throw fail("order_id", id, "1–64 letters, digits, '_', '.', ':' or '-', starting with a letter or digit")
            }
            guard seen.insert(id).inserted else { throw fail("order_id", id, "appears twice in the file") }
            let hospital = fields[1]
            guard !hospital.isEmpty else { throw fail("hospital", hospital, "required") }
            guard let component = Component(rawValue: fields[2].uppercased()) else {
                throw fail("component", fields[2], "not one of RBC, PLT, PLASMA, CRYO, WB")
            }
            let group: BloodGroup?
            switch (fields[3].uppercased(), fields[4].uppercased()) {
            case ("UNKNOWN", "UNKNOWN"): group = nil
            case (let a, let r):
                guard let abo = ABO(rawValue: a) else { throw fail("abo", fields[3], "not one of O, A, B, AB, UNKNOWN") }
                guard let rhd = RhD(rawValue: r) else { throw fail("rhd", fields[4], "not one of POS, NEG (UNKNOWN only with abo UNKNOWN)") }
                group = BloodGroup(abo, rhd)
            }
            let contextText = fields[5].replacingOccurrences(of: ";", with: ",")
            let parsed: Result<RecipientContext, RecipientContext.ParseError> = Result { () throws(RecipientContext.ParseError) in
                try RecipientContext(parsing: contextText)
            }
            let context: RecipientContext
            switch parsed {
            case .success(let value): context = value
            case .failure(let error): throw fail("context", fields[5], error.description)
            }
            guard let quantity = Int(fields[6]), (1...MatchRequest.maximumQuantity).contains(quantity) else {
                throw fail("quantity", fields[6], "a whole number 1…\(MatchRequest.maximumQuantity)")
            }
            var requirements: [UnitAttribute] = []
            for name in fields[7].split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
                guard let attribute = UnitAttribute(rawValue: name) else { throw fail("requirements", name, "not a known requirement") }
                if !requirements.contains(attribute) { requirements.append(attribute) }
            }
            guard let urgency = Urgency(rawValue: fields[8].lowercased()) else {
                throw fail("urgency", fields[8], "not one of emergency, urgent, routine")
            }
            var neededBy: Date?
            if !fields[9].isEmpty {
                let seconds: Result<Double, ISO8601Timestamp.Problem> = Result { () throws(ISO8601Timestamp.Problem) in
                    try ISO8601Timestamp.secondsSince1970(fields[9])
                }
                switch seconds {
                case .success(let s): neededBy = Date(timeIntervalSince1970: s)
                case .failure: throw fail("needed_by", fields[9], "not an ISO 8601 instant with a zone, e.g. 2026-11-29T14:00:00Z")
                }
            }
            var maxAge: Int?
            if !fields[10].isEmpty {
                guard let days = Int(fields[10]), (0...365).contains(days) else { throw fail("max_age_days", fields[10], "whole days 0…365") }
                maxAge = days
            }
            out.append(DecodedOrder(orderID: id, hospitalID: hospital, component: component, group: group, context: context,
                                    quantity: quantity, requirements: requirements, urgency: urgency, neededBy: neededBy,
                                    maximumUnitAgeDays: maxAge, line: line))
        }
        return out
    }
}
