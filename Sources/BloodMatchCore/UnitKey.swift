/// What identifies one blood unit: its ISBT 128 DIN and its product code.
///
/// One donation gives several components (red cells, plasma, platelets) under one DIN, and the
/// divisions of a split product share it too; they differ by the product code (ISBT 128 ST-001,
/// Data Structures 001 and 003; Data/SOURCES.md). Every hold, issue, decision, movement and fate
/// names a unit by both. The DIN's flag characters are not part of it.
public struct UnitKey: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The 13-character DIN.
    public var din: String
    /// The 8-character product code (description code, type of collection, division), e.g. `E0336V00`.
    public var productCode: String

    /// Creates a key.
    public init(din: String, productCode: String) {
        self.din = din
        self.productCode = productCode
    }

    /// Parses `DIN/PRODUCTCODE` or `DIN PRODUCTCODE` (as printed by `description`); nil otherwise.
    public init?(parsing text: some StringProtocol) {
        let parts = text.split(whereSeparator: { $0 == "/" || $0 == " " })
        guard parts.count == 2, parts[0].utf8.count == 13, parts[1].utf8.count == 8 else { return nil }
        self.init(din: String(parts[0]), productCode: String(parts[1]))
    }

    /// `DIN/PRODUCTCODE`, the form the CLI and the API accept and print.
    public var description: String { din + "/" + productCode }

    public static func < (lhs: UnitKey, rhs: UnitKey) -> Bool {
        (lhs.din, lhs.productCode) < (rhs.din, rhs.productCode)
    }
}

extension InventoryUnit {
    /// The unit's identity.
    public var key: UnitKey { UnitKey(din: din.value, productCode: productCode) }
}
