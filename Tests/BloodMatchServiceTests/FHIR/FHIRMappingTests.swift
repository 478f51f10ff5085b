import BloodMatchIngest
import BloodMatchCore
@testable import BloodMatchService
import BloodMatchStore
import Foundation
import Testing

/// The FHIR mapping, without a server: identifiers, ISBT 128 codes, what a SupplyRequest may say,
/// search parameters, dispense statuses and updates, OperationOutcome.
@Suite("FHIR mapping")
struct FHIRMappingTests {
    static let now = Date(timeIntervalSince1970: 1_796_000_000)

    static func object(_ value: JSONValue) -> [String: JSONValue] {
        if case .object(let o) = value { return o }
        // Rendered straight to text: read back with the strict reader (which also proves it is JSON).
        if case .encoded(let bytes) = value, case .object(let o)? = try? StrictJSON().parse(bytes) { return o }
        return [:]
    }

    @Test("a unit's resource id is DIN-PRODUCTCODE and reads back; other shapes are not ids")
    func productIDs() {
        let key = UnitKey(din: "A999921123456", productCode: "E0398V00")
        #expect(FHIRProduct.id(key) == "A999921123456-E0398V00")
        #expect(FHIRProduct.key(id: "A999921123456-E0398V00") == key)
        for bad in ["A999921123456", "A999921123456-E0398V0", "a999921123456-E0398V00", "../../etc", "A999921123456-E0398V00-x", ""] {
            #expect(FHIRProduct.key(id: bad) == nil, "\(bad)")
        }
    }

    @Test("ABO/RhD: the ISBT 128 code of the group and the product code's intended use; unknown uses are text only")
    func aboRhD() {
        let aPos = BloodGroup(.A, .positive)
        #expect(FHIRProduct.aboRhDCode(aPos, productCode: "E0398V00") == "62")   // the R5 example's code
        #expect(FHIRProduct.aboRhDCode(.oNegative, productCode: "E0336V00") == "95")
        #expect(FHIRProduct.aboRhDCode(.oNegative, productCode: "E0336G00") == "92")   // emergency use only
        #expect(FHIRProduct.aboRhDCode(.oNegative, productCode: "E03362A0") == "91")   // directed only
        #expect(FHIRProduct.aboRhDCode(.oNegative, productCode: "E03361A0") == "97")   // autologous only
        #expect(FHIRProduct.aboRhDCode(.oNegative, productCode: "E0336D00") == nil)    // directed, crossover eligible: not confirmed
        let textOnly = Self.object(FHIRProduct.aboRhD(.oNegative, productCode: "E0336D00"))
        #expect(textOnly["coding"] == nil && textOnly["text"] == .string("O RhD negative"))
    }

    @Test("a unit's resource carries DIN, product description code, division, status, expiry, temperature and centre; never donor data")
    func productResource() {
        let unit = FHIRUnitView(key: UnitKey(din: "A999921123456", productCode: "E0398V00"), component: .redCells, group: BloodGroup(.A, .positive),
                                collectedAt: 1_795_000_000, expiresAt: 1_797_000_000, attributes: AttributeSet([.irradiated]), centreID: "DCSYD",
                                stockAsOf: 1_795_990_000, stale: false, available: true)
        let rendered = FHIRProduct.resource(unit)
        let r = Self.object(rendered)
        // Written straight to text, it is the text the encoder writes for the same value (sorted keys).
        if case .encoded(let bytes) = rendered { #expect(ResponseJSON.encode(.object(r)) == bytes) } else { Issue.record("not rendered to text") }
        #expect(r["id"] == "A999921123456-E0398V00")
        #expect(r["biologicalSourceEvent"] == .identifier(FHIRSystem.din, "A999921123456"))
        #expect(r["division"] == "00")
        #expect(Self.object(r["productStatus"] ?? .null)["code"] == "available")
        #expect(r["expirationDate"] == "2026-12-11T14:40:00Z")
        #expect(Self.object(Self.object(r["storageTempRequirements"] ?? .null)["high"] ?? .null)["value"] == .int(6))
        let collection = Self.object(r["collection"] ?? .null)
        #expect(collection.keys.sorted() == ["collectedDateTime"], "no collector, no source")
        #expect(ResponseJSON.string(.object(r)).contains("DCSYD"))
        #expect(ResponseJSON.string(.object(r)).contains(#"{"type":{"coding":[{"code":"CollectionType","system":"https://www.isbt128.org/uri"}]},"valueCodeableConcept":{"coding":[{"code":"V","system":"https://www.isbt128.org/uri/CollectionType"}]}}"#))
        #expect(FHIRProduct.storageRange(.platelets) == ["low": ["value": .int(20), "unit": "degrees C", "system": .string(FHIRSystem.ucum), "code": "Cel"],
                                                        "high": ["value": .int(24), "unit": "degrees C", "system": .string(FHIRSystem.ucum), "code": "Cel"]])
        #expect(Self.object(FHIRProduct.storageRange(.plasma) ?? .null)["low"] == nil)
    }

    static func supplyRequest(_ changes: (inout [String: JSONValue]) -> Void = { _ in }) -> JSONValue {
        var body: [String: JSONValue] = [
            "resourceType": "SupplyRequest", "status": "active", "priority": "routine",
            "item": ["concept": ["coding": [.coding(FHIRSystem.component, "PLT")]]],
            "quantity": ["value": .int(3)],
            "deliverTo": ["reference": "Organization/HWOL"],
            "occurrenceDateTime": .string(iso(now.addingTimeInterval(6 * 3600))),
            "parameter": [
                ["code": .concept(FHIRSystem.orderParameter, "recipient-group"), "valueCodeableConcept": .concept("http://snomed.info/sct", "278152006")],
                ["code": .concept(FHIRSystem.orderParameter, "requirement"), "valueCodeableConcept": .concept(FHIRSystem.requirement, "IRRADIATED")],
                ["code": .concept(FHIRSystem.orderParameter, "recipient-context"), "valueString": "female,age=30"],
            ],
        ]
        changes(&body)
        return .object(body)
    }

    @Test("a SupplyRequest becomes the order it describes")
    func supplyRequestOrder() throws {
        let input = try FHIRSupplyRequest.parse(Self.supplyRequest(), hospital: "HWOL", now: Self.now)
        #expect(input.order.component == .platelets && input.order.quantity == 3 && input.order.group == BloodGroup(.A, .negative))
        #expect(input.order.requirements == [.irradiated] && input.order.urgency == .routine && !input.order.immediate)
        #expect(input.order.context.tokens == "female,age=30")
        #expect(input.order.neededBy == Self.now.addingTimeInterval(6 * 3600))
        let stat = try FHIRSupplyRequest.parse(Self.supplyRequest { $0["priority"] = "stat"; $0["occurrenceDateTime"] = nil }, hospital: "HWOL", now: Self.now)
        #expect(stat.order.urgency == .emergency && stat.order.immediate)
        let asap = try FHIRSupplyRequest.parse(Self.supplyRequest { $0["priority"] = "asap"; $0["occurrenceDateTime"] = nil }, hospital: "HWOL", now: Self.now)
        #expect(asap.order.urgency == .urgent && asap.order.immediate)
        // Read back: the same order in FHIR terms.
        var order = input.order
        order.orderID = "fhir-abc"
        order.status = "pending"
        let back = Self.object(FHIRSupplyRequest.resource(order, allocated: 0))
        #expect(back["status"] == "active" && back["priority"] == "routine" && back["id"] == "fhir-abc")
    }

    @Test("refusals name the element: contradictory priority, other hospitals, patient data, unknown elements")
    func supplyRequestRefusals() {
        func refusal(_ changes: (inout [String: JSONValue]) -> Void) -> APIError? {
            do { _ = try FHIRSupplyRequest.parse(Self.supplyRequest(changes), hospital: "HWOL", now: Self.now); return nil } catch { return error }
        }
        let soon = refusal { $0["occurrenceDateTime"] = .string(iso(Self.now.addingTimeInterval(20 * 60))) }
        #expect(soon?.status == .unprocessableContent && soon?.field == "SupplyRequest.priority")
        let statLater = refusal { $0["priority"] = "stat"; $0["occurrenceDateTime"] = .string(iso(Self.now.addingTimeInterval(3 * 86_400))) }
        #expect(statLater?.code == "contradictory_priority")
        #expect(refusal { $0["deliverTo"] = ["reference": "Organization/HOTH"] }?.status == .forbidden)
        #expect(refusal { $0["deliverFor"] = ["reference": "Patient/1"] }?.field == "SupplyRequest.deliverFor")
        #expect(refusal { $0["unitPrice"] = .int(3) }?.field == "SupplyRequest.unitPrice")
        #expect(refusal { $0["id"] = "x" }?.field == "SupplyRequest.id")
        #expect(refusal { $0["quantity"] = ["value": .number("1.5")] }?.field == "SupplyRequest.quantity.value")
        #expect(refusal { $0["priority"] = "whenever" }?.field == "SupplyRequest.priority")
        #expect(refusal { $0["resourceType"] = "Bundle" }?.field == "resourceType")
    }

    @Test("search parameters: unknown ones refused, tokens checked against their system, expiry prefixes bound")
    func searchParameters() throws {
        #expect(throws: APIError.self) { try FHIRProductSearch(query: [("colour", "red")]) }
        #expect(throws: APIError.self) { try FHIRProductSearch(query: [("code", "http://snomed.info/sct|E0398")]) }
        #expect(throws: APIError.self) { try FHIRProductSearch(query: [("abo-rhd", "Md")]) }
        #expect(throws: APIError.self) { try FHIRProductSearch(query: [("product-status", "unavailable")]) }
        #expect(throws: APIError.self) { try FHIRProductSearch(query: [("expiration-date", "2026-12-10")]) }
        let s = try FHIRProductSearch(query: [("abo-rhd", FHIRSystem.aboRhD + "|95,62"), ("expiration-date", "ge2026-12-10"),
                                              ("expiration-date", "lt2026-12-12T06:00:00Z"), ("_count", "5")])
        #expect(s.aboRhDCodes == ["95", "62"] && s.count == 5)
        #expect(s.expiresAfter == 1_796_860_800 - 1 && s.expiresAtOrBefore == 1_797_055_200 - 1)
    }

    @Test("a unit with less life left than its component's minimum at arrival is never listed as available")
    func searchMinimumRemainingLife() throws {
        let now = Self.now
        func unit(_ din: String, hours: Double, _ component: Component = .redCells, code: String = "E0336V00") throws -> InventoryUnit {
            InventoryUnit(din: try DonationNumber(parsing: din), productCode: code, component: component, group: .oNegative,
                          collectedAt: now.addingTimeInterval(-3 * 86_400), expiresAt: now.addingTimeInterval(hours * 3600),
                          siteID: "DCSYD", status: .available, attributes: [])
        }
        let centre = IndexedCentre(siteID: "DCSYD", location: GeoPoint(latitude: -33.9, longitude: 151.2), snapshotID: 1,
                                   asOf: Int64(now.timeIntervalSince1970), expectedIntervalSeconds: 1800)
        let index = InventoryIndex(centres: [centre], units: [
            try unit("T000126000001", hours: 10), try unit("T000126000002", hours: 47), try unit("T000126000003", hours: 49),
            try unit("T000126000004", hours: 10, .platelets, code: "E3046V00"), try unit("T000126000005", hours: 30, .platelets, code: "E3046V00"),
        ], builtAt: now)
        let search = try FHIRProductSearch(query: [])
        let seconds = Int64(now.timeIntervalSince1970)
        // Data/matching.json: red cells 48 h, platelets 24 h at arrival.
        let minimum: [Component: Int64] = [.redCells: 48 * 3600, .platelets: 24 * 3600]
        let listed = search.run(index: index, held: [], now: seconds, minimumRemainingSeconds: minimum).page.map { index.unitKey(at: $0.position).din }
        #expect(Set(listed) == ["T000126000003", "T000126000005"])
        // Without the rule every unexpired unit would be listed (what the search did before).
        #expect(search.run(index: index, held: [], now: seconds).total == 5)
    }

    @Test("dispense ids read back; statuses follow the hold, the issue and the return")
    func dispenses() {
        let reservation = UUID()
        var d = OrderDispense(reservationID: reservation, unit: UnitKey(din: "T000126000001", productCode: "E0382V00"), orderID: "fhir-1", hospital: "HWOL",
                              centreID: "DCSYD", component: .redCells, group: .oNegative, expiresAt: Self.now.addingTimeInterval(86_400), state: "active",
                              stateChangedAt: Self.now, heldUntil: Self.now.addingTimeInterval(3600), heldAt: Self.now)
        let id = FHIRDispense.id(d)
        #expect(FHIRDispense.parse(id: id)?.0 == reservation && FHIRDispense.parse(id: id)?.1 == d.unit)
        #expect(FHIRDispense.status(d, now: Self.now) == "allocated")
        #expect(FHIRDispense.status(d, now: Self.now.addingTimeInterval(7200)) == "unfulfilled")
        d.state = "issued"
        #expect(FHIRDispense.status(d, now: Self.now) == "issued")
        d.fate = UnitFateEvent.returned
        #expect(FHIRDispense.status(d, now: Self.now) == "returned")
        d.fate = nil
        // An update adding the receipt is a receipt; the same again reports nothing new.
        var body = Self.object(FHIRDispense.resource(d, now: Self.now))
        if case .array(var list) = body["extension"] ?? .null {
            list.append(.object(["url": .string(FHIRSystem.extensionURL("received")), "valueDateTime": .string(iso(Self.now))]))
            body["extension"] = .array(list)
        }
        #expect((try? FHIRDispense.report(.object(body), id: id, current: d, now: Self.now))??.event == .received)
        d.receivedAt = Self.now
        #expect((try? FHIRDispense.report(.object(body), id: id, current: d, now: Self.now)) == .some(nil))
        #expect(throws: APIError.self) { try FHIRDispense.report(.object(body), id: "other", current: d, now: Self.now) }
    }

    @Test("an unable-to-verify answer is an OperationOutcome of severity error, issue transient, saying what and since when")
    func operationOutcome() {
        let error = APIError.unableToVerify(affected: ["inventory"], since: Self.now, reason: "database unreachable")
        let issue = Self.object((Self.object(FHIROperationOutcome.resource(for: error))["issue"]).flatMap { if case .array(let a) = $0 { a.first } else { nil } } ?? .null)
        #expect(issue["severity"] == "error" && issue["code"] == "transient")
        guard case .string(let text) = issue["diagnostics"] ?? .null else { Issue.record("no diagnostics"); return }
        #expect(text.contains("unable to verify — manual review required") && text.contains("inventory") && text.contains("database unreachable"))
        let invalid = Self.object((Self.object(FHIROperationOutcome.resource(for: .invalid("SupplyRequest.quantity.value", "bad")))["issue"])
            .flatMap { if case .array(let a) = $0 { a.first } else { nil } } ?? .null)
        #expect(invalid["expression"] == .strings(["SupplyRequest.quantity.value"]) && invalid["code"] == "invalid")
    }
}
