/// Unit-level reads of the index, for listings (the FHIR stock search): which positions hold one
/// component and group at a centre, and each position's dates and attributes.
extension InventoryIndex {
    /// The positions of a centre's available units of one component and group, earliest expiry
    /// first (then DIN, then product code).
    public func positions(centre: Int, component: Component, group: BloodGroup) -> Range<Int> {
        bucket(centre: centre, component: component, group: group)
    }

    /// Expiry (seconds since 1970) of the unit at a position.
    public func expiry(at position: Int) -> Int64 { expiresAt[position] }

    /// Collection (seconds since 1970) of the unit at a position.
    public func collection(at position: Int) -> Int64 { collectedAt[position] }

    /// Attributes of the unit at a position.
    public func attributeSet(at position: Int) -> AttributeSet { AttributeSet(rawValue: attributes[position]) }

    /// Whether the DIN at a position is `din` (13 ASCII bytes), without building a string.
    public func dinEquals(_ din: String, at position: Int) -> Bool {
        var din = din
        return din.withUTF8 { bytes in
            bytes.count == 13 && dinBytes[(position * 13)..<(position * 13 + 13)].elementsEqual(bytes)
        }
    }
}
