import BloodMatchCore

/// One entry of a FHIR Bundle snapshot read into the CSV feed's ten fields (din, product_code,
/// component, abo, rhd, collected_at, expires_at, site_id, status, attributes), or what is wrong
/// with it. Only the shape is checked here; the values are validated by `InventorySnapshotDecoder`.
enum FHIRStockEntry {
    /// Why an entry cannot be read: the element's path, its value and the reason.
    struct Problem: Error {
        var path: String
        var value: String
        var reason: RowRejectionReason
        var message: String
    }

    /// R5 Bundle.entry elements.
    static let entryElements: Set<String> = ["id", "extension", "modifierExtension", "link", "fullUrl", "resource", "search", "request", "response"]

    /// R5 BiologicallyDerivedProduct elements.
    static let productElements: Set<String> = [
        "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension",
        "productCategory", "productCode", "parent", "request", "identifier", "biologicalSourceEvent", "processingFacility",
        "division", "productStatus", "expirationDate", "collection", "storageTempRequirements", "property",
    ]

    /// An entry's `request`, checked once the Bundle's type is known (it may follow the entries).
    enum Request: Equatable {
        case absent
        case method(String)
        case malformed
    }

    /// The ten fields, or what is wrong; the entry's request either way.
    static func fields(_ entry: JSONValue, index: Int, centre: String) -> (Result<[String], Problem>, Request) {
        var request = Request.absent
        if case .object(let e) = entry, let r = e["request"] {
            if case .object(let o) = r, case .string(let method)? = o["method"] { request = .method(method) } else { request = .malformed }
        }
        return (Result { () throws(Problem) -> [String] in try read(entry, at: "entry[\(index)]", centre: centre) }, request)
    }

    /// Whether an entry's request fits the Bundle's type: a transaction entry needs POST or PUT
    /// (a stock snapshot states the whole stock), a collection entry has none (R5 bdl-3).
    static func requestProblem(_ request: Request, index: Int, transaction: Bool) -> Problem? {
        let at = "entry[\(index)].request"
        switch (request, transaction) {
        case (.absent, false), (.method("POST"), true), (.method("PUT"), true): return nil
        case (.absent, true), (.malformed, true):
            return Problem(path: at, value: "", reason: .fhirStructure, message: "a transaction entry needs request.method (POST or PUT)")
        case (.method(let method), true):
            return Problem(path: at + ".method", value: method, reason: .fhirStructure,
                           message: "a stock snapshot states the whole stock; only POST or PUT entries are meaningful, not \(method)")
        case (_, false):
            return Problem(path: at, value: "", reason: .fhirStructure, message: "an entry of a collection Bundle has no request (R5 bdl-3)")
        }
    }

    private static func read(_ entry: JSONValue, at entryPath: String, centre: String) throws(Problem) -> [String] {
        func problem(_ path: String, _ value: JSONValue?, _ reason: RowRejectionReason, _ message: String) -> Problem {
            Problem(path: path, value: value.map(FHIRBundleSnapshotDecoder.text) ?? "", reason: reason, message: message)
        }
        guard case .object(let e) = entry else { throw problem(entryPath, entry, .fhirStructure, "an entry must be an object") }
        for key in e.keys.sorted() where !entryElements.contains(key) {
            throw problem(entryPath + "." + key, nil, .fhirStructure, "'\(key)' is not an element of an R5 Bundle entry")
        }
        if e["modifierExtension"] != nil {
            throw problem(entryPath + ".modifierExtension", nil, .fhirStructure, "a modifier extension changes the entry's meaning and none is understood here")
        }
        let at = entryPath + ".resource"
        guard case .object(let r)? = e["resource"] else { throw problem(at, e["resource"], .fhirStructure, "the entry has no resource object") }
        guard case .string("BiologicallyDerivedProduct")? = r["resourceType"] else {
            throw problem(at + ".resourceType", r["resourceType"], .fhirStructure, "every entry of a stock snapshot is a BiologicallyDerivedProduct")
        }
        for key in r.keys.sorted() where !productElements.contains(key) {
            throw problem(at + "." + key, nil, .fhirStructure, "'\(key)' is not an element of an R5 BiologicallyDerivedProduct")
        }
        if r["modifierExtension"] != nil {
            throw problem(at + ".modifierExtension", nil, .fhirStructure, "a modifier extension changes the unit's meaning and none is understood here")
        }

        /// A string element; control characters are refused (they could never be a code or an instant).
        func text(_ value: JSONValue?, _ path: String, what: String) throws(Problem) -> String {
            guard let value else { throw problem(path, nil, .fhirMissing, "\(what) is missing") }
            guard case .string(let s) = value else { throw problem(path, value, .fhirStructure, "\(what) must be a string") }
            if s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw problem(path, value, .fhirStructure, "\(what) holds a control character")
            }
            return s
        }
        /// The codes of a CodeableConcept's codings whose system is one of `systems` (nil: no system).
        func codes(_ value: JSONValue?, _ path: String, systems: Set<String?>) throws(Problem) -> [String] {
            guard let value else { return [] }
            guard case .object(let concept) = value else { throw problem(path, value, .fhirStructure, "must be a CodeableConcept") }
            guard case .array(let codings)? = concept["coding"] else { return [] }
            var out: [String] = []
            for (n, coding) in codings.enumerated() {
                guard case .object(let c) = coding else { throw problem("\(path).coding[\(n)]", coding, .fhirStructure, "a coding must be an object") }
                let system = c["system"].flatMap(FHIRBundleSnapshotDecoder.string)
                if systems.contains(system) { out.append(try text(c["code"], "\(path).coding[\(n)].code", what: "the code")) }
            }
            return out
        }

        // DIN.
        guard case .object(let source)? = r["biologicalSourceEvent"] else {
            throw problem(at + ".biologicalSourceEvent", r["biologicalSourceEvent"], .fhirMissing,
                          "biologicalSourceEvent (the ISBT 128 DIN, system \(FHIRSystem.din)) is missing")
        }
        if let system = source["system"], FHIRBundleSnapshotDecoder.string(system) != FHIRSystem.din {
            throw problem(at + ".biologicalSourceEvent.system", system, .fhirStructure, "the DIN's system must be \(FHIRSystem.din)")
        }
        let din = try text(source["value"], at + ".biologicalSourceEvent.value", what: "the DIN")

        // Properties: ABORhD, type of collection, component, attributes; others are not read.
        var aboRhD: [String] = [], collectionType: [String] = [], component: [String] = [], attributes: [String] = []
        if let list = r["property"] {
            guard case .array(let properties) = list else { throw problem(at + ".property", list, .fhirStructure, "property must be an array") }
            for (n, property) in properties.enumerated() {
                let path = "\(at).property[\(n)]"
                guard case .object(let p) = property else { throw problem(path, property, .fhirStructure, "a property must be an object") }
                let isbt = try codes(p["type"], path + ".type", systems: [FHIRSystem.isbtProperty, nil])
                let ours = try codes(p["type"], path + ".type", systems: [FHIRSystem.property])
                let value = p["valueCodeableConcept"]
                func values(_ system: String) throws(Problem) -> [String] {
                    guard value != nil else { throw problem(path + ".valueCodeableConcept", nil, .fhirMissing, "the property has no valueCodeableConcept") }
                    let found = try codes(value, path + ".valueCodeableConcept", systems: [system])
                    guard !found.isEmpty else {
                        throw problem(path + ".valueCodeableConcept", value, .fhirStructure, "no coding of system \(system)")
                    }
                    return found
                }
                if isbt.contains("ABORhD") { aboRhD += try values(FHIRSystem.aboRhD) }
                // The R5 examples name this property CollectionType in one and Donor in another.
                if isbt.contains("CollectionType") || isbt.contains("Donor") { collectionType += try values(FHIRSystem.collectionType) }
                if ours.contains("component") { component += try values(FHIRSystem.component) }
                if ours.contains("attribute") { attributes += try values(FHIRSystem.requirement) }
            }
        }

        // Product code: the 8-character ISBT 128 product code, or the 5-character product
        // description code with the type of collection and the two-character division beside it.
        let codePath = at + ".productCode"
        let productCodes = Set(try codes(r["productCode"], codePath, systems: [FHIRSystem.productDescriptionCode, nil]))
        guard productCodes.count == 1, let given = productCodes.first else {
            throw problem(codePath, r["productCode"], productCodes.isEmpty ? .fhirMissing : .fhirContradiction,
                          productCodes.isEmpty ? "productCode has no ISBT 128 product description code"
                                               : "productCode names \(productCodes.count) different codes")
        }
        let division = try r["division"].map { (v) throws(Problem) in try text(v, at + ".division", what: "division") }
        let types = Set(collectionType)
        if types.count > 1 { throw problem(at + ".property[CollectionType]", nil, .fhirContradiction, "more than one type of collection") }
        var productCode = given
        if given.count == 5 {
            guard let t = types.first else {
                throw problem(at + ".property[CollectionType]", nil, .fhirMissing,
                              "productCode \(given) is a product description code; the type of collection (CollectionType property) is needed for the unit's product code")
            }
            guard let division else {
                throw problem(at + ".division", nil, .fhirMissing, "productCode \(given) is a product description code; the division is needed for the unit's product code")
            }
            guard division.count == 2 else {
                throw problem(at + ".division", .string(division), .fhirStructure,
                              "division '\(division)' is not the two-character division of an ISBT 128 blood component product code (DS003 'ds', 00 not divided)")
            }
            productCode = given + t + division
        } else if given.count == 8 {
            if let division, division != String(given.suffix(2)) {
                throw problem(at + ".division", .string(division), .fhirContradiction, "division differs from the product code's own (\(given.suffix(2)))")
            }
            if let t = types.first, t != String(given.dropFirst(5).prefix(1)) {
                throw problem(at + ".property[CollectionType]", .string(t), .fhirContradiction, "type of collection differs from the product code's own (\(given.dropFirst(5).prefix(1)))")
            }
        }

        // ABO/RhD: never guessed.
        let groupPath = at + ".property[ABORhD]"
        guard Set(aboRhD).count <= 1 else { throw problem(groupPath, nil, .fhirContradiction, "more than one ABO/RhD code") }
        guard let gg = aboRhD.first else {
            throw problem(groupPath, nil, .groupUnknown, "no ABO/RhD property: the unit's group is unknown and is never guessed; it is not loaded as stock")
        }
        let abo: String, rhd: String
        switch try? ISBTBloodGroupCode(code: gg) {
        case .group(let group, let intent)?:
            if productCode.count == 8, let stated = BloodGroupCollectionType(typeOfCollection: productCode.dropFirst(5).first ?? " "), stated != intent {
                throw problem(groupPath, .string(gg), .fhirContradiction,
                              "ABO/RhD code \(gg) is for \(intent.rawValue) use but the product code's type of collection says \(stated.rawValue)")
            }
            abo = group.abo.rawValue
            rhd = group.rhd.rawValue
        case let other?:
            throw problem(groupPath, .string(gg), .groupUnknown, "ABO/RhD code \(other.description): no ABO and RhD group to match on; not loaded as stock")
        case nil:
            throw problem(groupPath, .string(gg), .unknownABO, "'\(gg)' is not an ISBT 128 ABO/RhD code (ST-001 Table 4 or 5)")
        }

        guard component.count == 1 else {
            throw problem(at + ".property[component]", nil, component.isEmpty ? .fhirMissing : .fhirContradiction,
                          component.isEmpty ? "no component property (\(FHIRSystem.component)): R5's productCategory does not tell blood components apart"
                                            : "more than one component")
        }

        guard case .object(let collection)? = r["collection"] else {
            throw problem(at + ".collection.collectedDateTime", nil, .fhirMissing, "the collection time is missing (it bounds the unit's shelf life)")
        }
        let collected = try text(collection["collectedDateTime"], at + ".collection.collectedDateTime", what: "the collection time")
        let expires = try text(r["expirationDate"], at + ".expirationDate", what: "expirationDate")

        var site = centre
        if case .array(let extensions)? = r["extension"] {
            for (n, ext) in extensions.enumerated() {
                guard case .object(let x) = ext, case .string(FHIRSystem.extensionURL("distribution-centre"))? = x["url"] else { continue }
                guard case .object(let identifier)? = x["valueIdentifier"] else {
                    throw problem("\(at).extension[\(n)].valueIdentifier", x["valueIdentifier"], .fhirStructure, "the distribution centre is an Identifier")
                }
                site = try text(identifier["value"], "\(at).extension[\(n)].valueIdentifier.value", what: "the distribution centre")
            }
        }

        // R5 productStatus is a Coding (not a CodeableConcept).
        let statusPath = at + ".productStatus"
        guard let statusValue = r["productStatus"] else {
            throw problem(statusPath, nil, .fhirMissing, "productStatus is missing; a unit's availability is never assumed")
        }
        guard case .object(let statusCoding) = statusValue, statusCoding["coding"] == nil else {
            throw problem(statusPath, statusValue, .fhirStructure, "productStatus is a Coding (system and code), as R5 defines it")
        }
        if let system = statusCoding["system"], FHIRBundleSnapshotDecoder.string(system) != FHIRSystem.productStatus {
            throw problem(statusPath + ".system", system, .fhirStructure, "productStatus's system must be \(FHIRSystem.productStatus)")
        }
        let status: String
        switch try text(statusCoding["code"], statusPath + ".code", what: "productStatus's code") {
        case "available": status = "AVAILABLE"
        // Not available for use: held back, never offered (the R5 value set has no finer state).
        case "unavailable": status = "QUARANTINED"
        case let code: throw problem(statusPath, .string(code), .unknownStatus, "productStatus '\(code)' is not available or unavailable")
        }
        return [din, productCode, component[0], abo, rhd, collected, expires, site, status, attributes.joined(separator: ";")]
    }
}
