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

    /// The number of distinct product codes in the index.
    public var productCodeCount: Int { productCodes.count }

    /// The distinct product code numbered `number` (0 ..< `productCodeCount`).
    public func productCode(number: Int) -> String { productCodes[number] }

    /// The number of the product code at a position: per-code facts are worked out once per code,
    /// not once per unit.
    public func productCodeNumber(at position: Int) -> Int { Int(productCodeIndex[position]) }

    /// The position of a unit, looked up in its bucket (nil when the index does not hold it there).
    public func position(of key: UnitKey, centreID: String, component: Component, group: BloodGroup) -> Int? {
        var low = 0, high = centres.count
        while low < high {
            let mid = (low + high) / 2
            if centres[mid].siteID < centreID { low = mid + 1 } else { high = mid }
        }
        guard low < centres.count, centres[low].siteID == centreID else { return nil }
        return positions(centre: low, component: component, group: group).first { dinEquals(key.din, at: $0) && productCode(at: $0) == key.productCode }
    }
}
