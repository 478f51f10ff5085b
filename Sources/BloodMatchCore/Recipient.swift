import Foundation

/// Recorded sex of a recipient, as far as the RhD rules need it.
public enum RecipientSex: String, Sendable, Hashable, CaseIterable, Codable {
    /// Female.
    case female
    /// Male.
    case male
    /// Not known (unidentified emergency patient); treated by the stricter rule (LB-ONEG).
    case unknown
}

/// What the RhD rules need to know about a recipient besides the blood group.
///
/// Unknown values take the stricter reading: a recipient whose sex or age is uncertain gets
/// RhD-negative red cells (LB-ONEG: "patients whose gender/age is uncertain").
public struct RecipientContext: Sendable, Hashable, Codable {
    /// Recorded sex.
    public var sex: RecipientSex
    /// Age in completed years; nil when not known.
    public var ageYears: Int?
    /// An explicit clinical statement of childbearing potential; nil derives it from sex and age
    /// (female at or under `recipientThresholds.childbearingPotentialMaximumAgeYears`; LB-CC).
    public var childbearingPotential: Bool?
    /// Has immune anti-D now or documented before, "even if it is not currently detectable" (LH).
    public var hasAntiD: Bool
    /// Likely to receive repeated transfusions or become transfusion dependent (LB-CC, LH).
    public var likelyTransfusionDependent: Bool
    /// A neonate: paediatric, and gets fresh red cells (LH).
    public var isNeonate: Bool

    /// Creates a context; every field defaults to "not known / not present".
    public init(
        sex: RecipientSex = .unknown, ageYears: Int? = nil, childbearingPotential: Bool? = nil,
        hasAntiD: Bool = false, likelyTransfusionDependent: Bool = false, isNeonate: Bool = false
    ) {
        self.sex = sex
        self.ageYears = ageYears
        self.childbearingPotential = childbearingPotential
        self.hasAntiD = hasAntiD
        self.likelyTransfusionDependent = likelyTransfusionDependent
        self.isNeonate = isNeonate
    }

    /// An adult male aged 40 with no anti-D: the context in which RhD-positive red cells may be
    /// given to an RhD-negative recipient where policy allows (LB-CC).
    public static let adultMale = RecipientContext(sex: .male, ageYears: 40)

    /// Why a context string is not understood.
    public enum ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        /// A token that is not one of the known words; carries it.
        case unknownToken(String)
        /// `age=` with something that is not an age 0…130; carries the text.
        case badAge(String)
        /// Two tokens that contradict each other (e.g. `female,male`); carries both.
        case conflicting(String, String)

        /// Text for people and logs.
        public var description: String {
            switch self {
            case .unknownToken(let token):
                "unknown context token '\(token)' (known: female, male, age=N, childbearing, not-childbearing, anti-d, transfusion-dependent, neonate)"
            case .badAge(let text): "bad age '\(text)': expected whole years 0…130"
            case .conflicting(let a, let b): "context tokens '\(a)' and '\(b)' contradict each other"
            }
        }
    }

    /// Parses a comma-separated context such as `female,age=34,anti-d`.
    ///
    /// Tokens: `female`, `male`, `age=N`, `childbearing`, `not-childbearing`, `anti-d`,
    /// `transfusion-dependent`, `neonate`. Case-insensitive; blanks ignored.
    public init(parsing text: String) throws(ParseError) {
        self.init()
        var seen: [String: String] = [:]
        func claim(_ slot: String, _ token: String) throws(ParseError) {
            if let previous = seen[slot], previous != token { throw .conflicting(previous, token) }
            seen[slot] = token
        }
        for raw in text.split(separator: ",") {
            let token = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if token.isEmpty { continue }
            switch token {
            case "female":
                try claim("sex", token)
                sex = .female
            case "male":
                try claim("sex", token)
                sex = .male
            case "childbearing":
                try claim("cbp", token)
                childbearingPotential = true
            case "not-childbearing":
                try claim("cbp", token)
                childbearingPotential = false
            case "anti-d": hasAntiD = true
            case "transfusion-dependent": likelyTransfusionDependent = true
            case "neonate": isNeonate = true
            default:
                guard token.hasPrefix("age=") else { throw .unknownToken(String(raw)) }
                let value = token.dropFirst(4)
                guard let age = Int(value), (0...130).contains(age) else { throw .badAge(String(value)) }
                try claim("age", token)
                ageYears = age
            }
        }
    }

    /// The canonical comma-separated spelling (round-trips through `init(parsing:)`).
    public var tokens: String {
        var parts: [String] = []
        if sex != .unknown { parts.append(sex.rawValue) }
        if let ageYears { parts.append("age=\(ageYears)") }
        if let childbearingPotential { parts.append(childbearingPotential ? "childbearing" : "not-childbearing") }
        if hasAntiD { parts.append("anti-d") }
        if likelyTransfusionDependent { parts.append("transfusion-dependent") }
        if isNeonate { parts.append("neonate") }
        return parts.joined(separator: ",")
    }
}

/// A recipient as the compatibility rules see it: group (nil = not yet determined) and context.
public struct Recipient: Sendable, Hashable, Codable {
    /// ABO/RhD group, or nil when not yet determined (emergency release; LB-CC, LH).
    public var group: BloodGroup?
    /// Sex, age and clinical context.
    public var context: RecipientContext

    /// Creates a recipient.
    public init(group: BloodGroup?, context: RecipientContext = RecipientContext()) {
        self.group = group
        self.context = context
    }

    /// The ABO key of the compatibility tables.
    public var abo: RecipientABO { group.map { .known($0.abo) } ?? .unknown }
}

/// Why a recipient must receive RhD-negative red cells (LB-CC, LB-ONEG, LH; Data/SOURCES.md §S1, §S7).
public struct RhDNegativeReasons: OptionSet, Sendable, Hashable, CustomStringConvertible {
    /// The raw bits.
    public var rawValue: UInt8
    /// Creates a set from its raw bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Has anti-D (LB-CC; LH "even if it is not currently detectable").
    public static let antiD = RhDNegativeReasons(rawValue: 1 << 0)
    /// Female of childbearing potential (LB-CC; LH).
    public static let childbearingPotential = RhDNegativeReasons(rawValue: 1 << 1)
    /// Paediatric, including neonates (LB-CC, LB-ONEG ≤18; LH <18).
    public static let paediatric = RhDNegativeReasons(rawValue: 1 << 2)
    /// Likely to become transfusion dependent (LB-CC; LH).
    public static let transfusionDependent = RhDNegativeReasons(rawValue: 1 << 3)
    /// Sex or age not known, so neither exemption can be established (LB-ONEG).
    public static let sexOrAgeUnknown = RhDNegativeReasons(rawValue: 1 << 4)

    /// The reasons in a fixed order with their wording and source.
    public static let described: [(reason: RhDNegativeReasons, text: String)] = [
        (.antiD, "has anti-D [LB-CC; LH]"),
        (.childbearingPotential, "female of childbearing potential [LB-CC; LH]"),
        (.paediatric, "paediatric [LB-CC, LB-ONEG; LH]"),
        (.transfusionDependent, "likely to become transfusion dependent [LB-CC; LH]"),
        (.sexOrAgeUnknown, "sex or age uncertain [LB-ONEG]"),
    ]

    /// The reasons as text, e.g. `has anti-D [LB-CC; LH]; paediatric […]`.
    public var description: String {
        Self.described.filter { contains($0.reason) }.map(\.text).joined(separator: "; ")
    }
}
