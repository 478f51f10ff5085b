/// A property of a unit (and a special requirement of a request), as spelled in feeds.
///
/// Antigen-negative markers keep clinical case: `C_NEG` (big C) differs from `c_NEG` (little c).
/// Indications and substitution rules are in `SpecialRequirement` and `Data/policy.json`
/// (Data/SOURCES.md §S8).
public enum UnitAttribute: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    case irradiated = "IRRADIATED"
    case cmvNegative = "CMV_NEG"
    case leukoreduced = "LEUKOREDUCED"
    case washed = "WASHED"
    case hbsNegative = "HBS_NEG"
    case hlaMatched = "HLA_MATCHED"
    /// Low-titre anti-A/anti-B (platelets, plasma, group O whole blood; Data/SOURCES.md §S3, §S4, §S5).
    case lowTitre = "LOW_TITRE"
    case volumeReduced = "VOLUME_REDUCED"
    case kNegative = "K_NEG"
    case bigCNegative = "C_NEG"
    case littleCNegative = "c_NEG"
    case bigENegative = "E_NEG"
    case littleENegative = "e_NEG"
    case fyaNegative = "FYA_NEG"
    case fybNegative = "FYB_NEG"
    case jkaNegative = "JKA_NEG"
    case jkbNegative = "JKB_NEG"
    case bigSNegative = "S_NEG"
    case littleSNegative = "s_NEG"
    case mNegative = "M_NEG"

    /// Bit position in an `AttributeSet`.
    public var bit: Int { Self.allCases.firstIndex(of: self)! }

    public static func < (lhs: UnitAttribute, rhs: UnitAttribute) -> Bool { lhs.bit < rhs.bit }
}

/// A set of unit attributes packed into one word, so the matcher's subset test is one AND.
public struct AttributeSet: OptionSet, Sendable, Hashable, Codable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The set holding exactly these attributes.
    public init<S: Sequence>(_ attributes: S) where S.Element == UnitAttribute {
        self.init(rawValue: 0)
        for attribute in attributes { insert(attribute) }
    }

    /// The set holding one attribute.
    public init(_ attribute: UnitAttribute) { self.init(rawValue: 1 << UInt64(attribute.bit)) }

    /// Adds one attribute.
    public mutating func insert(_ attribute: UnitAttribute) { formUnion(AttributeSet(attribute)) }

    /// Whether the set holds the attribute.
    public func contains(_ attribute: UnitAttribute) -> Bool { contains(AttributeSet(attribute)) }

    /// The attributes in canonical order.
    public var attributes: [UnitAttribute] { UnitAttribute.allCases.filter { contains($0) } }

    /// Number of attributes held.
    public var count: Int { rawValue.nonzeroBitCount }

    /// `;`-separated feed spelling, canonical order (empty string for none).
    public var description: String { attributes.map(\.rawValue).joined(separator: ";") }
}
