import BloodMatchCore
import BloodMatchIngest
import BloodMatchStore
import Foundation

/// Writes snapshot pairs (CSV + control record) the way a distribution centre's feed does, for
/// tests that load stock through the real importer.
public enum StockFixture {
    /// The repository root, found from this file.
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `2026-11-29T07:00:00Z`.
    public static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// A valid DIN from a facility code and a sequence number (check character not included).
    public static func din(facility: String = "T0001", year: Int = 26, sequence: Int) -> String {
        facility + String(format: "%02d%06d", year, sequence)
    }

    /// The CSV text for units.
    public static func csv(_ units: [InventoryUnit]) -> String {
        var out = "din,product_code,component,abo,rhd,collected_at,expires_at,site_id,status,attributes\n"
        for u in units {
            out += [u.din.value, u.productCode, u.component.rawValue, u.group.abo.rawValue, u.group.rhd.rawValue,
                    timestamp(u.collectedAt), timestamp(u.expiresAt), u.siteID, u.status.rawValue, u.attributes.description]
                .joined(separator: ",") + "\n"
        }
        return out
    }

    /// One unit as a FHIR R5 BiologicallyDerivedProduct, as a centre's FHIR feed sends it
    /// (Data/FHIR.md): DIN, product code, ABORhD, component, attributes, collection, expiry, status.
    public static func resource(_ u: InventoryUnit) -> [String: Any] {
        func property(_ typeSystem: String, _ type: String, _ system: String, _ code: String) -> [String: Any] {
            ["type": ["coding": [["system": typeSystem, "code": type]]], "valueCodeableConcept": ["coding": [["system": system, "code": code]]]]
        }
        var properties = [property(FHIRSystem.isbtProperty, "ABORhD", FHIRSystem.aboRhD, ISBTBloodGroupCode.defaultCode(for: u.group)),
                          property(FHIRSystem.property, "component", FHIRSystem.component, u.component.rawValue)]
        for a in UnitAttribute.allCases where u.attributes.contains(a) {
            properties.append(property(FHIRSystem.property, "attribute", FHIRSystem.requirement, a.rawValue))
        }
        return [
            "resourceType": "BiologicallyDerivedProduct",
            "biologicalSourceEvent": ["system": FHIRSystem.din, "value": u.din.value],
            "productCode": ["coding": [["system": FHIRSystem.productDescriptionCode, "code": u.productCode]]],
            "productStatus": ["system": FHIRSystem.productStatus, "code": u.status == .available ? "available" : "unavailable"],
            "collection": ["collectedDateTime": timestamp(u.collectedAt)],
            "expirationDate": timestamp(u.expiresAt),
            "property": properties,
            "extension": [["url": FHIRSystem.extensionURL("distribution-centre"), "valueIdentifier": ["system": FHIRSystem.site, "value": u.siteID]]],
        ]
    }

    /// Writes `NAME.json` (a collection Bundle of `resources`) and `NAME.ctl.json`; returns the Bundle's path.
    @discardableResult
    public static func writeBundle(_ resources: [[String: Any]], centre: String, asOf: Date, name: String, in directory: URL) throws -> String {
        let bundle: [String: Any] = ["resourceType": "Bundle", "type": "collection", "timestamp": timestamp(asOf),
                                     "entry": resources.map { ["fullUrl": "urn:uuid:" + UUID().uuidString.lowercased(), "resource": $0] }]
        let bytes = try JSONSerialization.data(withJSONObject: bundle, options: [.sortedKeys, .withoutEscapingSlashes])
        let control = """
            {"format":"bloodmatch-inventory/1","centre":"\(centre)","as_of":"\(timestamp(asOf))","row_count":\(resources.count),\
            "sha256":"\(SnapshotControl.checksum(of: bytes))","empty_stock":\(resources.isEmpty)}
            """
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent("\(name).json")
        try bytes.write(to: url)
        try Data(control.utf8).write(to: directory.appendingPathComponent("\(name).ctl.json"))
        return url.path
    }

    /// Writes `NAME.csv` and `NAME.ctl.json` into `directory` and returns the CSV path.
    @discardableResult
    public static func write(csv text: String, centre: String, asOf: Date, rowCount: Int, name: String, in directory: URL,
                             emptyStock: Bool? = nil) throws -> String {
        let bytes = Data(text.utf8)
        let control = """
            {"format":"bloodmatch-inventory/1","centre":"\(centre)","as_of":"\(timestamp(asOf))","row_count":\(rowCount),\
            "sha256":"\(SnapshotControl.checksum(of: bytes))","empty_stock":\(emptyStock ?? (rowCount == 0))}
            """
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let csvURL = directory.appendingPathComponent("\(name).csv")
        try bytes.write(to: csvURL)
        try Data(control.utf8).write(to: directory.appendingPathComponent("\(name).ctl.json"))
        return csvURL.path
    }

    /// Writes a snapshot of `units` for `centre` and returns the CSV path.
    @discardableResult
    public static func write(_ units: [InventoryUnit], centre: String, asOf: Date, name: String, in directory: URL) throws -> String {
        try write(csv: csv(units), centre: centre, asOf: asOf, rowCount: units.count, name: name, in: directory)
    }

    /// A fresh temporary folder, inside one folder per test process that is removed when the
    /// process exits (tests wrote thousands of folders into /tmp and left them).
    public static func temporaryDirectory() -> URL {
        let url = temporaryRoot.appendingPathComponent(String(UUID().uuidString.prefix(8)))
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The process's folder of temporary folders, created once with its removal at exit.
    static let temporaryRoot: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bm-test-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        temporaryRootPath = url.path
        atexit { if let path = temporaryRootPath { try? FileManager.default.removeItem(atPath: path) } }
        return url
    }()

    /// The product code `unit` gives when none is named.
    public static let productCode = "E0382V00"

    /// A unit's identity: `din` with `productCode` (default the fixture's red-cell code).
    public static func key(_ din: String, _ code: String = productCode) -> UnitKey { UnitKey(din: din, productCode: code) }

    /// One unit.
    public static func unit(_ din: String, _ component: Component, _ group: BloodGroup, at centre: String, collected: Date,
                            expires: Date, status: UnitStatus = .available, attributes: AttributeSet = [],
                            productCode: String = productCode) throws -> InventoryUnit {
        InventoryUnit(din: try DonationNumber(parsing: din), productCode: productCode, component: component, group: group,
                      collectedAt: collected, expiresAt: expires, siteID: centre, status: status, attributes: attributes)
    }

    /// The committed transfusion policy.
    public static func policyData() throws -> Data {
        try Data(contentsOf: repository.appendingPathComponent("Data/policy.json"))
    }

    /// The units in stock of one donation: each part a unit under the one DIN, with the donation's
    /// group and collection time and its own component, product code and expiry. A donation's
    /// components, and the bags of a split product, share the DIN and differ by product code
    /// (ISBT 128 ST-001; Data/SOURCES.md).
    public static func components(
        _ din: String, _ group: BloodGroup, at centre: String, collected: Date,
        _ parts: [(component: Component, productCode: String, expires: Date)],
        status: UnitStatus = .available, attributes: AttributeSet = []
    ) throws -> [InventoryUnit] {
        let number = try DonationNumber(parsing: din)
        return parts.map { part in
            InventoryUnit(din: number, productCode: part.productCode, component: part.component, group: group,
                          collectedAt: collected, expiresAt: part.expires, siteID: centre, status: status, attributes: attributes)
        }
    }

    /// The product codes of the `count` bags `code` is divided into: its first six characters and
    /// the division characters `A0`, `B0`, … (`E3085V00` in two: `E3085VA0`, `E3085VB0`).
    public static func divisions(of code: String, count: Int) -> [String] {
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        return (0..<min(count, letters.count)).map { String(code.prefix(6)) + String(letters[$0]) + "0" }
    }
}

/// The path `StockFixture.temporaryRoot` removes at exit (a C exit handler cannot capture it).
nonisolated(unsafe) private var temporaryRootPath: String?
