/// A note the compatibility rules attach to an acceptable unit group; the matcher copies these
/// into its rationale and the issuing laboratory acts on them.
///
/// Returning flags rather than only yes/no: Data/SOURCES.md §S12.
public enum CompatibilityFlag: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    /// RhD-positive platelets for an RhD-negative female of childbearing potential or child:
    /// "If RhD positive platelets are given, RhD immune globulin is required" (LH; CID-2015).
    case antiDProphylaxisRequired = "anti_d_prophylaxis_required"
    /// RhD-positive cells for an RhD-negative recipient: about one-third form anti-D (UTMB);
    /// for platelets the observed rate is 1.44 % (CID-2015).
    case rhdMismatch = "rhd_mismatch"
    /// The unit must carry `LOW_TITRE` (low-titre anti-A/anti-B) to be acceptable.
    case lowTitreRequired = "low_titre_required"
    /// Low-titre anti-A/anti-B or pooled platelets pose lower haemolysis risk (LB-CC footnote c).
    case lowTitrePreferred = "low_titre_preferred"
    /// A2-subgroup platelets are preferable for this recipient (LB-CC footnote b).
    case a2SubgroupPreferable = "a2_subgroup_preferable"
    /// Emergency release: uncrossmatched or universal-donor supply (LB-CC; LH; BWNW).
    case emergencyRelease = "emergency_release"
    /// The recipient's group is not yet determined; switch to group-specific supply as soon as
    /// it is (LH; UTMB).
    case unknownRecipientGroup = "unknown_recipient_group"
    /// Donor plasma antibodies meet recipient red-cell antigens: minor ABO incompatibility,
    /// haemolysis risk (LB-OLD plasma page; PMC3725020; Data/SOURCES.md §S3).
    case abOIncompatiblePlasmaMinor = "abo_incompatible_plasma_minor"
    /// Donor cell antigens meet recipient antibodies on a platelet unit: major ABO mismatch,
    /// lower count increments (PMC7727583; Data/SOURCES.md §S3).
    case abOIncompatibleMajor = "abo_incompatible_major"
    /// O RhD-negative red cells for a recipient who is not O RhD-negative: ranked last among
    /// otherwise equal choices; never chosen to avoid expiry (LB-ONEG).
    case oNegativeConservation = "o_negative_conservation"
    /// Offered only because the recipient's required RhD type is exhausted in an emergency
    /// (LB-CC "never be withheld for life-saving transfusion"; BWNW).
    case rhdNegativeExhaustedLastResort = "rhd_negative_exhausted_last_resort"

    /// Flags a policy table may set on a choice (the rest are computed from serology and context).
    public static let settableByPolicy: Set<CompatibilityFlag> = [.lowTitrePreferred, .a2SubgroupPreferable]

    /// Declaration order.
    public static func < (lhs: CompatibilityFlag, rhs: CompatibilityFlag) -> Bool {
        allCases.firstIndex(of: lhs) ?? 0 < allCases.firstIndex(of: rhs) ?? 0
    }
}

/// A rule that took part in a decision: its identifier, the source it comes from and what it says.
public struct RuleCitation: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Stable identifier, e.g. `RBC.ABO` or `RBC.RHD.NEGATIVE_REQUIRED`.
    public var id: String
    /// The source text from the policy file (abbreviations of Data/SOURCES.md such as LB-CC, LH).
    public var source: String
    /// What the rule says, in one line.
    public var text: String

    /// Creates a citation.
    public init(id: String, source: String, text: String) {
        self.id = id
        self.source = source
        self.text = text
    }

    /// `text [id; source]`.
    public var description: String { "\(text) [\(id); \(source)]" }
}
