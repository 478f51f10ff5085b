/// ABO blood group of a donor unit or a recipient.
///
/// Antigens on red cells: A carries A, B carries B, AB carries both, O carries neither; plasma
/// carries the antibodies against the antigens the person lacks (JPAC-HB §2.4, Table 2.1).
public enum ABO: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    case O, A, B, AB

    /// The red-cell antigens of this group, as a two-bit set (bit 0 = A, bit 1 = B).
    public var antigens: UInt8 {
        switch self {
        case .O: 0b00
        case .A: 0b01
        case .B: 0b10
        case .AB: 0b11
        }
    }

    /// The naturally occurring plasma antibodies of this group: anti-A and/or anti-B (JPAC-HB §2.4).
    public var antibodies: UInt8 { ~antigens & 0b11 }

    /// Dense index 0…3 in `O, A, B, AB` order, for table lookups.
    public var index: Int {
        switch self {
        case .O: 0
        case .A: 1
        case .B: 2
        case .AB: 3
        }
    }

    public static func < (lhs: ABO, rhs: ABO) -> Bool { lhs.index < rhs.index }
}

/// RhD type of a donor unit or a recipient, spelled `POS`/`NEG` in every feed and API.
public enum RhD: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    case positive = "POS"
    case negative = "NEG"

    /// Dense index: 0 = negative, 1 = positive.
    public var index: Int { self == .negative ? 0 : 1 }

    public static func < (lhs: RhD, rhs: RhD) -> Bool { lhs.index < rhs.index }
}

/// An ABO and RhD group together, e.g. O RhD negative.
public struct BloodGroup: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    /// ABO group.
    public var abo: ABO
    /// RhD type.
    public var rhd: RhD

    /// Creates a group from its two parts.
    public init(_ abo: ABO, _ rhd: RhD) {
        self.abo = abo
        self.rhd = rhd
    }

    /// All eight ABO/RhD groups, O-neg first.
    public static let all: [BloodGroup] = ABO.allCases.flatMap { abo in
        RhD.allCases.sorted().map { BloodGroup(abo, $0) }
    }

    /// Dense index 0…7 (`abo.index * 2 + rhd.index`), for per-group buckets.
    public var index: Int { abo.index * 2 + rhd.index }

    /// Short clinical notation: `O-`, `AB+`.
    public var description: String { "\(abo.rawValue)\(rhd == .positive ? "+" : "-")" }

    public static func < (lhs: BloodGroup, rhs: BloodGroup) -> Bool { lhs.index < rhs.index }

    /// O RhD negative.
    public static let oNegative = BloodGroup(.O, .negative)
}
