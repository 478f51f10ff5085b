import BloodMatchCore
import BloodMatchIngest
import BloodMatchStore
import Foundation

/// What a hospital reports on a dispensed unit through an update of its
/// BiologicallyDerivedProductDispense: the receipt, or the unit's final fate.
public struct FHIRDispenseReport: Sendable, Hashable {
    /// `received`, or a final fate.
    public var event: UnitFateEvent
    /// Why (returns and discards).
    public var reason: UnitFateReason?
}

/// BiologicallyDerivedProductDispense: one unit held against a hospital's order and what became of
/// it (Data/FHIR.md, "BiologicallyDerivedProductDispense").
public enum FHIRDispense {
    /// The resource id: `RESERVATION-DIN-PRODUCTCODE` (59 characters).
    public static func id(_ d: OrderDispense) -> String {
        d.reservationID.uuidString.lowercased() + "-" + FHIRProduct.id(d.unit)
    }

    /// The hold and unit a resource id names.
    public static func parse(id: String) -> (UUID, UnitKey)? {
        guard id.utf8.count == 59, let reservation = UUID(uuidString: String(id.prefix(36))), id.dropFirst(36).first == "-",
              let unit = FHIRProduct.key(id: String(id.dropFirst(37))) else { return nil }
        return (reservation, unit)
    }

    /// The dispense status (R5 biologicallyderivedproductdispense-status; Data/SOURCES.md §S31):
    /// a unit held and not yet issued is `allocated`; issued (received, transfused or discarded
    /// after) `issued`; sent back `returned`; a hold that ended without an issue `unfulfilled`.
    public static func status(_ d: OrderDispense, now: Date) -> String {
        if d.fate == .returned { return "returned" }
        switch d.state {
        case "active": return d.heldUntil > now ? "allocated" : "unfulfilled"
        case "issued": return "issued"
        case "returned": return "returned"
        default: return "unfulfilled"
        }
    }

    /// The version of a dispense: it changes with the status, the issue, the receipt and the fate.
    public static func versionID(_ d: OrderDispense, now: Date) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a over the changing fields
        let text = [status(d, now: now), d.state, "\(d.stateChangedAt.timeIntervalSince1970)", "\(d.issuedAt?.timeIntervalSince1970 ?? 0)",
                    "\(d.receivedAt?.timeIntervalSince1970 ?? 0)", d.fate?.rawValue ?? "", "\(d.fateAt?.timeIntervalSince1970 ?? 0)"].joined(separator: "|")
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return String(hash, radix: 16)
    }

    /// The resource.
    public static func resource(_ d: OrderDispense, now: Date) -> JSONValue {
        var extensions: [JSONValue] = []
        if let request = FHIRSupplyRequest.id(orderID: d.orderID) {
            extensions.append(["url": .string(FHIRSystem.extensionURL("supply-request")), "valueReference": ["reference": .string("SupplyRequest/" + request)]])
        }
        extensions.append(["url": .string(FHIRSystem.extensionURL("order")), "valueIdentifier": .identifier(FHIRSystem.order, d.orderID)])
        if d.state == "active" { extensions.append(["url": .string(FHIRSystem.extensionURL("held-until")), "valueDateTime": .string(iso(d.heldUntil))]) }
        if let received = d.receivedAt { extensions.append(["url": .string(FHIRSystem.extensionURL("received")), "valueDateTime": .string(iso(received))]) }
        if let fate = d.fate, let at = d.fateAt {
            var parts: [JSONValue] = [["url": "event", "valueCode": .string(fate.rawValue)], ["url": "recorded", "valueDateTime": .string(iso(at))]]
            if let reason = d.fateReason { parts.append(["url": "reason", "valueCode": .string(reason.rawValue)]) }
            extensions.append(["url": .string(FHIRSystem.extensionURL("unit-fate")), "extension": .array(parts)])
        }
        var resource: [String: JSONValue] = [
            "resourceType": "BiologicallyDerivedProductDispense",
            "id": .string(id(d)),
            "identifier": [.identifier(FHIRSystem.base + "/sid/dispense", d.reservationID.uuidString.lowercased() + "/" + d.unit.description)],
            "status": .string(status(d, now: now)),
            "product": ["reference": .string("BiologicallyDerivedProduct/" + FHIRProduct.id(d.unit)),
                        "display": .string("\(FHIRProduct.componentName(d.component)) \(d.group) \(d.unit)")],
            // The blood service is not told who the recipient is: the element is required, its value absent.
            "patient": ["extension": [["url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "not-applicable"]]],
            "destination": ["identifier": .identifier(FHIRSystem.site, d.hospital)],
            "location": ["identifier": .identifier(FHIRSystem.site, d.centreID)],
            "preparedDate": .string(iso(d.heldAt)),
            "extension": .array(extensions),
        ]
        if let issued = d.issuedAt { resource["whenHandedOver"] = .string(iso(issued)) }
        resource["meta"] = ["versionId": .string(versionID(d, now: now))]
        return .object(resource)
    }

    /// Reads an update: the same resource as read, with the `received` extension added (the
    /// receipt) or the `unit-fate` extension added (transfused, returned or discarded, with a
    /// reason from the fixed list). Elements the server sets are not taken from the body; a body for
    /// another resource, or one reporting both or neither, is refused.
    public static func report(_ body: JSONValue, id: String, current: OrderDispense, now: Date) throws(APIError) -> FHIRDispenseReport? {
        guard case .object(let fields) = body else { throw APIError.invalid("BiologicallyDerivedProductDispense", "the body must be a JSON object") }
        guard fields["resourceType"] == .string("BiologicallyDerivedProductDispense") else {
            throw APIError.invalid("resourceType", "must be \"BiologicallyDerivedProductDispense\"")
        }
        guard fields["id"] == .string(id) else { throw APIError.invalid("BiologicallyDerivedProductDispense.id", "must be \(id), the id in the URL") }
        if fields["modifierExtension"] != nil {
            throw APIError(.badRequest, code: "unknown_element", message: "modifierExtension is not understood here; nothing was recorded",
                           field: "BiologicallyDerivedProductDispense.modifierExtension")
        }
        var received = false
        var fate: FHIRDispenseReport?
        if case .array(let list) = fields["extension"] ?? .array([]) {
            for (i, entry) in list.enumerated() {
                guard case .object(let e) = entry, case .string(let url) = e["url"] ?? .null else {
                    throw APIError.invalid("BiologicallyDerivedProductDispense.extension[\(i)]", "must have a url")
                }
                let path = "BiologicallyDerivedProductDispense.extension[\(i)]"
                switch url {
                case FHIRSystem.extensionURL("received"):
                    guard case .string(let text) = e["valueDateTime"] ?? .null, let s = try? ISO8601Timestamp.secondsSince1970(text),
                          s <= now.timeIntervalSince1970 + 300 else {
                        throw APIError.invalid(path + ".valueDateTime", "must be the instant of receipt with a zone, not in the future")
                    }
                    received = true
                case FHIRSystem.extensionURL("unit-fate"):
                    guard case .array(let parts) = e["extension"] ?? .null else { throw APIError.invalid(path, "must hold event and reason sub-extensions") }
                    var event: UnitFateEvent?
                    var reason: UnitFateReason?
                    for part in parts {
                        guard case .object(let p) = part, case .string(let name) = p["url"] ?? .null else { continue }
                        switch (name, p["valueCode"] ?? .null) {
                        case ("event", .string(let code)):
                            guard let e = UnitFateEvent(rawValue: code), e.isFinal else {
                                throw APIError.invalid(path + ".event", "must be transfused, returned or discarded")
                            }
                            event = e
                        case ("reason", .string(let code)):
                            guard let r = UnitFateReason(rawValue: code) else {
                                throw APIError.invalid(path + ".reason", "must be one of " + UnitFateReason.allCases.map(\.rawValue).joined(separator: ", "))
                            }
                            reason = r
                        case ("recorded", _): continue   // the server's own, as read
                        default: throw APIError.invalid(path, "sub-extension '\(name.prefix(20))' is not event, reason or recorded")
                        }
                    }
                    guard let event else { throw APIError.invalid(path + ".event", "is required: transfused, returned or discarded") }
                    fate = FHIRDispenseReport(event: event, reason: reason)
                default:
                    continue   // the server's own extensions, as read, and others: not reports
                }
            }
        }
        if case .string(let status) = fields["status"] ?? .null, status == "returned", fate?.event != .returned, current.fate != .returned {
            throw APIError.invalid("BiologicallyDerivedProductDispense.status", "a return is reported with the unit-fate extension (event returned, with its reason)")
        }
        let newReceipt = received && current.receivedAt == nil
        let newFate = fate != nil && current.fate == nil
        if newReceipt && newFate {
            throw APIError.invalid("BiologicallyDerivedProductDispense.extension", "report the receipt first, then the fate, one update each")
        }
        if newFate { return fate }
        if newReceipt { return FHIRDispenseReport(event: .received, reason: nil) }
        if let fate, let recorded = current.fate, fate.event != recorded {
            throw APIError(.conflict, code: "out_of_order", message: "\(current.unit) already has its fate: \(recorded.rawValue)",
                           field: "BiologicallyDerivedProductDispense.extension")
        }
        return nil
    }
}
