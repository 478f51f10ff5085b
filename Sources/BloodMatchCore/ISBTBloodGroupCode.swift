/// Why an ISBT 128 data structure or code was not understood; carries the offending text.
public enum ISBTError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Wrong length for the data structure; carries text and expected length.
    case wrongLength(String, expected: Int)
    /// The data identifier (`=`, `=%`) is missing or different.
    case wrongDataIdentifier(String, expected: String)
    /// A blood-group code not in ST-001 Tables 4 and 5 as this code knows them.
    case unknownBloodGroupCode(String)
    /// A flag that is not two digits.
    case badFlag(String)
    /// A character not allowed at a position (1-based).
    case invalidCharacter(String, position: Int)
    /// The DIN or its flag characters inside the structure are invalid (a type-3 flag that does
    /// not match the DIN, a reserved flag: `DonationNumber.ParseError`).
    case donationNumber(DonationNumber.ParseError)

    /// Text for people and logs.
    public var description: String {
        switch self {
        case .wrongLength(let text, let expected): "'\(text)' has \(text.unicodeScalars.count) characters; expected \(expected)"
        case .wrongDataIdentifier(let text, let expected): "'\(text)' does not start with the data identifier '\(expected)'"
        case .unknownBloodGroupCode(let code): "'\(code)' is not a known ISBT 128 blood-group code (ST-001 Tables 4 and 5)"
        case .badFlag(let text): "flag '\(text)' is not two digits 00–99"
        case .invalidCharacter(let text, let position): "'\(text)' has an invalid character at position \(position)"
        case .donationNumber(let error): error.description
        }
    }
}

/// Intended use encoded with the ABO/RhD group in ISBT 128 Data Structure 002 (ST-001 Table 4).
public enum BloodGroupCollectionType: String, Sendable, Hashable, CaseIterable, Codable {
    /// Intended use not specified: ordinary allogeneic stock.
    case unspecified
    /// For a directed recipient only.
    case directedOnly = "directed_only"
    /// For emergency use only.
    case emergencyUseOnly = "emergency_use_only"
    /// For autologous use only.
    case autologousOnly = "autologous_only"
}

/// ST-001 Table 5 special messages that take the place of an ABO/RhD group in Data Structure 002.
public enum ISBTSpecialMessage: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `00` no ABO/RhD information.
    case noABORhDInformation
    /// `Ma` autologous.
    case autologous
    /// `Mb` biohazardous.
    case biohazardous
    /// `Md` discard.
    case discard
    /// `Mf` for fractionation only.
    case fractionationOnly
    /// `Mq` quarantine / hold.
    case quarantine
    /// `Mr` for research only.
    case researchOnly
    /// `Mx` not for transfusion, based on test results.
    case notForTransfusion
    /// `T1`–`T6` for tissue use only.
    case tissueOnly(Int)

    /// The two-character code.
    public var code: String {
        switch self {
        case .noABORhDInformation: "00"
        case .autologous: "Ma"
        case .biohazardous: "Mb"
        case .discard: "Md"
        case .fractionationOnly: "Mf"
        case .quarantine: "Mq"
        case .researchOnly: "Mr"
        case .notForTransfusion: "Mx"
        case .tissueOnly(let n): "T\(n)"
        }
    }

    /// Whether ST-001 marks the unit as never to be transfused: discard, quarantine, not for
    /// transfusion, research only, fractionation only (ST-001 Table 5; Data/SOURCES.md §S14).
    public var forbidsTransfusion: Bool {
        switch self {
        case .discard, .quarantine, .notForTransfusion, .researchOnly, .fractionationOnly: true
        default: false
        }
    }

    /// Every message (tissue T1–T6 included).
    public static let all: [ISBTSpecialMessage] =
        [.noABORhDInformation, .autologous, .biohazardous, .discard, .fractionationOnly, .quarantine,
         .researchOnly, .notForTransfusion] + (1...6).map { .tissueOnly($0) }

    /// English meaning.
    public var description: String {
        switch self {
        case .noABORhDInformation: "no ABO/RhD information"
        case .autologous: "autologous"
        case .biohazardous: "biohazardous"
        case .discard: "discard"
        case .fractionationOnly: "for fractionation use only"
        case .quarantine: "quarantine/hold"
        case .researchOnly: "for research use only"
        case .notForTransfusion: "not for transfusion based on test results"
        case .tissueOnly(let n): "for tissue use only (T\(n))"
        }
    }
}

/// Whether and how a unit with a given DS002 code may be allocated by the matcher.
public enum ISBTAllocation: Sendable, Hashable, Codable {
    /// General allocation to any compatible recipient.
    case general
    /// Only in emergency release (ST-001 Table 4 "For Emergency Use Only" codes).
    case emergencyOnly
    /// Only to the named directed or autologous recipient: never to general requests.
    case namedRecipientOnly
    /// Never allocatable; carries why.
    case never(String)
}

/// The `gg` blood-group code of ISBT 128 Data Structure 002: an ABO/RhD group with intended use
/// (ST-001 Table 4), ABO with RhD not specified, or a special message (ST-001 Table 5).
///
/// Only the columns confirmed in Data/SOURCES.md §S14 (default, directed only, emergency use only,
/// autologous only) are decoded; other codes are refused, not guessed.
public enum ISBTBloodGroupCode: Sendable, Hashable, Codable, CustomStringConvertible {
    /// An ABO/RhD group with its intended use.
    case group(BloodGroup, BloodGroupCollectionType)
    /// ABO known, RhD not specified (`55`, `66`, `77`, `88`).
    case rhdNotSpecified(ABO)
    /// A Table 5 special message.
    case special(ISBTSpecialMessage)

    /// ST-001 Table 4 (via kitcalc datastructure002.nim and pdesiatnyk referenceTables.ts; FHIR
    /// R5 example 62 = A RhD Positive): group → codes for default, directed only, emergency use
    /// only, autologous only.
    public static let table4: [(group: BloodGroup, codes: [BloodGroupCollectionType: String])] = [
        (BloodGroup(.O, .negative), [.unspecified: "95", .directedOnly: "91", .emergencyUseOnly: "92", .autologousOnly: "97"]),
        (BloodGroup(.O, .positive), [.unspecified: "51", .directedOnly: "47", .emergencyUseOnly: "48", .autologousOnly: "53"]),
        (BloodGroup(.A, .negative), [.unspecified: "06", .directedOnly: "02", .emergencyUseOnly: "03", .autologousOnly: "08"]),
        (BloodGroup(.A, .positive), [.unspecified: "62", .directedOnly: "58", .emergencyUseOnly: "59", .autologousOnly: "64"]),
        (BloodGroup(.B, .negative), [.unspecified: "17", .directedOnly: "13", .emergencyUseOnly: "14", .autologousOnly: "19"]),
        (BloodGroup(.B, .positive), [.unspecified: "73", .directedOnly: "69", .emergencyUseOnly: "70", .autologousOnly: "75"]),
        (BloodGroup(.AB, .negative), [.unspecified: "28", .directedOnly: "24", .emergencyUseOnly: "25", .autologousOnly: "30"]),
        (BloodGroup(.AB, .positive), [.unspecified: "84", .directedOnly: "80", .emergencyUseOnly: "81", .autologousOnly: "86"]),
    ]

    /// ABO with RhD not specified: 55 O, 66 A, 77 B, 88 AB (ST-001 Table 4 via kitcalc).
    public static let rhdNotSpecifiedCodes: [ABO: String] = [.O: "55", .A: "66", .B: "77", .AB: "88"]

    private static let byCode: [String: ISBTBloodGroupCode] = {
        var map: [String: ISBTBloodGroupCode] = [:]
        for (group, codes) in table4 {
            for (type, code) in codes { map[code] = .group(group, type) }
        }
        for (abo, code) in rhdNotSpecifiedCodes { map[code] = .rhdNotSpecified(abo) }
        for message in ISBTSpecialMessage.all { map[message.code] = .special(message) }
        return map
    }()

    /// Parses a two-character `gg` code; case-sensitive (`Md`, not `MD`).
    public init(code: String) throws(ISBTError) {
        guard let value = Self.byCode[code] else { throw .unknownBloodGroupCode(code) }
        self = value
    }

    /// The ordinary (intended use not specified) code of a group, e.g. O RhD negative → `95`.
    public static func defaultCode(for group: BloodGroup) -> String {
        table4.first { $0.group == group }?.codes[.unspecified] ?? ""
    }

    /// The two-character code.
    public var code: String {
        switch self {
        case .group(let group, let type):
            Self.table4.first { $0.group == group }?.codes[type] ?? ""
        case .rhdNotSpecified(let abo): Self.rhdNotSpecifiedCodes[abo] ?? ""
        case .special(let message): message.code
        }
    }

    /// The ABO/RhD group, when the code carries one.
    public var bloodGroup: BloodGroup? {
        if case .group(let group, _) = self { return group }
        return nil
    }

    /// How the matcher may allocate a unit with this code.
    ///
    /// Discard, quarantine, not-for-transfusion, research and fractionation messages are never
    /// allocatable (ST-001 Table 5; Data/SOURCES.md §S14). The other messages carry no ABO/RhD group, so
    /// no compatibility rule can place them, and RhD-not-specified units cannot meet the RhD rules
    /// (LB-CC): both are refused too. Directed and autologous units go only to their named
    /// recipient; emergency-use-only units only in emergency release (ST-001 Table 4).
    public var allocation: ISBTAllocation {
        switch self {
        case .group(_, .unspecified): .general
        case .group(_, .emergencyUseOnly): .emergencyOnly
        case .group(_, .directedOnly), .group(_, .autologousOnly): .namedRecipientOnly
        case .rhdNotSpecified(let abo): .never("\(abo.rawValue), RhD not specified: the RhD rules cannot be applied")
        case .special(let message):
            message.forbidsTransfusion
                ? .never("ST-001 special message \(message.code) '\(message.description)': never transfused")
                : .never("ST-001 special message \(message.code) '\(message.description)': no ABO/RhD group to match")
        }
    }

    /// Whether a unit with this code may be allocated to a general request at `urgency`.
    public func isAllocatable(urgency: Urgency) -> Bool {
        switch allocation {
        case .general: true
        case .emergencyOnly: urgency == .emergency
        case .namedRecipientOnly, .never: false
        }
    }

    /// Whether a unit with this code may be allocated to a general, non-emergency request.
    public var isAllocatable: Bool { isAllocatable(urgency: .routine) }

    /// `62 A+ (unspecified)` style text.
    public var description: String {
        switch self {
        case .group(let group, let type): "\(code) \(group) (\(type.rawValue))"
        case .rhdNotSpecified(let abo): "\(code) \(abo.rawValue) RhD not specified"
        case .special(let message): "\(code) \(message.description)"
        }
    }
}

/// ISBT 128 Data Structure 002 `=%ggre`: blood group code, Rh/Kell phenotype, reserved digit.
public struct ISBTBloodGroupDataStructure: Sendable, Hashable, Codable {
    /// The `gg` code.
    public var bloodGroup: ISBTBloodGroupCode
    /// The `r` character (ST-001 Table 6 Rh/Kell or Mia/Mur phenotype; `0` = no information),
    /// kept raw: Table 6 is only partly public.
    public var phenotypeCharacter: String
    /// Parses `=%ggre` (6 characters); `e` must be `0` (reserved; ST-001 via kitcalc).
    public init(parsing text: String) throws(ISBTError) {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count == 6 else { throw .wrongLength(text, expected: 6) }
        guard scalars[0] == "=", scalars[1] == "%" else { throw .wrongDataIdentifier(text, expected: "=%") }
        bloodGroup = try ISBTBloodGroupCode(code: String(String.UnicodeScalarView(scalars[2...3])))
        let r = scalars[4]
        guard ("A"..."Z").contains(r) || ("0"..."9").contains(r) else {
            throw .invalidCharacter(text, position: 5)
        }
        guard scalars[5] == "0" else { throw .invalidCharacter(text, position: 6) }
        phenotypeCharacter = String(r)
    }
}

extension BloodGroupCollectionType {
    /// The intended use a product code's type-of-collection character `t` states, for the four
    /// columns of ST-001 Table 4 this code knows: `V` volunteer allogeneic (not specified), `2`
    /// directed only, `G` emergency use only, `1` autologous only (ST-001 Data Structure 003 and
    /// Table 7; Data/SOURCES.md §S15). Other characters (crossover-eligible, research, …) have
    /// columns not confirmed here: nil, never guessed.
    public init?(typeOfCollection: Character) {
        switch typeOfCollection {
        case "V": self = .unspecified
        case "2": self = .directedOnly
        case "G": self = .emergencyUseOnly
        case "1": self = .autologousOnly
        default: return nil
        }
    }
}
