/// The two serological ABO rules every compatibility table must respect.
///
/// Red cells: the donor's red-cell antigens must not meet the recipient's plasma antibodies.
/// Plasma: the donor's plasma antibodies must not meet the recipient's red-cell antigens — the same
/// rule with donor and recipient exchanged (JPAC-HB §2.4; LB-OLD plasma page; Data/SOURCES.md §S1, §S4).
extension ABO {
    /// Whether red cells of `donor` are ABO-compatible with a recipient of this group: none of the
    /// donor's antigens meets an antibody of the recipient (JPAC-HB §2.4, LB-CC red cells).
    ///
    /// An ABO-incompatible red-cell transfusion "is often fatal" and is a UK never event
    /// (JPAC-HB §2.4.1), so no policy may override this.
    public func acceptsRedCells(from donor: ABO) -> Bool {
        donor.antigens & antibodies == 0
    }

    /// Whether plasma of `donor` is ABO-compatible with a recipient of this group: none of the
    /// donor's antibodies meets an antigen of the recipient (the reverse rule; LB-OLD plasma page).
    public func acceptsPlasma(from donor: ABO) -> Bool {
        donor.antibodies & antigens == 0
    }

    /// The worst-case antibodies of a recipient whose group is unknown: anti-A and anti-B, as for
    /// group O, which is why only group O red cells go to an unknown recipient (LB-CC, LH).
    public static let unknownRecipientAntibodies: UInt8 = 0b11

    /// The worst-case red-cell antigens of a recipient whose group is unknown: A and B, as for
    /// group AB, which is why group AB plasma is first choice for an unknown recipient (LB-OLD, LB-CC).
    public static let unknownRecipientAntigens: UInt8 = 0b11
}

/// A recipient ABO group as the compatibility tables key it: a known group or unknown.
public enum RecipientABO: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The group has been determined.
    case known(ABO)
    /// The group is not yet determined (emergency, ABO discrepancy, mixed field; LH).
    case unknown

    /// The table key: `O`, `A`, `B`, `AB` or `unknown`.
    public var key: String {
        switch self {
        case .known(let abo): abo.rawValue
        case .unknown: "unknown"
        }
    }

    /// Dense index 0…4 (`O, A, B, AB, unknown`), for per-recipient tables.
    public var index: Int {
        switch self {
        case .known(let abo): abo.index
        case .unknown: 4
        }
    }

    /// Every table key in index order.
    public static let all: [RecipientABO] = ABO.allCases.map { .known($0) } + [.unknown]

    /// The recipient's plasma antibodies; worst case (anti-A and anti-B) when unknown.
    public var antibodies: UInt8 {
        switch self {
        case .known(let abo): abo.antibodies
        case .unknown: ABO.unknownRecipientAntibodies
        }
    }

    /// The recipient's red-cell antigens; worst case (A and B) when unknown.
    public var antigens: UInt8 {
        switch self {
        case .known(let abo): abo.antigens
        case .unknown: ABO.unknownRecipientAntigens
        }
    }

    /// Whether donor red cells of this ABO group are compatible (worst case when unknown).
    public func acceptsRedCells(from donor: ABO) -> Bool { donor.antigens & antibodies == 0 }

    /// Whether donor plasma of this ABO group is compatible (worst case when unknown).
    public func acceptsPlasma(from donor: ABO) -> Bool { donor.antibodies & antigens == 0 }

    /// Parses a table key (`O`, `A`, `B`, `AB`, `unknown`).
    public init?(key: String) {
        if key == "unknown" {
            self = .unknown
        } else if let abo = ABO(rawValue: key) {
            self = .known(abo)
        } else {
            return nil
        }
    }

    /// The key, e.g. `AB` or `unknown`.
    public var description: String { key }
}
