import BloodMatchIngest
import BloodMatchCore
import BloodMatchStore
import Crypto
import Foundation
import Hummingbird

/// SupplyRequest and BiologicallyDerivedProductDispense: a hospital orders, follows and receipts
/// units through FHIR alone.
extension APIHandlers {
    // MARK: POST /fhir/SupplyRequest

    func fhirCreateSupplyRequest(_ request: Request, context: APIRequestContext, caller: AuthenticatedCaller) async throws -> Response {
        try Self.requireFHIRContentType(request)
        let key = try Self.idempotencyKey(request)
        let conditional = try Self.ifNoneExist(request)
        let body = try await jsonBody(request)
        let now = services.now()
        var input = try FHIRSupplyRequest.parse(body, hospital: caller.hospital, now: now)
        if let conditional {
            if let given = input.clientIdentifier, given != conditional {
                throw APIError.invalid("If-None-Exist", "names identifier \(conditional.prefix(80)) but the resource's identifier is \(given.prefix(80))")
            }
            input.clientIdentifier = conditional
            input.order.clientIdentifier = conditional
        }
        // The order id: derived from the hospital's identifier or Idempotency-Key, so a retry finds
        // the order it placed; otherwise new.
        let seed = input.clientIdentifier.map { "identifier:" + $0 } ?? key.map { "key:" + $0 }
        let orderID = seed.map { "fhir-" + Self.hex(SHA256.hash(data: Data((caller.hospital + "\n" + $0).utf8))).prefix(32) }
            ?? "fhir-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        input.order.orderID = orderID
        let store = PostgresOrderStore(database: services.database)
        let actor = "api:\(caller.hospital):key:\(caller.keyID)"
        var existing: OrderRecord?
        do {
            existing = try await answerWithin(.seconds(3)) { try await store.find(orderID: orderID) }
            if existing == nil {
                do {
                    try await answerWithin(services.configuration.requestDeadline) { [input] in try await store.add([input.order], actor: actor) }
                } catch OrderStoreError.duplicateOrder {
                    // A concurrent retry placed it first.
                    existing = try await answerWithin(.seconds(3)) { try await store.find(orderID: orderID) }
                } catch OrderStoreError.unknownHospital {
                    throw APIError(.forbidden, code: "forbidden", message: "\(caller.hospital) is not a known hospital site; nothing was stored",
                                   field: "SupplyRequest.deliverTo")
                }
            }
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.unableToVerify(affected: ["orders"], since: Date(),
                                          reason: "\(DataGuard.describe(error)); a retry with the same identifier or Idempotency-Key finds the order if it was placed")
        }
        if let existing {
            guard existing.hospitalID == caller.hospital, Self.sameOrder(existing, input.order) else {
                throw APIError(.conflict, code: "idempotency_key_reused",
                               message: "this identifier or Idempotency-Key was used for a different SupplyRequest (order \(existing.orderID))",
                               field: conditional != nil ? "If-None-Exist" : key != nil ? "Idempotency-Key" : "SupplyRequest.identifier")
            }
        }
        var order = existing ?? input.order
        if order.immediate, order.status == "pending" {
            try await matchNow(order, context: context, caller: caller, now: now)
            order = try await readOrder(orderID)
        } else if existing == nil {
            order = try await readOrder(orderID)
        }
        let held = try await heldCounts(caller.hospital, orderID: orderID)[orderID] ?? 0
        var response = fhirJSON(FHIRSupplyRequest.resource(order, allocated: held), status: existing == nil ? .created : .ok)
        if let id = FHIRSupplyRequest.id(orderID: orderID) { response.headers[.location] = "\(fhirBase(request))/SupplyRequest/\(id)" }
        response.headers[APIMiddleware.outcomeHeader] = order.status
        if existing != nil { response.headers[.init("Idempotent-Replayed")!] = "true" }
        return response
    }

    /// `If-None-Exist: identifier=system|value`, the only criterion this server takes.
    static func ifNoneExist(_ request: Request) throws(APIError) -> String? {
        guard let header = request.headers[.init("If-None-Exist")!] else { return nil }
        let text = header.removingPercentEncoding ?? header
        guard text.hasPrefix("identifier="), let bar = text.firstIndex(of: "|"), text.utf8.count <= 600,
              bar > text.index(text.startIndex, offsetBy: 11), text.index(after: bar) < text.endIndex else {
            throw APIError.invalid("If-None-Exist", "must be identifier=system|value")
        }
        return String(text.dropFirst(11))
    }

    /// Whether a replayed order asks the same as the retry.
    static func sameOrder(_ a: OrderRecord, _ b: OrderRecord) -> Bool {
        a.component == b.component && a.group == b.group && a.quantity == b.quantity && a.requirements.sorted() == b.requirements.sorted()
            && a.urgency == b.urgency && a.immediate == b.immediate && a.maximumUnitAgeDays == b.maximumUnitAgeDays
            && a.context == b.context && a.neededBy.map { Int($0.timeIntervalSince1970) } == b.neededBy.map { Int($0.timeIntervalSince1970) }
    }

    static func hex(_ digest: SHA256.Digest) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    /// An asap or stat order: matched now by the engine (request id `order:ID`, `order:ID#2` for the
    /// one retry after a race for its units), the chosen units held, the order settled. When the
    /// data cannot be verified the order stays pending (the batch never takes it) and the answer is
    /// 503; a retry of the same request matches again.
    func matchNow(_ order: OrderRecord, context: APIRequestContext, caller: AuthenticatedCaller, now: Date) async throws {
        let destination = try await hospitalLocation(caller.hospital)
        let actor = "api:\(caller.hospital):key:\(caller.keyID)"
        for attempt in 1...2 {
            let requestID = "order:\(order.orderID)" + (attempt == 1 ? "" : "#\(attempt)")
            let match = MatchRequest(requestID: requestID, hospitalID: caller.hospital, destination: destination, component: order.component,
                                     recipient: Recipient(group: order.group, context: order.context), quantity: order.quantity,
                                     requirements: order.requirements, maximumUnitAgeDays: order.maximumUnitAgeDays, urgency: order.urgency,
                                     neededBy: order.neededBy)
            let answer: EngineAnswer
            do {
                answer = try await answerWithin(services.configuration.requestDeadline) { [engine = services.engine] in
                    try await engine.decide(match, requestedBy: actor, traceID: context.traceID, requestID: context.requestID,
                                            clientAddress: context.clientAddress, now: now)
                }
            } catch let error as MatchRequestError {
                throw APIError.invalid("SupplyRequest", "\(error.field): \(error.reason)")
            } catch {
                throw APIError.unableToVerify(affected: ["inventory", "orders"], since: Date(),
                                              reason: "\(DataGuard.describe(error)); order \(order.orderID) stays pending; a retry of this request matches it again")
            }
            let decision = answer.decision
            if decision.outcome == .unableToVerify {
                throw APIError.unableToVerify(affected: ["inventory", "orders"], since: decision.evaluatedAt,
                                              reason: (decision.unableToVerifyReason ?? "the data could not be verified")
                                                + "; order \(order.orderID) stays pending; a retry of this request matches it again")
            }
            let chosen = decision.chosen.map(\.key)
            let store = PostgresOrderStore(database: services.database)
            if chosen.isEmpty {
                _ = try await settle { try await store.settleImmediate(orderID: order.orderID, status: "unfillable", reason: decision.summary,
                                                                       decisionID: decision.decisionID, actor: actor) }
                return
            }
            let hold = ReservationRequest(
                idempotencyKey: requestID, source: .decision, decisionID: decision.decisionID, hospital: caller.hospital, reservedBy: actor,
                units: chosen, holdSeconds: 240 * 60, requestID: context.requestID ?? requestID, traceID: context.traceID,
                clientAddress: context.clientAddress)
            let outcome: ReservationOutcome
            do {
                outcome = try await answerWithin(services.configuration.requestDeadline) { [database = services.database] in
                    try await PostgresReservationStore(database: database).reserve(hold)
                }
            } catch {
                throw APIError.unableToVerify(affected: ["reservations", "orders"], since: Date(),
                                              reason: "\(DataGuard.describe(error)); order \(order.orderID) stays pending; a retry of this request holds its units")
            }
            await services.engine.heldUnitsChanged()
            services.heldUnits.changed()
            switch outcome {
            case .reserved(let reservation, _):
                let full = chosen.count >= order.quantity
                let settled = try await settle { try await store.settleImmediate(orderID: order.orderID, status: full ? "allocated" : "partially_allocated",
                                                                                 reason: decision.summary, decisionID: decision.decisionID, actor: actor) }
                // Not settled: a concurrent retry settled it (the same hold: keep it), or the order
                // was cancelled while it was matched: then its hold is released, not left to expire.
                if !settled, try await readOrder(order.orderID).status == "cancelled" {
                    do {
                        _ = try await answerWithin(services.configuration.requestDeadline) { [database = services.database] in
                            try await PostgresReservationStore(database: database).release(
                                reservation.reservationID, by: actor, reason: "order \(order.orderID) was cancelled while it was matched",
                                requestID: context.requestID)
                        }
                    } catch {
                        throw APIError.unableToVerify(affected: ["reservations", "orders"], since: Date(),
                                                      reason: "\(DataGuard.describe(error)); order \(order.orderID) was cancelled but its hold could not be released: release reservation \(reservation.reservationID.uuidString.lowercased())")
                    }
                    await services.engine.heldUnitsChanged()
                    services.heldUnits.changed()
                }
                return
            case .conflict(let conflicts) where attempt == 2:
                _ = try await settle { try await store.settleImmediate(orderID: order.orderID, status: "unfillable",
                                                                       reason: "units taken by other holds while matching: " + conflicts.map(\.description).joined(separator: "; "),
                                                                       decisionID: decision.decisionID, actor: actor) }
                return
            case .conflict:
                continue   // another hold took a unit between the match and the hold: match once more
            }
        }
    }

    private func settle(_ body: @escaping @Sendable () async throws -> Bool) async throws -> Bool {
        do {
            return try await answerWithin(services.configuration.requestDeadline) { try await body() }
        } catch {
            throw APIError.unableToVerify(affected: ["orders"], since: Date(),
                                          reason: "\(DataGuard.describe(error)); the units are held; a retry of this request records the order's outcome")
        }
    }

    private func readOrder(_ orderID: String) async throws -> OrderRecord {
        let found: OrderRecord?
        do {
            found = try await answerWithin(.seconds(3)) { [database = services.lookupDatabase] in try await PostgresOrderStore(database: database).find(orderID: orderID) }
        } catch {
            throw APIError.unableToVerify(affected: ["orders"], since: Date(), reason: "orders could not be read: \(DataGuard.describe(error))")
        }
        guard let found else { throw APIError(.notFound, code: "not_found", message: "no SupplyRequest \(orderID)", field: "id") }
        return found
    }

    /// Units held (or issued) against each of a hospital's orders.
    private func heldCounts(_ hospital: String, orderID: String? = nil) async throws -> [String: Int] {
        let dispenses = try await readDispenses(hospital, orderID: orderID)
        var out: [String: Int] = [:]
        for d in dispenses where ["active", "issued", "returned"].contains(d.state) { out[d.orderID, default: 0] += 1 }
        return out
    }

    private func readDispenses(_ hospital: String, orderID: String?) async throws -> [OrderDispense] {
        do {
            return try await answerWithin(.seconds(3)) { [database = services.lookupDatabase] in
                try await PostgresOrderDispenses(database: database).dispenses(hospital: hospital, orderID: orderID)
            }
        } catch {
            throw APIError.unableToVerify(affected: ["orders", "reservations"], since: Date(), reason: "dispenses could not be read: \(DataGuard.describe(error))")
        }
    }

    // MARK: GET /fhir/SupplyRequest and /fhir/SupplyRequest/{id}

    func fhirSearchSupplyRequests(_ request: Request, caller: AuthenticatedCaller) async throws -> Response {
        let query = fhirQuery(request)
        try Self.onlyParameters(query, ["identifier", "status", "_count"], resource: "SupplyRequest")
        let count = try Self.listCount(query)
        let statuses = query.filter { $0.name == "status" }.map { Set($0.value.split(separator: ",").map(String.init)) }
        for set in statuses where !set.isSubset(of: ["active", "completed", "cancelled"]) {
            throw APIError.invalid("status", "must be active, completed or cancelled")
        }
        let identifiers = query.filter { $0.name == "identifier" }.map(\.value)
        var orders: [OrderRecord]
        do {
            orders = try await answerWithin(.seconds(3)) { [database = services.lookupDatabase] in
                try await PostgresOrderStore(database: database).list(hospital: caller.hospital, limit: 1000)
            }
        } catch {
            throw APIError.unableToVerify(affected: ["orders"], since: Date(), reason: "orders could not be read: \(DataGuard.describe(error))")
        }
        orders = orders.filter { order in
            FHIRSupplyRequest.id(orderID: order.orderID) != nil
                && statuses.allSatisfy { $0.contains(FHIRSupplyRequest.status(order)) }
                && identifiers.allSatisfy { wanted in
                    wanted.split(separator: ",").contains { token in
                        let t = String(token)
                        return t == order.orderID || t == FHIRSystem.order + "|" + order.orderID || t == order.clientIdentifier
                    }
                }
        }
        let held = try await heldCounts(caller.hospital)
        let total = orders.count
        let resources = orders.prefix(count).map { (id: $0.orderID, resource: FHIRSupplyRequest.resource($0, allocated: held[$0.orderID] ?? 0)) }
        return fhirJSON(fhirBundle(request, type: "SupplyRequest", total: total, resources: Array(resources),
                                   query: query.map { ($0.name, $0.value) }, next: nil))
    }

    func fhirReadSupplyRequest(_ request: Request, context: APIRequestContext, caller: AuthenticatedCaller) async throws -> Response {
        let order = try await ownOrder(context, caller: caller)
        let held = try await heldCounts(caller.hospital, orderID: order.orderID)[order.orderID] ?? 0
        var response = Self.versioned(request, FHIRSupplyRequest.resource(order, allocated: held), version: FHIRSupplyRequest.versionID(order))
        response.headers[APIMiddleware.outcomeHeader] = order.status
        return response
    }

    /// A read with its version as a weak ETag; 304 when `If-None-Match` already names it (FHIR R5
    /// http.html, "conditional read").
    static func versioned(_ request: Request, _ resource: JSONValue, version: String?) -> Response {
        guard let version else { return fhirJSON(resource) }
        let tag = "W/\"\(version)\""
        if let given = request.headers[.ifNoneMatch], given == tag || given == version || given == "\"\(version)\"" {
            return Response(status: .notModified, headers: [.eTag: tag, .cacheControl: "no-store"])
        }
        var response = fhirJSON(resource)
        response.headers[.eTag] = tag
        return response
    }

    private func ownOrder(_ context: APIRequestContext, caller: AuthenticatedCaller) async throws -> OrderRecord {
        let id = try context.parameters.require("id")
        guard FHIRSupplyRequest.id(orderID: id) != nil else { throw APIError.invalid("id", "must be 1…64 characters of A-Z a-z 0-9 - .") }
        let order = try await readOrder(id)
        guard order.hospitalID == caller.hospital else {
            throw APIError(.forbidden, code: "forbidden", message: "SupplyRequest \(id) belongs to another hospital", field: "id")
        }
        return order
    }

    // MARK: DELETE /fhir/SupplyRequest/{id}

    func fhirCancelSupplyRequest(_ context: APIRequestContext, caller: AuthenticatedCaller) async throws -> Response {
        // Pending: cancelled. Decided: cancelled with its held units released, unless one is issued.
        let order = try await ownOrder(context, caller: caller)
        switch order.status {
        case "cancelled":
            return fhirJSON(FHIROperationOutcome.information("SupplyRequest \(order.orderID) was already cancelled"))
        case "pending":
            let cancelled: Bool
            do {
                cancelled = try await answerWithin(services.configuration.requestDeadline) { [database = services.database] in
                    try await PostgresOrderStore(database: database).cancel(orderID: order.orderID, actor: "api:\(caller.hospital):key:\(caller.keyID)",
                                                                            reason: "cancelled by \(caller.hospital) through FHIR")
                }
            } catch {
                throw APIError.unableToVerify(affected: ["orders"], since: Date(), reason: "\(DataGuard.describe(error)); a retry cancels the order if it is still pending")
            }
            if cancelled { return fhirJSON(FHIROperationOutcome.information("SupplyRequest \(order.orderID) cancelled")) }
            let now = try await readOrder(order.orderID)
            throw APIError(.conflict, code: "already_decided", message: "SupplyRequest \(order.orderID) was decided meanwhile (\(now.status)); nothing was cancelled", field: "id")
        default:
            // Decided: its units still held are released with it (only its own units of a shared
            // batch shipment); refused when any has been issued.
            let outcome: DecidedOrderCancellation
            do {
                outcome = try await answerWithin(services.configuration.requestDeadline) { [database = services.database] in
                    try await PostgresOrderStore(database: database).cancelDecided(
                        orderID: order.orderID, hospital: caller.hospital, actor: "api:\(caller.hospital):key:\(caller.keyID)",
                        reason: "cancelled by \(caller.hospital) through FHIR", requestID: context.requestID)
                }
            } catch {
                throw APIError.unableToVerify(affected: ["orders", "reservations"], since: Date(),
                                              reason: "\(DataGuard.describe(error)); a retry cancels the order if it is not cancelled yet")
            }
            switch outcome {
            case .cancelled(let released):
                await services.engine.heldUnitsChanged()
                services.heldUnits.changed()
                return fhirJSON(FHIROperationOutcome.information(
                    "SupplyRequest \(order.orderID) cancelled; \(released.count) held unit(s) released" +
                    (released.isEmpty ? "" : ": " + released.map(\.description).joined(separator: ", "))))
            case .unitsIssued(let units):
                throw APIError(.conflict, code: "units_issued",
                               message: "SupplyRequest \(order.orderID) cannot be cancelled: \(units.map(\.description).joined(separator: ", ")) issued already; record their return through their dispenses. Nothing was cancelled",
                               field: "id")
            case .alreadyCancelled:
                return fhirJSON(FHIROperationOutcome.information("SupplyRequest \(order.orderID) was already cancelled"))
            case .pending, .notFound:
                throw APIError(.conflict, code: "changed", message: "SupplyRequest \(order.orderID) changed meanwhile; retry", field: "id")
            }
        }
    }

    // MARK: BiologicallyDerivedProductDispense

    func fhirSearchDispenses(_ request: Request, caller: AuthenticatedCaller) async throws -> Response {
        let query = fhirQuery(request)
        try Self.onlyParameters(query, ["supply-request", "status", "_count"], resource: "BiologicallyDerivedProductDispense")
        let count = try Self.listCount(query)
        var orderID: String?
        if let reference = query.last(where: { $0.name == "supply-request" })?.value {
            let id = reference.hasPrefix("SupplyRequest/") ? String(reference.dropFirst("SupplyRequest/".count)) : reference
            guard FHIRSupplyRequest.id(orderID: id) != nil else { throw APIError.invalid("supply-request", "must be SupplyRequest/ID") }
            orderID = id
        }
        let statuses = query.filter { $0.name == "status" }.map { Set($0.value.split(separator: ",").map(String.init)) }
        for set in statuses where !set.isSubset(of: ["allocated", "issued", "returned", "unfulfilled"]) {
            throw APIError.invalid("status", "must be allocated, issued, returned or unfulfilled")
        }
        let now = services.now()
        let dispenses = try await readDispenses(caller.hospital, orderID: orderID)
            .filter { d in statuses.allSatisfy { $0.contains(FHIRDispense.status(d, now: now)) } }
        return fhirJSON(fhirBundle(request, type: "BiologicallyDerivedProductDispense", total: dispenses.count,
                                   resources: dispenses.prefix(count).map { (id: FHIRDispense.id($0), resource: FHIRDispense.resource($0, now: now)) },
                                   query: query.map { ($0.name, $0.value) }, next: nil))
    }

    private func ownDispense(_ context: APIRequestContext, caller: AuthenticatedCaller) async throws -> (String, OrderDispense) {
        let id = try context.parameters.require("id")
        guard let (reservation, unit) = FHIRDispense.parse(id: id) else {
            throw APIError.invalid("id", "must be RESERVATION-DIN-PRODUCTCODE as listed by the dispense search")
        }
        let found: OrderDispense?
        do {
            found = try await answerWithin(.seconds(3)) { [database = services.lookupDatabase] in
                try await PostgresOrderDispenses(database: database).dispense(hospital: caller.hospital, reservationID: reservation, unit: unit)
            }
        } catch {
            throw APIError.unableToVerify(affected: ["orders", "reservations"], since: Date(), reason: "the dispense could not be read: \(DataGuard.describe(error))")
        }
        guard let found else {
            throw APIError(.notFound, code: "not_found", message: "no dispense \(id) against an order of \(caller.hospital)", field: "id")
        }
        return (id, found)
    }

    func fhirReadDispense(_ request: Request, context: APIRequestContext, caller: AuthenticatedCaller) async throws -> Response {
        let (_, dispense) = try await ownDispense(context, caller: caller)
        let now = services.now()
        return Self.versioned(request, FHIRDispense.resource(dispense, now: now), version: FHIRDispense.versionID(dispense, now: now))
    }

    // MARK: PUT /fhir/BiologicallyDerivedProductDispense/{id}

    func fhirUpdateDispense(_ request: Request, context: APIRequestContext, caller: AuthenticatedCaller) async throws -> Response {
        try Self.requireFHIRContentType(request)
        let body = try await jsonBody(request)
        let (id, current) = try await ownDispense(context, caller: caller)
        let now = services.now()
        guard let report = try FHIRDispense.report(body, id: id, current: current, now: now) else {
            return fhirJSON(FHIRDispense.resource(current, now: now))   // nothing new: the update changes nothing
        }
        guard current.state == "issued" || current.state == "returned" else {
            throw APIError(.conflict, code: "not_issued", message: "\(current.unit) has not been issued to \(caller.hospital) (\(FHIRDispense.status(current, now: now)))",
                           field: "BiologicallyDerivedProductDispense.status")
        }
        let store = PostgresUnitLifecycleStore(database: services.database)
        do {
            _ = try await answerWithin(services.configuration.requestDeadline) {
                try await store.record(report.event, unit: current.unit, reason: report.reason, note: nil, hospital: caller.hospital,
                                       by: "api:\(caller.hospital):key:\(caller.keyID)", idempotencyKey: "fhir:\(caller.hospital):\(id):\(report.event.isFinal ? "fate" : "receipt")",
                                       requestID: context.requestID ?? id, traceID: context.traceID, clientAddress: context.clientAddress)
            }
        } catch let error as UnitLifecycleError {
            let field = "BiologicallyDerivedProductDispense.extension"
            switch error.kind {
            case .badReason: throw APIError.invalid(field, error.detail)
            case .otherHospital: throw APIError(.forbidden, code: "forbidden", message: "\(current.unit) \(error.detail)", field: field)
            case .notIssued: throw APIError(.conflict, code: "not_issued", message: "\(current.unit) \(error.detail)", field: field)
            case .outOfOrder: throw APIError(.conflict, code: "out_of_order", message: "\(current.unit) \(error.detail)", field: field)
            }
        } catch let error as IdempotencyKeyReuseError {
            throw APIError(.conflict, code: "out_of_order", message: "\(current.unit) already has a different report (\(error.usedFor))", field: "BiologicallyDerivedProductDispense.extension")
        } catch {
            throw APIError.unableToVerify(affected: ["units"], since: Date(), reason: "\(DataGuard.describe(error)); a retry of this update records it if it was not")
        }
        if report.event == .returned {
            await services.engine.heldUnitsChanged()
            services.heldUnits.changed()
        }
        let (_, updated) = try await ownDispense(context, caller: caller)
        var response = fhirJSON(FHIRDispense.resource(updated, now: now))
        response.headers[APIMiddleware.outcomeHeader] = report.event.rawValue
        return response
    }
}
