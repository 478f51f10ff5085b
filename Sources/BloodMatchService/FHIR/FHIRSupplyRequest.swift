import BloodMatchCore
import BloodMatchIngest
import BloodMatchStore
import Foundation

/// An order read from a hospital's SupplyRequest.
public struct FHIROrderInput: Sendable, Hashable {
    /// The order (its id is set by the caller).
    public var order: OrderRecord
    /// The FHIR priority as given.
    public var priority: String
    /// The hospital's identifier of the request (`system|value`), when given.
    public var clientIdentifier: String?
}

/// SupplyRequest: a hospital's order (Data/FHIR.md, "SupplyRequest").
///
/// Priority decides the route (Data/FHIR.md, "Which route an order takes, and why"): `routine` and
/// `urgent` go to the batch, which allocates stock across every hospital's orders at each run (every
/// 30 minutes, Jobs/crontab); `asap` and `stat` cannot wait for a run and are matched at once by the
/// same engine as `POST /v1/matches`, their units held through that decision.
public enum FHIRSupplyRequest {
    /// Elements read on create; any other is refused (unknown data is never silently dropped).
    static let elements: Set<String> = ["resourceType", "meta", "text", "extension", "identifier", "status", "priority", "item", "quantity",
                                        "parameter", "occurrenceDateTime", "authoredOn", "requester", "deliverTo"]
    /// Priorities and the urgency each maps to.
    public static let urgencies: [String: Urgency] = ["routine": .routine, "urgent": .urgent, "asap": .urgent, "stat": .emergency]
    /// Priorities matched at once.
    public static let immediatePriorities: Set<String> = ["asap", "stat"]
    /// A batch-routed order needed sooner than this is refused: two batch runs 30 minutes apart
    /// (Jobs/crontab) could not both plan it and deliver it.
    public static let batchHorizon: TimeInterval = 60 * 60
    /// An immediate order needed later than this contradicts its priority.
    public static let immediateHorizon: TimeInterval = 24 * 3600
    /// SNOMED CT patient blood groups (HL7 IPS value set; Data/SOURCES.md §S31).
    public static let snomedGroups: [String: BloodGroup] = [
        "278147001": BloodGroup(.O, .positive), "278148006": BloodGroup(.O, .negative),
        "278149003": BloodGroup(.A, .positive), "278152006": BloodGroup(.A, .negative),
        "278150003": BloodGroup(.B, .positive), "278153001": BloodGroup(.B, .negative),
        "278151004": BloodGroup(.AB, .positive), "278154007": BloodGroup(.AB, .negative),
    ]
    static let snomed = "http://snomed.info/sct"

    // MARK: reading

    /// Reads a SupplyRequest for `hospital`, at `now`.
    public static func parse(_ body: JSONValue, hospital: String, now: Date) throws(APIError) -> FHIROrderInput {
        guard case .object(let fields) = body else { throw APIError.invalid("SupplyRequest", "the body must be a JSON object") }
        guard case .string(let type) = fields["resourceType"] ?? .null else {
            throw APIError.invalid("resourceType", "is required and must be \"SupplyRequest\"")
        }
        guard type == "SupplyRequest" else { throw APIError.invalid("resourceType", "is \"\(type.prefix(40))\"; this endpoint takes SupplyRequest") }
        if fields["id"] != nil { throw APIError.invalid("SupplyRequest.id", "must be absent on create: the server assigns the id") }
        if fields["deliverFor"] != nil {
            throw APIError(.badRequest, code: "unknown_element", message: "deliverFor names a patient: the blood service takes no patient data; order for the hospital (deliverTo)",
                           field: "SupplyRequest.deliverFor")
        }
        if let name = ["occurrencePeriod", "occurrenceTiming"].first(where: { fields[$0] != nil }) {
            throw APIError(.badRequest, code: "unknown_element", message: "\(name) is not read here: give the instant the units are needed by as occurrenceDateTime",
                           field: "SupplyRequest.\(name)")
        }
        if let unknown = fields.keys.filter({ !elements.contains($0) }).sorted().first {
            throw APIError(.badRequest, code: "unknown_element",
                           message: "element '\(unknown.prefix(40))' is not read by this server (Data/FHIR.md lists those it reads); nothing was stored",
                           field: "SupplyRequest.\(unknown.prefix(40))")
        }
        if let status = fields["status"] {
            guard case .string("active") = status else {
                throw APIError.invalid("SupplyRequest.status", "must be \"active\" (or absent) on create: only active requests are placed")
            }
        }
        guard case .string(let priority) = fields["priority"] ?? .null else {
            throw APIError.invalid("SupplyRequest.priority", "is required: routine, urgent, asap or stat")
        }
        guard let urgency = urgencies[priority] else {
            throw APIError.invalid("SupplyRequest.priority", "'\(priority.prefix(20))' is not routine, urgent, asap or stat")
        }
        let component = try item(fields["item"])
        let quantity = try quantity(fields["quantity"])
        var group: BloodGroup?
        var requirements: [UnitAttribute] = []
        var context = RecipientContext()
        var maximumAgeDays: Int?
        if let value = fields["parameter"] {
            guard case .array(let list) = value, list.count <= 40 else { throw APIError.invalid("SupplyRequest.parameter", "must be an array of at most 40 parameters") }
            var seen = Set<String>()
            for (i, entry) in list.enumerated() {
                let path = "SupplyRequest.parameter[\(i)]"
                let (code, value) = try parameter(entry, path: path)
                if code != "requirement", !seen.insert(code).inserted { throw APIError.invalid(path, "parameter '\(code)' is given twice") }
                switch code {
                case "recipient-group": group = try recipientGroup(value, path: path)
                case "requirement":
                    let attribute = try codeOf(value, key: "valueCodeableConcept", system: FHIRSystem.requirement, path: path)
                    guard let a = UnitAttribute(rawValue: attribute) else {
                        throw APIError.invalid(path + ".valueCodeableConcept", "'\(attribute.prefix(30))' is not a known requirement (" + UnitAttribute.allCases.map(\.rawValue).joined(separator: ", ") + ")")
                    }
                    if !requirements.contains(a) { requirements.append(a) }
                case "recipient-context":
                    guard case .object(let p) = value, case .string(let text) = p["valueString"] ?? .null, text.count <= 200 else {
                        throw APIError.invalid(path + ".valueString", "is required: context tokens separated by commas (female, male, age=N, childbearing, not-childbearing, anti-d, transfusion-dependent, neonate)")
                    }
                    do { context = try RecipientContext(parsing: text) } catch { throw APIError.invalid(path + ".valueString", error.description) }
                case "max-unit-age-days":
                    guard case .object(let p) = value, case .object(let q) = p["valueQuantity"] ?? .null,
                          case .number(let n) = q["value"] ?? .null, let days = Int(n), (0...365).contains(days) else {
                        throw APIError.invalid(path + ".valueQuantity.value", "must be a whole number of days 0…365")
                    }
                    if let unit = q["code"], unit != .string("d") { throw APIError.invalid(path + ".valueQuantity.code", "must be \"d\" (UCUM days)") }
                    maximumAgeDays = days
                default:
                    throw APIError(.badRequest, code: "unknown_element",
                                   message: "parameter '\(code.prefix(40))' is not one this server reads (recipient-group, requirement, recipient-context, max-unit-age-days)",
                                   field: path + ".code")
                }
            }
        }
        var neededBy: Date?
        if let value = fields["occurrenceDateTime"] {
            guard case .string(let text) = value, text.utf8.count > 10, let s = try? ISO8601Timestamp.secondsSince1970(text) else {
                throw APIError.invalid("SupplyRequest.occurrenceDateTime", "must be an instant with a time and zone, e.g. 2026-12-08T14:00:00Z")
            }
            neededBy = Date(timeIntervalSince1970: s)
        }
        if let neededBy {
            let ahead = neededBy.timeIntervalSince(now)
            if ahead < -60 { throw APIError.invalid("SupplyRequest.occurrenceDateTime", "is in the past (\(iso(neededBy)))") }
            if immediatePriorities.contains(priority), ahead > immediateHorizon {
                throw APIError(.unprocessableContent, code: "contradictory_priority",
                               message: "priority \(priority) asks for units now, but occurrenceDateTime is \(Int(ahead / 3600)) hours away; use routine or urgent for a planned need",
                               field: "SupplyRequest.priority")
            }
            if !immediatePriorities.contains(priority), ahead < batchHorizon {
                throw APIError(.unprocessableContent, code: "contradictory_priority",
                               message: "priority \(priority) goes to the batch, which runs every 30 minutes, but the units are needed within \(max(0, Int(ahead / 60))) minutes; use asap or stat",
                               field: "SupplyRequest.priority")
            }
        }
        for name in ["deliverTo", "requester"] {
            guard let value = fields[name] else {
                if name == "deliverTo" { throw APIError.invalid("SupplyRequest.deliverTo", "is required: Organization/\(hospital), the caller's hospital") }
                continue
            }
            let site = try site(value, path: "SupplyRequest.\(name)")
            guard site == hospital else {
                throw APIError(.forbidden, code: "forbidden", message: "\(name) names \(site.prefix(40)); this key may order only for \(hospital)",
                               field: "SupplyRequest.\(name)")
            }
        }
        var clientIdentifier: String?
        if let value = fields["identifier"] {
            guard case .array(let list) = value, list.count == 1, case .object(let id) = list[0],
                  case .string(let system) = id["system"] ?? .null, case .string(let v) = id["value"] ?? .null,
                  (1...256).contains(system.utf8.count), (1...256).contains(v.utf8.count), !system.contains("|") else {
                throw APIError.invalid("SupplyRequest.identifier", "must be one identifier with a system and a value (each 1…256 characters)")
            }
            clientIdentifier = system + "|" + v
        }
        var order = OrderRecord(orderID: "", hospitalID: hospital, component: component, group: group, context: context, quantity: quantity,
                                requirements: requirements, maximumUnitAgeDays: maximumAgeDays, urgency: urgency, neededBy: neededBy,
                                placedBy: "", source: "fhir")
        order.clientIdentifier = clientIdentifier
        order.immediate = immediatePriorities.contains(priority)
        return FHIROrderInput(order: order, priority: priority, clientIdentifier: clientIdentifier)
    }

    static func item(_ value: JSONValue?) throws(APIError) -> Component {
        let path = "SupplyRequest.item"
        guard let value else { throw APIError.invalid(path, "is required: item.concept with a component coding (RBC, PLT, PLASMA, CRYO, WB)") }
        guard case .object(let item) = value, item.keys.allSatisfy({ $0 == "concept" }), item["concept"] != nil else {
            throw APIError.invalid(path, "must be {\"concept\": …}: a reference to a particular product is not accepted; the server chooses units")
        }
        let code = try codeOf(.object(["c": item["concept"]!]), key: "c", system: FHIRSystem.component, path: path + ".concept")
        guard let component = Component(rawValue: code) else { throw APIError.invalid(path + ".concept", "'\(code.prefix(20))' is not RBC, PLT, PLASMA, CRYO or WB") }
        return component
    }

    static func quantity(_ value: JSONValue?) throws(APIError) -> Int {
        let path = "SupplyRequest.quantity"
        guard case .object(let q) = value ?? .null else { throw APIError.invalid(path, "is required: {\"value\": number of units}") }
        guard case .number(let text) = q["value"] ?? .null, let n = Int(text), (1...MatchRequest.maximumQuantity).contains(n) else {
            throw APIError.invalid(path + ".value", "must be a whole number of units 1…\(MatchRequest.maximumQuantity)")
        }
        if q["comparator"] != nil { throw APIError.invalid(path + ".comparator", "is not accepted: ask for an exact number of units") }
        return n
    }

    /// `{code: CodeableConcept, value[x]}` → the parameter's code and the whole entry.
    static func parameter(_ entry: JSONValue, path: String) throws(APIError) -> (String, JSONValue) {
        guard case .object(let p) = entry, let code = p["code"] else { throw APIError.invalid(path, "must be {\"code\": …, \"value…\": …}") }
        let allowed: Set<String> = ["code", "valueCodeableConcept", "valueString", "valueQuantity", "extension"]
        if let unknown = p.keys.filter({ !allowed.contains($0) }).sorted().first {
            throw APIError.invalid("\(path).\(unknown.prefix(40))", "is not a value this server reads (valueCodeableConcept, valueString, valueQuantity)")
        }
        return (try codeOf(.object(["c": code]), key: "c", system: FHIRSystem.orderParameter, path: path + ".code"), entry)
    }

    /// The recipient's group: SNOMED CT patient blood group, or the ISBT 128 ABO/RhD code of a group.
    static func recipientGroup(_ entry: JSONValue, path: String) throws(APIError) -> BloodGroup {
        guard case .object(let p) = entry, case .object(let concept) = p["valueCodeableConcept"] ?? .null,
              case .array(let codings) = concept["coding"] ?? .null, codings.count == 1, case .object(let coding) = codings[0],
              case .string(let system) = coding["system"] ?? .null, case .string(let code) = coding["code"] ?? .null else {
            throw APIError.invalid(path + ".valueCodeableConcept", "must hold one coding: SNOMED CT patient blood group (e.g. 278148006 O RhD negative) or an ISBT 128 ABO/RhD code")
        }
        switch system {
        case snomed:
            guard let group = snomedGroups[code] else { throw APIError.invalid(path + ".valueCodeableConcept", "SNOMED CT '\(code.prefix(20))' is not an ABO/RhD group code this server knows") }
            return group
        case FHIRSystem.aboRhD:
            guard let group = (try? ISBTBloodGroupCode(code: code))?.bloodGroup else {
                throw APIError.invalid(path + ".valueCodeableConcept", "'\(code.prefix(20))' is not an ISBT 128 ABO/RhD code of a group")
            }
            return group
        default:
            throw APIError.invalid(path + ".valueCodeableConcept", "system '\(system.prefix(80))' is neither \(snomed) nor \(FHIRSystem.aboRhD)")
        }
    }

    /// The code of the one coding of `fields[key]` (a CodeableConcept) in `system`.
    static func codeOf(_ value: JSONValue, key: String, system: String, path: String) throws(APIError) -> String {
        guard case .object(let outer) = value, case .object(let concept) = outer[key] ?? .null,
              case .array(let codings) = concept["coding"] ?? .null, !codings.isEmpty else {
            throw APIError.invalid(path, "must be a CodeableConcept with a coding of \(system)")
        }
        let mine = codings.compactMap { c -> String? in
            guard case .object(let coding) = c, coding["system"] == .string(system), case .string(let code) = coding["code"] ?? .null else { return nil }
            return code
        }
        guard mine.count == 1 else {
            throw APIError.invalid(path, mine.isEmpty ? "has no coding of \(system)" : "has \(mine.count) codings of \(system); give one")
        }
        return mine[0]
    }

    /// The site a Reference names: `Organization/ID`, or an identifier of `FHIRSystem.site`.
    static func site(_ value: JSONValue, path: String) throws(APIError) -> String {
        guard case .object(let ref) = value else { throw APIError.invalid(path, "must be a Reference") }
        if case .string(let reference) = ref["reference"] ?? .null {
            guard reference.hasPrefix("Organization/"), reference.utf8.count <= 80 else {
                throw APIError.invalid(path + ".reference", "must be Organization/<hospital id>")
            }
            return String(reference.dropFirst("Organization/".count))
        }
        if case .object(let id) = ref["identifier"] ?? .null, id["system"] == .string(FHIRSystem.site), case .string(let site) = id["value"] ?? .null {
            return site
        }
        throw APIError.invalid(path, "must be {\"reference\": \"Organization/<hospital id>\"} or an identifier of \(FHIRSystem.site)")
    }

    // MARK: ids

    /// The FHIR id of an order: its id when that is a valid FHIR id, else nil (not served here).
    public static func id(orderID: String) -> String? {
        guard (1...64).contains(orderID.utf8.count),
              orderID.utf8.allSatisfy({ (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 45 || $0 == 46 }) else { return nil }
        return orderID
    }

    // MARK: writing

    /// The SupplyRequest of an order; `allocated` is the number of units held against it.
    public static func resource(_ order: OrderRecord, allocated: Int) -> JSONValue {
        let priority = order.immediate ? (order.urgency == .emergency ? "stat" : "asap") : (order.urgency == .routine ? "routine" : "urgent")
        var parameters: [JSONValue] = []
        func parameter(_ code: String, _ value: (String, JSONValue)) -> JSONValue {
            ["code": .concept(FHIRSystem.orderParameter, code), value.0: value.1]
        }
        if let group = order.group, let snomedCode = snomedGroups.first(where: { $0.value == group })?.key {
            let text = "\(group.abo.rawValue) RhD \(group.rhd == .positive ? "positive" : "negative")"
            parameters.append(parameter("recipient-group", ("valueCodeableConcept", .concept(snomed, snomedCode, display: text, text: text))))
        }
        for requirement in order.requirements {
            parameters.append(parameter("requirement", ("valueCodeableConcept", .concept(FHIRSystem.requirement, requirement.rawValue))))
        }
        if !order.context.tokens.isEmpty { parameters.append(parameter("recipient-context", ("valueString", .string(order.context.tokens)))) }
        if let days = order.maximumUnitAgeDays {
            parameters.append(parameter("max-unit-age-days", ("valueQuantity", ["value": .int(days), "unit": "d", "system": .string(FHIRSystem.ucum), "code": "d"])))
        }
        var identifiers: [JSONValue] = [.identifier(FHIRSystem.order, order.orderID)]
        if let client = order.clientIdentifier, let bar = client.firstIndex(of: "|") {
            identifiers.append(.identifier(String(client[..<bar]), String(client[client.index(after: bar)...])))
        }
        var extensions: [JSONValue] = [
            ["url": .string(FHIRSystem.extensionURL("order-status")), "valueCode": .string(order.status)],
            ["url": .string(FHIRSystem.extensionURL("route")), "valueCode": .string(order.immediate ? "immediate-match" : "batch")],
            ["url": .string(FHIRSystem.extensionURL("units-held")), "valueInteger": .int(allocated)],
        ]
        if let reason = order.statusReason { extensions.append(["url": .string(FHIRSystem.extensionURL("order-status-reason")), "valueString": .string(reason)]) }
        var resource: [String: JSONValue] = [
            "resourceType": "SupplyRequest",
            "identifier": .array(identifiers),
            "status": .string(status(order)),
            "priority": .string(priority),
            "item": ["concept": .concept(FHIRSystem.component, order.component.rawValue, display: FHIRProduct.componentName(order.component))],
            "quantity": ["value": .int(order.quantity), "unit": "unit"],
            "deliverTo": ["reference": .string("Organization/" + order.hospitalID)],
            "extension": .array(extensions),
        ]
        if let id = id(orderID: order.orderID) { resource["id"] = .string(id) }
        if let version = versionID(order), let updated = order.updatedAt {
            resource["meta"] = ["versionId": .string(version), "lastUpdated": .string(isoUTCMilliseconds(updated))]
        }
        if !parameters.isEmpty { resource["parameter"] = .array(parameters) }
        if let neededBy = order.neededBy { resource["occurrenceDateTime"] = .string(iso(neededBy)) }
        if let placed = order.placedAt { resource["authoredOn"] = .string(iso(placed)) }
        return .object(resource)
    }

    /// The version of an order: its last change, in microseconds (placed, decided, cancelled).
    public static func versionID(_ order: OrderRecord) -> String? {
        order.updatedAt.map { String(Int64(($0.timeIntervalSince1970 * 1_000_000).rounded())) }
    }

    /// The FHIR status of an order: `active` while pending, `completed` once a run or a match
    /// allocated units to it (all or part: `units-held` says how many), `cancelled` when cancelled
    /// or when nothing could be allocated (`order-status` says which: place the order again).
    public static func status(_ order: OrderRecord) -> String {
        switch order.status {
        case "pending": "active"
        case "allocated", "partially_allocated": "completed"
        case "cancelled", "unfillable": "cancelled"
        default: "unknown"
        }
    }
}
