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

    /// The resource.
    public static func resource(_ unit: FHIRUnitView) -> JSONValue {
        let code = unit.key.productCode
        let pdc = String(code.prefix(5))
        let division = String(code.suffix(2))
        var properties: [JSONValue] = [property(FHIRSystem.isbtProperty, "ABORhD", value: aboRhD(unit.group, productCode: code))]
        properties.append(property(FHIRSystem.base + "/CodeSystem/property", "component",
                                   value: .concept(FHIRSystem.component, unit.component.rawValue, display: componentName(unit.component))))
        for attribute in unit.attributes.attributes {
            properties.append(property(FHIRSystem.base + "/CodeSystem/property", "attribute",
                                       value: .concept(FHIRSystem.requirement, attribute.rawValue)))
        }
        var resource: [String: JSONValue] = [
            "resourceType": "BiologicallyDerivedProduct",
            "id": .string(id(unit.key)),
            "identifier": [.identifier(FHIRSystem.unitKey, unit.key.description)],
            "productCode": ["coding": [.coding(FHIRSystem.productDescriptionCode, pdc)],
                            "text": .string("\(componentName(unit.component)), ISBT 128 product code \(code)")],
            "biologicalSourceEvent": .identifier(FHIRSystem.din, unit.key.din),
            "division": .string(division),
            "productStatus": .coding(FHIRSystem.productStatus, unit.available ? "available" : "unavailable"),
            "expirationDate": .string(isoUTC(seconds: unit.expiresAt)),
            "property": .array(properties),
            "extension": .array(extensions(unit)),
        ]
        if let collected = unit.collectedAt { resource["collection"] = ["collectedDateTime": .string(isoUTC(seconds: collected))] }
        if let range = storageRange(unit.component) { resource["storageTempRequirements"] = range }
        if let asOf = unit.stockAsOf { resource["meta"] = ["lastUpdated": .string(isoUTC(seconds: asOf))] }
        return .object(resource)
    }

    /// The centre, and the age of the stock the view comes from.
    static func extensions(_ unit: FHIRUnitView) -> [JSONValue] {
        var out: [JSONValue] = [
            ["url": .string(FHIRSystem.extensionURL("distribution-centre")),
             "valueIdentifier": .identifier(FHIRSystem.site, unit.centreID)],
        ]
        if let asOf = unit.stockAsOf {
            out.append(["url": .string(FHIRSystem.extensionURL("stock-as-of")), "valueDateTime": .string(isoUTC(seconds: asOf))])
            out.append(["url": .string(FHIRSystem.extensionURL("stale-stock")), "valueBoolean": .bool(unit.stale)])
        }
        return out
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
