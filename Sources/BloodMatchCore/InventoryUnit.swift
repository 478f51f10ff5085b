import Foundation

/// One blood unit in a distribution centre's stock, as reported by its latest snapshot.
public struct InventoryUnit: Sendable, Hashable, Codable {
    /// ISBT 128 donation identification number.
    public var din: DonationNumber
    /// ISBT 128 product description code with type of collection and division, e.g. `E0382V00`.
    public var productCode: String
    /// Component class.
    public var component: Component
    /// ABO and RhD group of the unit.
    public var group: BloodGroup
    /// Collection instant.
    public var collectedAt: Date
    /// Expiry instant (already the earlier of original and process-derived expiry).
    public var expiresAt: Date
    /// Distribution centre holding the unit.
    public var siteID: String
    /// Stock status.
    public var status: UnitStatus
    /// Attributes such as irradiated or CMV-negative.
    public var attributes: AttributeSet

    /// Creates a unit.
    public init(
        din: DonationNumber, productCode: String, component: Component, group: BloodGroup,
        collectedAt: Date, expiresAt: Date, siteID: String, status: UnitStatus, attributes: AttributeSet
    ) {
        self.din = din
        self.productCode = productCode
        self.component = component
        self.group = group
        self.collectedAt = collectedAt
        self.expiresAt = expiresAt
        self.siteID = siteID
        self.status = status
        self.attributes = attributes
    }
}
