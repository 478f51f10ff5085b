import BloodMatchIngest
import BloodMatchCore
import Foundation

/// Reads the API's inputs (JSON bodies and query parameters) into core values, refusing anything
/// unknown, out of range or ambiguous with the field that is at fault. Nothing here has side effects.
public enum APIInput {
    /// The most special requirements one request may carry.
    public static let maximumRequirements = MatchRequest.maximumRequirements
    /// Fields `POST /v1/matches` accepts.
    static let matchFields: Set<String> = ["hospital_id", "component", "recipient", "quantity", "requirements",
                                           "max_unit_age_days", "urgency", "needed_by"]
    /// Fields of `recipient`.
    static let recipientFields: Set<String> = ["abo", "rhd", "sex", "age", "context"]

    /// The match request body; `requestID` comes from the Idempotency-Key, `hospital` from the key.
    public static func matchRequest(_ body: JSONValue, requestID: String, hospital: String) throws(APIError) -> MatchRequest {
        guard case .object(let fields) = body else { throw .invalid("body", "the body must be a JSON object") }
        if let unknown = fields.keys.filter({ !matchFields.contains($0) }).sorted().first {
            throw APIError(.badRequest, code: "unknown_field", message: "unknown field '\(unknown)'", field: unknown)
        }
        if let claimed = fields["hospital_id"] {
            guard case .string(let id) = claimed else { throw .invalid("hospital_id", "must be a string") }
            guard id == hospital else {
                throw APIError(.forbidden, code: "forbidden", message: "this key speaks for hospital \(hospital), not \(id)", field: "hospital_id")
            }
        }
        let component = try Self.component(try requiredString(fields, "component"), field: "component")
        guard case .object(let r) = try required(fields, "recipient") else { throw .invalid("recipient", "must be an object") }
        if let unknown = r.keys.filter({ !recipientFields.contains($0) }).sorted().first {
            throw APIError(.badRequest, code: "unknown_field", message: "unknown field 'recipient.\(unknown)'", field: "recipient.\(unknown)")
        }
        let group = try Self.group(abo: try requiredString(r, "abo", prefix: "recipient."), rhd: try requiredString(r, "rhd", prefix: "recipient."),
                              field: "recipient")
        var tokens: [String] = []
        if let sex = try optionalString(r, "sex", prefix: "recipient.") {
            guard ["female", "male", "unknown"].contains(sex) else { throw .invalid("recipient.sex", "must be female, male or unknown") }
            if sex != "unknown" { tokens.append(sex) }
        }
        if let age = try optionalInt(r, "age", range: 0...130, prefix: "recipient.") { tokens.append("age=\(age)") }
        if let context = r["context"] {
            guard case .array(let items) = context, items.count <= 8 else {
                throw .invalid("recipient.context", "must be an array of at most 8 strings")
            }
            for item in items {
                guard case .string(let token) = item, !token.contains(",") else { throw .invalid("recipient.context", "must be an array of strings") }
                tokens.append(token)
            }
        }
        let parsed: Result<RecipientContext, RecipientContext.ParseError> = Result { () throws(RecipientContext.ParseError) in
            try RecipientContext(parsing: tokens.joined(separator: ","))
        }
        let context: RecipientContext
        switch parsed {
        case .success(let c): context = c
        case .failure(let error): throw .invalid("recipient.context", error.description)
        }
        guard let quantity = try optionalInt(fields, "quantity", range: 1...MatchRequest.maximumQuantity) else {
            throw .invalid("quantity", "is required")
        }
        var requirements: [UnitAttribute] = []
        if let list = fields["requirements"] {
            guard case .array(let items) = list else { throw .invalid("requirements", "must be an array of requirement codes") }
            guard items.count <= maximumRequirements else {
                throw APIError(.badRequest, code: "too_many_requirements",
                               message: "at most \(maximumRequirements) requirements per request (got \(items.count))", field: "requirements")
            }
            for item in items {
                guard case .string(let code) = item else { throw .invalid("requirements", "must be an array of requirement codes") }
                requirements.append(try Self.requirement(code, field: "requirements"))
            }
            guard Set(requirements).count == requirements.count else { throw .invalid("requirements", "a requirement is listed twice") }
        }
        let maxAge = try optionalInt(fields, "max_unit_age_days", range: 1...365)
        var urgency = Urgency.routine
        if let text = try optionalString(fields, "urgency") {
            guard let u = Urgency(rawValue: text) else { throw .invalid("urgency", "must be emergency, urgent or routine") }
            urgency = u
        }
        var neededBy: Date?
        if let text = try optionalString(fields, "needed_by") {
            let fractional = ISO8601DateFormatter()
            fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let date = ISO8601DateFormatter().date(from: text) ?? fractional.date(from: text) else {
                throw .invalid("needed_by", "must be an ISO 8601 instant with a zone, e.g. 2026-11-29T10:00:00Z")
            }
            neededBy = date
        }
        return MatchRequest(requestID: requestID, hospitalID: hospital, destination: nil, component: component,
                            recipient: Recipient(group: group, context: context), quantity: quantity, requirements: requirements,
                            maximumUnitAgeDays: maxAge, urgency: urgency, neededBy: neededBy)
    }

    /// A component code.
    public static func component(_ text: String, field: String) throws(APIError) -> Component {
        guard let c = Component(rawValue: text) else { throw .invalid(field, "'\(text.prefix(40))' is not one of RBC, PLT, PLASMA, CRYO, WB") }
        return c
    }

    /// A recipient group; nil when either part is UNKNOWN.
    public static func group(abo: String, rhd: String, field: String) throws(APIError) -> BloodGroup? {
        let aboField = field.isEmpty ? "abo" : "\(field).abo"
        let rhdField = field.isEmpty ? "rhd" : "\(field).rhd"
        guard abo == "UNKNOWN" || ABO(rawValue: abo) != nil else { throw .invalid(aboField, "'\(abo.prefix(40))' is not one of O, A, B, AB, UNKNOWN") }
        guard rhd == "UNKNOWN" || RhD(rawValue: rhd) != nil else { throw .invalid(rhdField, "'\(rhd.prefix(40))' is not one of POS, NEG, UNKNOWN") }
        guard let a = ABO(rawValue: abo), let r = RhD(rawValue: rhd) else { return nil }
        return BloodGroup(a, r)
    }

    /// A requirement code.
    public static func requirement(_ code: String, field: String) throws(APIError) -> UnitAttribute {
        guard let a = UnitAttribute(rawValue: code) else {
            throw .invalid(field, "'\(code.prefix(40))' is not a known requirement (\(UnitAttribute.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return a
    }

    static func required(_ fields: [String: JSONValue], _ name: String, prefix: String = "") throws(APIError) -> JSONValue {
        guard let v = fields[name], v != .null else { throw .invalid(prefix + name, "is required") }
        return v
    }

    static func requiredString(_ fields: [String: JSONValue], _ name: String, prefix: String = "") throws(APIError) -> String {
        guard case .string(let s) = try required(fields, name, prefix: prefix) else { throw .invalid(prefix + name, "must be a string") }
        return s
    }

    static func optionalString(_ fields: [String: JSONValue], _ name: String, prefix: String = "") throws(APIError) -> String? {
        guard let v = fields[name], v != .null else { return nil }
        guard case .string(let s) = v else { throw .invalid(prefix + name, "must be a string") }
        return s
    }

    /// A whole number in range: `1.0`, `1e3`, `-0` and numbers past 64 bits are refused, not rounded.
    static func optionalInt(_ fields: [String: JSONValue], _ name: String, range: ClosedRange<Int>, prefix: String = "") throws(APIError) -> Int? {
        guard let v = fields[name], v != .null else { return nil }
        guard case .number(let text) = v else { throw .invalid(prefix + name, "must be a whole number \(range.lowerBound)…\(range.upperBound)") }
        guard text != "-0", text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "-") }) else {
            throw .invalid(prefix + name, "must be a whole number \(range.lowerBound)…\(range.upperBound), got \(text)")
        }
        guard let n = Int(text), range.contains(n) else {
            throw .invalid(prefix + name, "\(text) is out of range \(range.lowerBound)…\(range.upperBound)")
        }
        return n
    }
}
