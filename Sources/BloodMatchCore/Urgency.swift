/// How urgently units are needed; it sets how much later a better-ranked unit may arrive and still
/// be preferred (`MatchingSettings.preferenceBandMinutes`; in batch costs, `rankPenaltyMinutes`) and
/// whether emergency-release rules apply.
///
/// BloodNet orders carry "Urgent" or "Life-Threatening" priority; OBOS has routine, ad-hoc and
/// emergency (blue-light) deliveries (BloodNet; OBOS; Data/SOURCES.md §S11).
public enum Urgency: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    /// Life-threatening: the nearest compatible unit wins against any centre meaningfully farther
    /// (a 10-minute band by default); emergency-release rules may apply.
    case emergency
    /// Needed soon: compatible units, moderate preference for identical groups.
    case urgent
    /// Stock or planned transfusion: identical groups strongly preferred.
    case routine

    /// Order of service: emergency first.
    public var priority: Int {
        switch self {
        case .emergency: 0
        case .urgent: 1
        case .routine: 2
        }
    }

    public static func < (lhs: Urgency, rhs: Urgency) -> Bool { lhs.priority < rhs.priority }
}
