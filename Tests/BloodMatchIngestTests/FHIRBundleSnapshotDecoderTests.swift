import BloodMatchCore
import BloodMatchIngest
import Foundation
import Testing

/// FHIR Bundle snapshots built in memory.
enum BundleBuilder {
    static let centre = "DC-SYD-01"
    static let asOf = SnapshotBuilder.asOf
    static let now = SnapshotBuilder.now

    /// A unit as this server writes it: full product code, component, ABORhD 95, collection and expiry.
    static func unit(_ n: Int, productCode: String = "E0382V00", attributes: [String] = ["IRRADIATED"]) -> [String: Any] {
        let din = "W000025" + String(repeating: "0", count: 6 - String(n).count) + String(n)
        var properties: [[String: Any]] = [
            property(FHIRSystem.isbtProperty, "ABORhD", FHIRSystem.aboRhD, "95"),
            property(FHIRSystem.property, "component", FHIRSystem.component, "RBC"),
        ]
        for a in attributes { properties.append(property(FHIRSystem.property, "attribute", FHIRSystem.requirement, a)) }
        return [
            "resourceType": "BiologicallyDerivedProduct",
            "biologicalSourceEvent": ["system": FHIRSystem.din, "value": din],
            "productCode": ["coding": [["system": FHIRSystem.productDescriptionCode, "code": productCode]]],
            "productStatus": ["system": FHIRSystem.productStatus, "code": "available"],
            "expirationDate": "2025-07-01T08:00:00Z",
            "collection": ["collectedDateTime": "2025-05-20T08:00:00Z"],
            "property": properties,
            "extension": [["url": FHIRSystem.extensionURL("distribution-centre"), "valueIdentifier": ["system": FHIRSystem.site, "value": centre]]],
        ]
    }

    static func property(_ typeSystem: String?, _ type: String, _ system: String, _ code: String) -> [String: Any] {
        var coding: [String: Any] = ["code": type]
        if let typeSystem { coding["system"] = typeSystem }
        return ["type": ["coding": [coding]], "valueCodeableConcept": ["coding": [["system": system, "code": code]]]]
    }

    /// HL7's R5 example `biologicallyderivedproduct-example` (red cells E0398, DIN A999921123456,
    /// ABO/RhD 62, type of collection V under a property named `Donor`), as published: a
    /// six-character division, no component, no collection time, no product code system.
    static func hl7RedCellExample() -> [String: Any] {
        [
            "resourceType": "BiologicallyDerivedProduct", "id": "example",
            "identifier": [["system": "https://www.isbt128.org/uri/MPHOUniqueIdentifier", "value": "A9999E0398A999921123456A00000"]],
            "productCode": ["coding": [["code": "E0398"]]],
            "biologicalSourceEvent": ["system": FHIRSystem.din, "value": "A999921123456"],
            "processingFacility": [["reference": "Organization/A9999"]],
            "division": "A00000",
            "productStatus": ["code": "available"],
            "expirationDate": "2021-08-02T23:59:00-05:00",
            "storageTempRequirements": ["low": ["value": 1, "unit": "degrees C", "system": "http://unitsofmeasure.org"],
                                        "high": ["value": 6, "unit": "degrees C", "system": "http://unitsofmeasure.org"]],
            "property": [
                ["type": ["coding": [["code": "ABORhD"]]], "valueCodeableConcept": ["coding": [["system": FHIRSystem.aboRhD, "code": "62", "display": "A RhD Positive"]]]],
                ["type": ["coding": [["code": "Donor"]]], "valueCodeableConcept": ["coding": [["system": FHIRSystem.collectionType, "code": "V", "display": "Volunteer"]]]],
            ],
        ]
    }

    static func bundle(_ resources: [[String: Any]], type: String = "collection", extra: [String: Any] = [:]) -> [String: Any] {
        var b: [String: Any] = ["resourceType": "Bundle", "type": type, "timestamp": "2025-06-01T06:00:00Z",
                                "entry": resources.map { ["resource": $0] as [String: Any] }]
        for (k, v) in extra { b[k] = v }
        return b
    }

    static func bytes(_ object: Any) throws -> [UInt8] {
        Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    static func decode(_ object: Any, entries: Int? = nil, emptyStock: Bool = false) throws -> SnapshotCompletion {
        let data = try bytes(object)
        let count = entries ?? ((object as? [String: Any])?["entry"] as? [Any])?.count ?? 0
        let control = SnapshotControl(centre: centre, asOf: asOf, rowCount: count, sha256: SnapshotControl.checksum(of: data), emptyStock: emptyStock)
        return try FHIRBundleSnapshotDecoder.decode(data, fileName: "DC-SYD-01.json", control: control, now: now)
    }

    static func rejection(_ completion: SnapshotCompletion, entry: Int) -> RowRejection? {
        for row in completion.rows { if case .rejected(let r) = row, r.line == entry + 1 { return r } }
        return nil
    }
}

@Suite("FHIR Bundle snapshots")
struct FHIRBundleSnapshotDecoderTests {
    @Test("units as this server writes them, and one shaped as the R5 example with a two-character division, load with their values")
    func loadsUnits() throws {
        var r5Shaped = BundleBuilder.hl7RedCellExample()
        r5Shaped["division"] = "00"
        r5Shaped["expirationDate"] = "2025-07-02T23:59:00-05:00"
        r5Shaped["collection"] = ["collectedDateTime": "2025-05-25T08:00:00-05:00"]
        var props = r5Shaped["property"] as! [[String: Any]]
        props.append(BundleBuilder.property(FHIRSystem.property, "component", FHIRSystem.component, "RBC"))
        r5Shaped["property"] = props
        let done = try BundleBuilder.decode(BundleBuilder.bundle([BundleBuilder.unit(1), BundleBuilder.unit(2, attributes: []), r5Shaped]))
        #expect(done.summary.rowCount == 3 && done.summary.acceptedCount == 3 && done.summary.rejectedCount == 0)
        let units = done.rows.compactMap { row -> (InventoryUnit, Int)? in
            if case .accepted(let u, let line) = row { return (u, line) }
            return nil
        }
        #expect(units.map(\.1) == [1, 2, 3])
        let first = try #require(units.first?.0)
        #expect(first.din.value == "W000025000001" && first.productCode == "E0382V00" && first.group == .oNegative)
        #expect(first.component == .redCells && first.attributes.description == "IRRADIATED" && first.status == .available && first.siteID == "DC-SYD-01")
        #expect(first.expiresAt == Date(timeIntervalSince1970: 1_751_356_800))
        let example = try #require(units.last?.0)
        #expect(example.din.value == "A999921123456" && example.productCode == "E0398V00")
        #expect(example.group == BloodGroup(.A, .positive))
        #expect(example.expiresAt == Date(timeIntervalSince1970: 1_751_518_740))   // 2025-07-03T04:59:00Z
    }

    @Test("HL7's red-cell example as published is refused by name: its division is six characters, not ISBT 128's two")
    func hl7ExampleAsPublished() throws {
        let done = try BundleBuilder.decode(BundleBuilder.bundle([BundleBuilder.hl7RedCellExample(), BundleBuilder.unit(1)]))
        #expect(done.summary.acceptedCount == 1)
        let r = try #require(BundleBuilder.rejection(done, entry: 0))
        #expect(r.field == "entry[0].resource.division" && r.value == "A00000" && r.reason == .fhirStructure)
        #expect(r.description.hasPrefix("DC-SYD-01.json:1: field entry[0].resource.division: "))
    }

    @Test("no ABO/RhD property, RhD not specified, or a special message: group unknown, never guessed, not loaded")
    func groupUnknown() throws {
        var none = BundleBuilder.unit(1)
        none["property"] = [BundleBuilder.property(FHIRSystem.property, "component", FHIRSystem.component, "RBC")]
        func with(_ n: Int, code: String) -> [String: Any] {
            var u = BundleBuilder.unit(n)
            u["property"] = [BundleBuilder.property(FHIRSystem.isbtProperty, "ABORhD", FHIRSystem.aboRhD, code),
                             BundleBuilder.property(FHIRSystem.property, "component", FHIRSystem.component, "RBC")]
            return u
        }
        let done = try BundleBuilder.decode(BundleBuilder.bundle([none, with(2, code: "55"), with(3, code: "Mq"), with(4, code: "00"), BundleBuilder.unit(5)]))
        #expect(done.summary.acceptedCount == 1 && done.summary.rejectedCount == 4)
        for entry in 0..<4 {
            let r = try #require(BundleBuilder.rejection(done, entry: entry))
            #expect(r.reason == .groupUnknown && r.field == "entry[\(entry)].resource.property[ABORhD]", "entry \(entry): \(r)")
        }
    }

    /// One bad entry (among four good ones), the element it must be named by, and the reason.
    nonisolated(unsafe) static let badEntries: [(String, ([String: Any]) -> [String: Any], String, RowRejectionReason)] = [
        ("another resource type", { var u = $0; u["resourceType"] = "Patient"; return u }, "entry[0].resource.resourceType", .fhirStructure),
        ("an element R5 does not have", { var u = $0; u["donorName"] = "x"; return u }, "entry[0].resource.donorName", .fhirStructure),
        ("a modifier extension", { var u = $0; u["modifierExtension"] = [["url": "http://x", "valueBoolean": true]]; return u }, "entry[0].resource.modifierExtension", .fhirStructure),
        ("no DIN", { var u = $0; u["biologicalSourceEvent"] = nil; return u }, "entry[0].resource.biologicalSourceEvent", .fhirMissing),
        ("a DIN of another system", { var u = $0; u["biologicalSourceEvent"] = ["system": "http://other", "value": "W000025000001"]; return u }, "entry[0].resource.biologicalSourceEvent.system", .fhirStructure),
        ("a 12-character DIN", { var u = $0; u["biologicalSourceEvent"] = ["system": FHIRSystem.din, "value": "W00002500000"]; return u }, "entry[0].resource.biologicalSourceEvent.value", .dinWrongLength),
        ("a DIN with a line feed", { var u = $0; u["biologicalSourceEvent"] = ["system": FHIRSystem.din, "value": "W0000250\n0001"]; return u }, "entry[0].resource.biologicalSourceEvent.value", .fhirStructure),
        ("two product codes", { var u = $0; u["productCode"] = ["coding": [["code": "E0382V00"], ["code": "E0398V00"]]]; return u }, "entry[0].resource.productCode", .fhirContradiction),
        ("a description code without division", { var u = $0; u["productCode"] = ["coding": [["code": "E0382"]]]
            u["property"] = (u["property"] as! [[String: Any]]) + [BundleBuilder.property(FHIRSystem.isbtProperty, "CollectionType", FHIRSystem.collectionType, "V")]; return u },
         "entry[0].resource.division", .fhirMissing),
        ("a division differing from the code's", { var u = $0; u["division"] = "A0"; return u }, "entry[0].resource.division", .fhirContradiction),
        ("a directed-use group code on a volunteer product", { var u = $0; u["property"] = [BundleBuilder.property(FHIRSystem.isbtProperty, "ABORhD", FHIRSystem.aboRhD, "91"),
            BundleBuilder.property(FHIRSystem.property, "component", FHIRSystem.component, "RBC")]; return u }, "entry[0].resource.property[ABORhD]", .fhirContradiction),
        ("an ABO/RhD code ISBT 128 does not have", { var u = $0; u["property"] = [BundleBuilder.property(FHIRSystem.isbtProperty, "ABORhD", FHIRSystem.aboRhD, "ZZ"),
            BundleBuilder.property(FHIRSystem.property, "component", FHIRSystem.component, "RBC")]; return u }, "entry[0].resource.property[ABORhD]", .unknownABO),
        ("no component", { var u = $0; u["property"] = [BundleBuilder.property(FHIRSystem.isbtProperty, "ABORhD", FHIRSystem.aboRhD, "95")]; return u }, "entry[0].resource.property[component]", .fhirMissing),
        ("an unknown component", { var u = $0; u["property"] = [BundleBuilder.property(FHIRSystem.isbtProperty, "ABORhD", FHIRSystem.aboRhD, "95"),
            BundleBuilder.property(FHIRSystem.property, "component", FHIRSystem.component, "BLOOD")]; return u }, "entry[0].resource.property[component]", .unknownComponent),
        ("no collection time", { var u = $0; u["collection"] = nil; return u }, "entry[0].resource.collection.collectedDateTime", .fhirMissing),
        ("an expiry without a time zone", { var u = $0; u["expirationDate"] = "2025-07-01T08:00:00"; return u }, "entry[0].resource.expirationDate", .timestampMissingZone),
        ("an expiry before collection", { var u = $0; u["expirationDate"] = "2025-05-01T08:00:00Z"; return u }, "entry[0].resource.expirationDate", .expiryNotAfterCollection),
        ("a status R5 does not have", { var u = $0; u["productStatus"] = ["code": "recalled"]; return u }, "entry[0].resource.productStatus", .unknownStatus),
        ("no status", { var u = $0; u["productStatus"] = nil; return u }, "entry[0].resource.productStatus", .fhirMissing),
        ("a status as a CodeableConcept (R5 has a Coding)", { var u = $0; u["productStatus"] = ["coding": [["code": "available"]]]; return u }, "entry[0].resource.productStatus", .fhirStructure),
        ("another centre's unit", { var u = $0; u["extension"] = [["url": FHIRSystem.extensionURL("distribution-centre"), "valueIdentifier": ["value": "DC-NEW-01"]]]; return u },
         "entry[0].resource.extension[distribution-centre]", .centreMismatch),
        ("an unknown attribute", { var u = $0; u["property"] = (u["property"] as! [[String: Any]]) + [BundleBuilder.property(FHIRSystem.property, "attribute", FHIRSystem.requirement, "GLOWING")]; return u },
         "entry[0].resource.property[attribute]", .unknownAttribute),
        ("a number where a code goes", { var u = $0; u["expirationDate"] = 20250701; return u }, "entry[0].resource.expirationDate", .fhirStructure),
        ("an R4 element (quantity)", { var u = $0; u["quantity"] = 1; return u }, "entry[0].resource.quantity", .fhirStructure),
        ("a lower-case DIN", { var u = $0; u["biologicalSourceEvent"] = ["system": FHIRSystem.din, "value": "w000025000001"]; return u }, "entry[0].resource.biologicalSourceEvent.value", .dinLowercase),
        ("two different ABO/RhD codes", { var u = $0; u["property"] = (u["property"] as! [[String: Any]]) + [BundleBuilder.property(FHIRSystem.isbtProperty, "ABORhD", FHIRSystem.aboRhD, "51")]; return u },
         "entry[0].resource.property[ABORhD]", .fhirContradiction),
        ("an emergency-use group code on a volunteer product", { var u = $0; u["property"] = [BundleBuilder.property(FHIRSystem.isbtProperty, "ABORhD", FHIRSystem.aboRhD, "92"),
            BundleBuilder.property(FHIRSystem.property, "component", FHIRSystem.component, "RBC")]; return u }, "entry[0].resource.property[ABORhD]", .fhirContradiction),
        ("a type of collection differing from the product code's", { var u = $0; u["property"] = (u["property"] as! [[String: Any]]) + [BundleBuilder.property(FHIRSystem.isbtProperty, "CollectionType", FHIRSystem.collectionType, "2")]; return u },
         "entry[0].resource.property[CollectionType]", .fhirContradiction),
        ("an attribute listed twice", { var u = $0; u["property"] = (u["property"] as! [[String: Any]]) + [BundleBuilder.property(FHIRSystem.property, "attribute", FHIRSystem.requirement, "IRRADIATED")]; return u },
         "entry[0].resource.property[attribute]", .duplicateAttribute),
        ("a shelf life no red cell has", { var u = $0; u["expirationDate"] = "2025-09-30T08:00:00Z"; return u }, "entry[0].resource.expirationDate", .shelfLifeExceeded),
        ("collected after the snapshot", { var u = $0; u["collection"] = ["collectedDateTime": "2025-06-02T08:00:00Z"]; return u }, "entry[0].resource.collection.collectedDateTime", .collectedAfterAsOf),
        ("a product status of another system", { var u = $0; u["productStatus"] = ["system": "http://other", "code": "available"]; return u }, "entry[0].resource.productStatus.system", .fhirStructure),
        ("a property value that is not a CodeableConcept", { var u = $0; u["property"] = [["type": ["coding": [["system": FHIRSystem.isbtProperty, "code": "ABORhD"]]], "valueCodeableConcept": "95"]]; return u },
         "entry[0].resource.property[0].valueCodeableConcept", .fhirStructure),
    ]

    @Test("each malformed entry is refused alone, naming its entry and element; the other entries load", arguments: 0..<33)
    func badEntry(_ n: Int) throws {
        let (what, mutate, path, reason) = Self.badEntries[n]
        let good = (2...5).map { BundleBuilder.unit($0) }
        let done = try BundleBuilder.decode(BundleBuilder.bundle([mutate(BundleBuilder.unit(1))] + good))
        #expect(done.summary.rowCount == 5 && done.summary.acceptedCount == 4, "\(what)")
        let r = try #require(BundleBuilder.rejection(done, entry: 0), "\(what)")
        #expect(r.field == path && r.reason == reason, "\(what): \(r)")
        #expect(r.file == "DC-SYD-01.json" && r.line == 1)
    }

    @Test("a duplicate unit names the earlier entry; a refused last entry still counts")
    func duplicateAndLast() throws {
        var last = BundleBuilder.unit(9)
        last["resourceType"] = "Observation"
        let done = try BundleBuilder.decode(BundleBuilder.bundle([BundleBuilder.unit(1), BundleBuilder.unit(2), BundleBuilder.unit(1), last]))
        #expect(done.summary.rowCount == 4 && done.summary.acceptedCount == 2 && done.summary.rejectedCount == 2)
        let dup = try #require(BundleBuilder.rejection(done, entry: 2))
        #expect(dup.reason == .duplicateUnit && dup.field == "entry[2].resource.biologicalSourceEvent.value" && dup.message.contains("at entry[0]"))
        #expect(BundleBuilder.rejection(done, entry: 3)?.reason == .fhirStructure)
    }

    @Test("transaction entries need POST or PUT; a collection entry has no request")
    func requests() throws {
        var post: [String: Any] = ["resource": BundleBuilder.unit(1), "request": ["method": "POST", "url": "BiologicallyDerivedProduct"]]
        let delete: [String: Any] = ["resource": BundleBuilder.unit(2), "request": ["method": "DELETE", "url": "BiologicallyDerivedProduct/x"]]
        let tx: [String: Any] = ["resourceType": "Bundle", "type": "transaction", "entry": [post, delete]]
        let done = try BundleBuilder.decode(tx)
        #expect(done.summary.acceptedCount == 1 && BundleBuilder.rejection(done, entry: 1)?.field == "entry[1].request.method")
        post["request"] = ["method": "POST"]
        let collection: [String: Any] = ["resourceType": "Bundle", "type": "collection", "entry": [post]]
        #expect(try BundleBuilder.decode(collection).summary.rejectedCount == 1)
    }

    /// Whole-file refusals: the document, its type, its instant, its count, its bytes.
    nonisolated(unsafe) static let badFiles: [(String, [UInt8]?, Any?, SnapshotFileError.Kind)] = [
        ("not JSON", Array("{\"resourceType\":\"Bundle\",".utf8), nil, .bundleInvalid),
        ("another resource", nil, ["resourceType": "Patient", "type": "collection"], .bundleInvalid),
        ("a search result", nil, ["resourceType": "Bundle", "type": "searchset"], .bundleInvalid),
        ("an element a Bundle does not have", nil, ["resourceType": "Bundle", "type": "collection", "centre": "DC-SYD-01"], .bundleInvalid),
        ("a timestamp other than as_of", nil, ["resourceType": "Bundle", "type": "collection", "timestamp": "2025-06-01T07:00:00Z"], .bundleInvalid),
        ("entry not an array", nil, ["resourceType": "Bundle", "type": "collection", "entry": ["resource": [:]]], .bundleInvalid),
        ("nesting 40 deep", Array(("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"meta\":" + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}").utf8), nil, .bundleInvalid),
        ("no entries without empty_stock", nil, ["resourceType": "Bundle", "type": "collection"], .rowCountMismatch),
        ("an entry count other than row_count", nil, BundleBuilder.bundle([BundleBuilder.unit(1)]), .rowCountMismatch),
        ("duplicate member names", Array(#"{"resourceType":"Bundle","type":"collection","type":"transaction"}"#.utf8), nil, .bundleInvalid),
        ("a BOM and UTF-16", [0xFF, 0xFE] + Array("{}".utf8), nil, .bundleInvalid),
    ]

    @Test("a file that is not a stock Bundle is refused whole, with the element at fault", arguments: 0..<11)
    func badFile(_ n: Int) throws {
        let (what, raw, object, kind) = Self.badFiles[n]
        let data = try raw ?? BundleBuilder.bytes(object!)
        let control = SnapshotControl(centre: BundleBuilder.centre, asOf: BundleBuilder.asOf, rowCount: 0, sha256: SnapshotControl.checksum(of: data), emptyStock: false)
        #expect { try FHIRBundleSnapshotDecoder.decode(data, fileName: "DC-SYD-01.json", control: control, now: BundleBuilder.now) } throws: { error in
            (error as? SnapshotFileError)?.kind == kind && (error as? SnapshotFileError)?.file == "DC-SYD-01.json"
        }
        _ = what
    }

    @Test("more entries than the row cap, or more bytes than the size cap, refuse the file before any entry is read")
    func caps() throws {
        let object = BundleBuilder.bundle((1...5).map { BundleBuilder.unit($0) })
        let data = try BundleBuilder.bytes(object)
        let control = SnapshotControl(centre: BundleBuilder.centre, asOf: BundleBuilder.asOf, rowCount: 5, sha256: SnapshotControl.checksum(of: data), emptyStock: false)
        var rows = SnapshotLimits.standard
        rows.maximumRows = 4
        #expect { try FHIRBundleSnapshotDecoder.decode(data, fileName: "b.json", control: control, now: BundleBuilder.now, limits: rows) } throws: {
            ($0 as? SnapshotFileError)?.kind == .rowCapExceeded
        }
        var bytes = SnapshotLimits.standard
        bytes.maximumBundleBytes = data.count - 1
        #expect { try FHIRBundleSnapshotDecoder.decode(data, fileName: "b.json", control: control, now: BundleBuilder.now, limits: bytes) } throws: {
            ($0 as? SnapshotFileError)?.kind == .fileTooLarge
        }
    }

    @Test("the control record proves the Bundle whole: changed bytes or another entry count are refused; an empty stock needs empty_stock")
    func control() throws {
        let object = BundleBuilder.bundle([BundleBuilder.unit(1), BundleBuilder.unit(2)])
        let data = try BundleBuilder.bytes(object)
        var control = SnapshotControl(centre: BundleBuilder.centre, asOf: BundleBuilder.asOf, rowCount: 2, sha256: SnapshotControl.checksum(of: data), emptyStock: false)
        #expect(throws: SnapshotFileError.self) { try FHIRBundleSnapshotDecoder.decode(Array(data.dropLast()), fileName: "b.json", control: control, now: BundleBuilder.now) }
        control.rowCount = 3
        #expect { try FHIRBundleSnapshotDecoder.decode(data, fileName: "b.json", control: control, now: BundleBuilder.now) } throws: {
            ($0 as? SnapshotFileError)?.kind == .rowCountMismatch
        }
        let empty = try BundleBuilder.decode(["resourceType": "Bundle", "type": "collection"], emptyStock: true)
        #expect(empty.summary.rowCount == 0 && empty.rows.isEmpty)
        #expect(SnapshotControl.controlFileName(forSnapshot: "DC-SYD-01-20250601.json") == "DC-SYD-01-20250601.ctl.json")
        #expect(SnapshotControl.controlFileName(forSnapshot: "DC-SYD-01-20250601.fhir.json") == "DC-SYD-01-20250601.ctl.json")
    }
}
