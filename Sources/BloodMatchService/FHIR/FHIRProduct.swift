import BloodMatchIngest
import BloodMatchCore
import Foundation

/// One unit as the FHIR face shows it: identity, product, group, dates, where it is and whether
/// the caller may still have it. Never donor data: the DIN identifies the donation, not the donor.
public struct FHIRUnitView: Sendable, Hashable {
    /// DIN and product code.
    public var key: UnitKey
    /// Component.
    public var component: Component
    /// ABO/RhD group.
    public var group: BloodGroup
    /// Collection instant (seconds since 1970).
    public var collectedAt: Int64?
    /// Expiry instant (seconds since 1970).
    public var expiresAt: Int64
    /// Special attributes.
    public var attributes: AttributeSet
    /// The centre that holds (or issued) it.
    public var centreID: String
    /// The as-of time of the centre's stock this view comes from, when it comes from the stock in force.
    public var stockAsOf: Int64?
    /// Whether that stock is older than the centre's expected feed interval.
    public var stale: Bool
    /// Whether the unit can be ordered (in stock, not held, not issued).
    public var available: Bool

    /// Creates a view.
    public init(key: UnitKey, component: Component, group: BloodGroup, collectedAt: Int64?, expiresAt: Int64, attributes: AttributeSet,
                centreID: String, stockAsOf: Int64?, stale: Bool, available: Bool) {
        self.key = key
        self.component = component
        self.group = group
        self.collectedAt = collectedAt
        self.expiresAt = expiresAt
        self.attributes = attributes
        self.centreID = centreID
        self.stockAsOf = stockAsOf
        self.stale = stale
        self.available = available
    }
}

/// BiologicallyDerivedProduct: the mapping of a unit (Data/FHIR.md, "BiologicallyDerivedProduct").
public enum FHIRProduct {
    /// The resource id of a unit: `DIN-PRODUCTCODE` (FHIR ids allow letters, digits, `-` and `.`).
    public static func id(_ key: UnitKey) -> String { key.din + "-" + key.productCode }

    /// The unit a resource id names, or nil when the id is not of that shape.
    public static func key(id: String) -> UnitKey? {
        let parts = id.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count == 13, parts[1].utf8.count == 8,
              id.utf8.allSatisfy({ (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 45 }),
              (try? DonationNumber(parsing: String(parts[0]))) != nil else { return nil }
        return UnitKey(din: String(parts[0]), productCode: String(parts[1]))
    }

    /// The resource, written straight to JSON text (keys in sorted order, as `ResponseJSON`
    /// writes every object): a search page renders twenty of these, and building them as values
    /// cost more than the search itself. The parts that depend only on the component, the group
    /// and the attributes are rendered once (`Parts`).
    public static func resource(_ unit: FHIRUnitView) -> JSONValue {
        var w = FHIRWriter()
        let code = unit.key.productCode
        w.open()
        w.key("biologicalSourceEvent"); w.identifier(Parts.din, unit.key.din)
        if let collected = unit.collectedAt { w.key("collection"); w.open(); w.key("collectedDateTime"); w.string(isoUTC(seconds: collected)); w.close() }
        w.key("division"); w.string(String(code.suffix(2)))
        w.key("expirationDate"); w.string(isoUTC(seconds: unit.expiresAt))
        w.key("extension"); w.raw(Parts.centreExtension); w.identifier(Parts.site, unit.centreID)
        if let asOf = unit.stockAsOf {
            w.raw(Parts.stockAsOfExtension); w.string(isoUTC(seconds: asOf)); w.raw(unit.stale ? Parts.staleTrue : Parts.staleFalse)
        } else {
            w.raw("}]")
        }
        w.key("id"); w.string(id(unit.key))
        w.key("identifier"); w.raw("["); w.identifier(Parts.unitKey, unit.key.description); w.raw("]")
        if let asOf = unit.stockAsOf { w.key("meta"); w.open(); w.key("lastUpdated"); w.string(isoUTC(seconds: asOf)); w.close() }
        w.key("productCode"); w.open()
        w.key("coding"); w.raw(Parts.productCodeCodingStart); w.string(String(code.prefix(5))); w.raw(Parts.productCodeCodingEnd)
        w.key("text"); w.string("\(componentName(unit.component)), ISBT 128 product code \(code)")
        w.close()
        w.key("productStatus"); w.raw(unit.available ? Parts.available : Parts.unavailable)
        w.key("property"); w.raw("[")
        let typeOfCollection = code.utf8.dropFirst(5).first ?? 0
        w.raw(Parts.aboRhD(unit.group, typeOfCollection: typeOfCollection))
        if (0x21...0x7E).contains(typeOfCollection) { w.raw(","); w.raw(Parts.collectionType[Int(typeOfCollection)]) }
        w.raw(","); w.raw(Parts.component[unit.component.index])
        for attribute in unit.attributes.attributes { w.raw(","); w.raw(Parts.attribute[attribute.bit]) }
        w.raw("]")
        w.key("resourceType"); w.string("BiologicallyDerivedProduct")
        if let range = Parts.storage[unit.component.index] { w.key("storageTempRequirements"); w.raw(range) }
        w.close()
        return .encoded(w.bytes)
    }

    /// The resource's constant parts, rendered once by the same encoder as everything else.
    enum Parts {
        static let din = FHIRSystem.din
        static let site = FHIRSystem.site
        static let unitKey = FHIRSystem.unitKey
        static let centreExtension = #"[{"url":"\#(FHIRSystem.extensionURL("distribution-centre"))","valueIdentifier":"#
        static let stockAsOfExtension = #"},{"url":"\#(FHIRSystem.extensionURL("stock-as-of"))","valueDateTime":"#
        static let staleTrue = #"},{"url":"\#(FHIRSystem.extensionURL("stale-stock"))","valueBoolean":true}]"#
        static let staleFalse = #"},{"url":"\#(FHIRSystem.extensionURL("stale-stock"))","valueBoolean":false}]"#
        static let productCodeCodingStart = #"[{"code":"#
        static let productCodeCodingEnd = #","system":"\#(FHIRSystem.productDescriptionCode)"}]"#
        static let available = ResponseJSON.string(.coding(FHIRSystem.productStatus, "available"))
        static let unavailable = ResponseJSON.string(.coding(FHIRSystem.productStatus, "unavailable"))
        /// By `Component.index`.
        static let component: [String] = Component.allCases.sorted { $0.index < $1.index }.map { c in
            ResponseJSON.string(property(FHIRSystem.property, "component",
                                         value: .concept(FHIRSystem.component, c.rawValue, display: componentName(c))))
        }
        /// The type-of-collection character of the product code (ISBT 128 DS003 `t`), as the R5
        /// example's CollectionType property; by the character's ASCII value.
        static let collectionType: [String] = (0..<128).map { c in
            guard (0x21...0x7E).contains(c) else { return "" }
            return ResponseJSON.string(property(FHIRSystem.isbtProperty, "CollectionType",
                                                value: .concept(FHIRSystem.collectionType, String(UnicodeScalar(UInt8(c))))))
        }
        /// By `Component.index`.
        static let storage: [String?] = Component.allCases.sorted { $0.index < $1.index }.map { storageRange($0).map(ResponseJSON.string) }
        /// By `UnitAttribute.bit`.
        static let attribute: [String] = UnitAttribute.allCases.map { a in
            ResponseJSON.string(property(FHIRSystem.property, "attribute", value: .concept(FHIRSystem.requirement, a.rawValue)))
        }
        /// ABO/RhD by group and the type-of-collection characters with a confirmed column (others: text only).
        static let aboRhDByGroup: [[UInt8: String]] = BloodGroup.all.sorted { $0.index < $1.index }.map { g in
            var out: [UInt8: String] = [:]
            for t in ["V", "2", "G", "1", "?"] {
                out[t.utf8.first!] = ResponseJSON.string(property(FHIRSystem.isbtProperty, "ABORhD", value: FHIRProduct.aboRhD(g, productCode: "E0000" + t + "00")))
            }
            return out
        }
        static func aboRhD(_ group: BloodGroup, typeOfCollection t: UInt8) -> String {
            aboRhDByGroup[group.index][t] ?? aboRhDByGroup[group.index][UInt8(ascii: "?")]!
        }
    }

    static func property(_ system: String, _ code: String, value: JSONValue) -> JSONValue {
        ["type": ["coding": [.coding(system, code)]], "valueCodeableConcept": value]
    }

    /// The ABO/RhD property: the ISBT 128 `gg` code of the group and the intended use the product
    /// code's type-of-collection character states (ST-001 Table 4; Data/SOURCES.md §S14, §S15).
    /// When that character is not one of the confirmed columns, the group is given as text only.
    public static func aboRhD(_ group: BloodGroup, productCode: String) -> JSONValue {
        let text = "\(group.abo.rawValue) RhD \(group.rhd == .positive ? "positive" : "negative")"
        guard let code = aboRhDCode(group, productCode: productCode) else { return ["text": .string(text)] }
        return .concept(FHIRSystem.aboRhD, code, display: text, text: text)
    }

    /// The ISBT 128 ABO/RhD code of a group with the intended use of a product code, when known.
    public static func aboRhDCode(_ group: BloodGroup, productCode: String) -> String? {
        guard let t = productCode.dropFirst(5).first, let use = BloodGroupCollectionType(typeOfCollection: t) else { return nil }
        return ISBTBloodGroupCode.table4.first(where: { $0.group == group })?.codes[use]
    }

    /// Storage temperature, °C: red cells and whole blood +2 to +6 (the stricter of the UK's 2–6 and
    /// the US's 1–6), platelets +20 to +24, plasma and cryoprecipitate frozen at −25 or colder (the
    /// stricter of the UK's −25 and the US's −18) (Data/SOURCES.md §S31).
    public static func storageRange(_ component: Component) -> JSONValue? {
        func celsius(_ v: Int) -> JSONValue { ["value": .int(v), "unit": "degrees C", "system": .string(FHIRSystem.ucum), "code": "Cel"] }
        switch component {
        case .redCells, .wholeBlood: return ["low": celsius(2), "high": celsius(6)]
        case .platelets: return ["low": celsius(20), "high": celsius(24)]
        case .plasma, .cryoprecipitate: return ["high": celsius(-25)]
        }
    }

    /// English name of a component.
    public static func componentName(_ component: Component) -> String {
        switch component {
        case .redCells: "Red cells"
        case .platelets: "Platelets"
        case .plasma: "Plasma"
        case .cryoprecipitate: "Cryoprecipitate"
        case .wholeBlood: "Whole blood"
        }
    }
}

/// A JSON text writer for resources rendered straight to bytes; callers write keys in sorted order.
struct FHIRWriter {
    private(set) var bytes: [UInt8] = []
    private var needsComma = false

    init() { bytes.reserveCapacity(2048) }

    mutating func open() { bytes.append(UInt8(ascii: "{")); needsComma = false }
    mutating func close() { bytes.append(UInt8(ascii: "}")); needsComma = true }
    mutating func key(_ name: String) {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        ResponseJSON.writeString(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }
    mutating func string(_ value: String) { ResponseJSON.writeString(value, to: &bytes); needsComma = true }
    /// JSON text, already valid.
    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8); needsComma = true }
    /// `{"system":…,"value":…}`.
    mutating func identifier(_ system: String, _ value: String) {
        bytes.append(contentsOf: #"{"system":"#.utf8)
        ResponseJSON.writeString(system, to: &bytes)
        bytes.append(contentsOf: #","value":"#.utf8)
        ResponseJSON.writeString(value, to: &bytes)
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }
}
