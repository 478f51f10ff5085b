/// What a site is: a distribution centre holds stock, a hospital orders it.
public enum SiteKind: String, Sendable, Hashable, CaseIterable, Codable {
    case distributionCentre = "distribution_centre"
    case hospital = "hospital"
}

/// A distribution centre or hospital at a real place.
public struct Site: Sendable, Hashable, Codable, Identifiable {
    /// Stable identifier, e.g. `DC-SYD-01` or `H-0042`.
    public var id: String
    /// Human-readable name.
    public var name: String
    /// Distribution centre or hospital.
    public var kind: SiteKind
    /// Where it is.
    public var location: GeoPoint
    /// State, province or region, for reports.
    public var region: String
    /// Postal address; for a hospital, the consignee address of its distribution records
    /// (21 CFR 606.165). Empty when the site list did not give one.
    public var address: String

    /// Creates a site.
    public init(id: String, name: String, kind: SiteKind, location: GeoPoint, region: String, address: String = "") {
        self.id = id
        self.name = name
        self.kind = kind
        self.location = location
        self.region = region
        self.address = address
    }
}
