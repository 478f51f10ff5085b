/// A blood component class as it appears in inventory feeds and requests.
///
/// `RBC` red cells, `PLT` platelets, `PLASMA` fresh frozen or other plasma, `CRYO`
/// cryoprecipitate, `WB` whole blood (including low-titre group O whole blood).
public enum Component: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    case redCells = "RBC"
    case platelets = "PLT"
    case plasma = "PLASMA"
    case cryoprecipitate = "CRYO"
    case wholeBlood = "WB"

    /// Dense index 0…4, for per-component buckets.
    public var index: Int {
        switch self {
        case .redCells: 0
        case .platelets: 1
        case .plasma: 2
        case .cryoprecipitate: 3
        case .wholeBlood: 4
        }
    }

    public static func < (lhs: Component, rhs: Component) -> Bool { lhs.index < rhs.index }
}

/// Status of a unit in a distribution centre's stock.
public enum UnitStatus: String, Sendable, Hashable, CaseIterable, Codable {
    /// On the shelf and offerable.
    case available = "AVAILABLE"
    /// Held for a patient or order; never offered again until released.
    case reserved = "RESERVED"
    /// Held pending investigation; never offered.
    case quarantined = "QUARANTINED"
}
