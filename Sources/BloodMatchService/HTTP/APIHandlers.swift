import BloodMatchIngest
import BloodMatchCore
import BloodMatchStore
import Foundation
import Hummingbird
import Tracing

/// The route handlers: thin adapters from HTTP to the engine, the index and the stores.
struct APIHandlers: Sendable {
    let services: APIServices

    func handle(_ route: APIRoute, request: Request, context: APIRequestContext) async throws -> Response {
        switch route {
        case .health: return json(["status": "ok"])
        case .ready: return try await ready()
        case .metrics:
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: services.metrics.render())))
        case .openAPI:
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(bytes: services.configuration.openAPIDocument)))
        case .availability: return try await availability(request, caller: try caller(context))
        case .createMatch: return try await createMatch(request, context: context, caller: try caller(context))
        case .getMatch: return try await getMatch(context, caller: try caller(context))
        case .createReservation: return try await createReservation(request, context: context, caller: try caller(context))
        case .getReservation: return try await reservation(context, caller: try caller(context), release: false)
        case .releaseReservation: return try await reservation(context, caller: try caller(context), release: true)
        case .recordReceipt: return try await recordFate(request, context: context, caller: try caller(context), receipt: true)
        case .recordFate: return try await recordFate(request, context: context, caller: try caller(context), receipt: false)
        case .fhirMetadata, .fhirSearchProducts, .fhirReadProduct, .fhirCreateSupplyRequest, .fhirSearchSupplyRequests, .fhirReadSupplyRequest,
             .fhirCancelSupplyRequest, .fhirSearchDispenses, .fhirReadDispense, .fhirUpdateDispense:
            return try await handleFHIR(route, request: request, context: context)
        }
    }

    func caller(_ context: APIRequestContext) throws -> AuthenticatedCaller {
        guard let caller = context.caller else { throw APIError.unauthenticated("an API key is required") }
        return caller
    }

    // MARK: /ready

    private func ready() async throws -> Response {
        do {
            try await answerWithin(.seconds(2)) { [database = services.lookupDatabase] in try await database.ping() }
        } catch {
            throw APIError.unableToVerify(affected: ["inventory", "decisions", "access records"], since: await services.dataGuard.failing ?? Date(),
                                          reason: "database unreachable")
        }
        let verified = try await services.dataGuard.verifiedIndex(now: Date())
        if let refusal = services.recorder.refusal {
            throw APIError.unableToVerify(affected: ["access records"], since: refusal.since, reason: refusal.reason)
        }
        let index = verified.index
        return json(["status": "ready", "index_version": .string(verified.version), "index_built_at": .string(isoUTC(seconds: index.builtAt)),
                     "index_verified_at": .string(iso(verified.verifiedAt)), "units_indexed": .int(index.unitCount),
                     "centres": .int(index.centres.count)])
    }

    // MARK: GET /v1/availability

    private func availability(_ request: Request, caller: AuthenticatedCaller) async throws -> Response {
        let known: Set<String> = ["component", "abo", "rhd", "require", "limit"]
        var values: [String: [String]] = [:]
        for (key, value) in request.uri.queryParameters {
            let name = String(key)
            guard known.contains(name) else {
                throw APIError(.badRequest, code: "unknown_parameter", message: "unknown query parameter '\(name.prefix(40))'", field: String(name.prefix(40)))
            }
            values[name, default: []].append(String(value))
        }
        func single(_ name: String) throws(APIError) -> String? {
            guard let list = values[name] else { return nil }
            guard list.count == 1 else { throw .invalid(name, "given more than once") }
            return list[0]
        }
        guard let componentText = try single("component") else { throw APIError.invalid("component", "is required") }
        let component = try APIInput.component(componentText, field: "component")
        guard let abo = try single("abo") else { throw APIError.invalid("abo", "is required") }
        guard let rhd = try single("rhd") else { throw APIError.invalid("rhd", "is required") }
        let group = try APIInput.group(abo: abo, rhd: rhd, field: "")
        let codes = (values["require"] ?? []).flatMap { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        guard codes.count <= APIInput.maximumRequirements else {
            throw APIError(.badRequest, code: "too_many_requirements",
                           message: "at most \(APIInput.maximumRequirements) requirements per request (got \(codes.count))", field: "require")
        }
        var requirements: [UnitAttribute] = []
        for code in codes {
            let attribute = try APIInput.requirement(code, field: "require")
            if !requirements.contains(attribute) { requirements.append(attribute) }
        }
        var limit = services.configuration.availabilityDefaultLimit
        if let text = try single("limit") {
            guard let n = Int(text), (1...services.configuration.availabilityMaximumLimit).contains(n) else {
                throw APIError.invalid("limit", "must be a whole number 1…\(services.configuration.availabilityMaximumLimit)")
            }
            limit = n
        }

        let now = Date()
        let destination = try await hospitalLocation(caller.hospital)
        let verified = try await services.dataGuard.verifiedIndex(now: now)
        let index = verified.index
        let lookup = MatchRequest(requestID: "availability", hospitalID: caller.hospital, destination: destination, component: component,
                                  recipient: Recipient(group: group), quantity: 1, requirements: requirements, urgency: .routine)
        let held: [HeldUnit]
        do {
            held = try await answerWithin(.seconds(3)) { [services] in try await services.heldUnits.current(database: services.lookupDatabase) }
        } catch {
            throw APIError.unableToVerify(affected: ["reservations"], since: Date(), reason: "held units could not be read: \(DataGuard.describe(error))")
        }
        let seconds = Int64(now.timeIntervalSince1970)
        // What a match for the same request could use (the matcher's rules at each centre's ETA, held
        // units out), counted by binary search in per-index expiry tables: about centres × groups ×
        // log(units) whatever the stock.
        let tables = services.expiryTables
        let answer = withSpan("index.lookup") { _ in
            Availability.answer(index: index, planner: services.planner, request: lookup, destination: destination, held: held, now: now) {
                tables.table(verified, component: $0, required: $1, excluded: $2)
            }
        }
        let (query, refused, notes) = (answer.query, answer.refused, answer.notes)
        // Ranked first, rendered after: only the centres listed are formatted.
        var listed: [(eta: Double, entry: CentreStock, stale: Bool)] = []
        listed.reserveCapacity(answer.centres.count)
        for entry in answer.centres {
            let stale = entry.centre.isStale(now: seconds)
            guard entry.total > 0 || stale else { continue }
            listed.append((round1(entry.etaMinutes), entry, stale))
        }
        let centres: [JSONValue] = listed.prefix(limit).map { eta, entry, stale in
            var row: [String: JSONValue] = [
                "centre_id": .string(entry.centre.siteID),
                "units_by_group": .object(Dictionary(uniqueKeysWithValues: entry.unitsByGroup.map { ($0.key.description, .int($0.value)) })),
                "total_units": .int(entry.total),
                "distance_km": .double(round1(entry.distanceKm)),
                "eta_minutes": .double(eta),
                "earliest_expiry": .nullable(entry.earliestExpiry.map { isoUTC(seconds: $0) }),
                "data_as_of": .string(isoUTC(seconds: entry.centre.asOf)),
                "data_age_minutes": .int(Int(entry.centre.dataAgeSeconds(now: seconds) / 60)),
                "stale": .bool(stale),
            ]
            if stale { row["warning"] = "stale data — confirm before dispatch" }
            return .object(row)
        }
        let body: JSONValue = [
            "hospital_id": .string(caller.hospital),
            "component": .string(component.rawValue),
            "recipient": ["abo": .string(abo), "rhd": .string(rhd)],
            "requirements": .strings(requirements.map(\.rawValue)),
            "acceptable_groups": .array(query.choices.map { ["group": .string($0.group.description), "rank": .int($0.rank), "rule": .string($0.rule)] }),
            "groups_refused": .strings(refused),
            "notes": .strings(notes),
            "centres": .array(centres),
            "centres_with_stock": .int(listed.count),
            // Never left out: a centre that has never delivered a snapshot has unknown stock, not none.
            "centres_without_data": .array(answer.centresWithoutData.map {
                ["centre_id": .string($0.centreID), "distance_km": .double(round1($0.distanceKm)), "status": "no_data",
                 "warning": .string(noDataWarning)]
            }),
            "evaluated_at": .string(iso(now)),
            "index_version": .string(verified.version),
            "index_verified_at": .string(iso(verified.verifiedAt)),
            "counts_note": "units a match for this request could use: acceptable group and requirements, not held or issued, with the component's minimum remaining life on arrival from each centre; a match re-checks every unit against the database",
        ]
        var response = json(body)
        response.headers[APIMiddleware.outcomeHeader] = "listed"
        return response
    }

    func hospitalLocation(_ hospital: String) async throws -> GeoPoint {
        let location: GeoPoint?
        do {
            location = try await services.sites.location(of: hospital, database: services.lookupDatabase)
        } catch {
            throw APIError.unableToVerify(affected: ["sites"], since: Date(), reason: "the hospital's location could not be read: \(DataGuard.describe(error))")
        }
        guard let location else {
            throw APIError(.forbidden, code: "forbidden", message: "hospital \(hospital) is not a known hospital site")
        }
        return location
    }

    // MARK: POST /v1/matches

    private func createMatch(_ request: Request, context: APIRequestContext, caller: AuthenticatedCaller) async throws -> Response {
        try Self.requireJSONContentType(request)
        let key = try Self.idempotencyKey(request)
        let body = try await jsonBody(request)
        let requestID = "api:\(caller.hospital):\(key ?? UUID().uuidString.lowercased())"
        let input: Result<MatchRequest, APIError> = Result { () throws(APIError) in
            try APIInput.matchRequest(body, requestID: requestID, hospital: caller.hospital)
        }
        let matchRequest = try input.get()

        let started = ContinuousClock.now
        let answer: EngineAnswer
        do {
            answer = try await answerWithin(services.configuration.requestDeadline) { [engine = services.engine] in
                try await engine.decide(matchRequest, requestedBy: "api:\(caller.hospital):key:\(caller.keyID)",
                                        traceID: context.traceID, requestID: context.requestID, clientAddress: context.clientAddress,
                                        now: Date())
            }
        } catch let error as MatchRequestError {
            throw APIError.invalid(error.field, error.reason)
        } catch {
            // Whatever else failed (database, deadline, index), the answer is "unable to verify".
            services.metrics.match(outcome: MatchOutcome.unableToVerify.rawValue, duration: ContinuousClock.now - started)
            throw APIError.unableToVerify(affected: ["inventory", "decisions"], since: Date(),
                                          reason: "\(DataGuard.describe(error)); a retry with the same Idempotency-Key returns the decision if it was recorded")
        }
        let decision = answer.decision
        services.metrics.match(outcome: decision.outcome.rawValue, duration: ContinuousClock.now - started)
        if !answer.isNew, !Self.sameQuestion(decision.request, matchRequest) {
            throw APIError(.conflict, code: "idempotency_key_reused",
                           message: "this Idempotency-Key was used for a different request (decision \(decision.decisionID))", field: "Idempotency-Key")
        }
        if decision.outcome == .unableToVerify {
            let error = APIError.unableToVerify(affected: ["inventory", "decisions"], since: decision.evaluatedAt,
                                                reason: decision.unableToVerifyReason ?? "the data could not be verified")
            var response = error.makeResponse()
            if answer.recorded { response.headers[.location] = "/v1/matches/\(decision.decisionID.uuidString.lowercased())" }
            return response
        }
        var response = json(Self.render(decision, retryOf: answer.retryOf), status: answer.isNew ? .created : .ok)
        response.headers[.location] = "/v1/matches/\(decision.decisionID.uuidString.lowercased())"
        response.headers[APIMiddleware.outcomeHeader] = decision.outcome.rawValue
        if !answer.isNew { response.headers[.init("Idempotent-Replayed")!] = "true" }
        return response
    }

    /// Whether a replayed decision answered the same question as the retry.
    static func sameQuestion(_ a: MatchRequest, _ b: MatchRequest) -> Bool {
        a.component == b.component && a.quantity == b.quantity && a.recipient == b.recipient && a.requirements == b.requirements
            && a.maximumUnitAgeDays == b.maximumUnitAgeDays && a.urgency == b.urgency
    }

    // MARK: GET /v1/matches/{id}

    private func getMatch(_ context: APIRequestContext, caller: AuthenticatedCaller) async throws -> Response {
        let text = try context.parameters.require("id")
        guard let id = UUID(uuidString: text) else { throw APIError.invalid("id", "must be a decision id (UUID)") }
        let stored: StoredDecision?
        do {
            stored = try await answerWithin(.seconds(3)) { [database = services.lookupDatabase] in
                try await PostgresDecisionStore(database: database).find(decisionID: id)
            }
        } catch {
            throw APIError.unableToVerify(affected: ["decisions"], since: Date(), reason: "decisions could not be read: \(DataGuard.describe(error))")
        }
        guard let stored else { throw APIError(.notFound, code: "not_found", message: "no decision \(id.uuidString.lowercased())", field: "id") }
        guard stored.hospital == caller.hospital else {
            throw APIError(.forbidden, code: "forbidden", message: "decision \(id.uuidString.lowercased()) belongs to another hospital", field: "id")
        }
        let decision = try DecisionEngine.decode(stored)
        var response = json(Self.render(decision, retryOf: stored.retryOf))
        response.headers[APIMiddleware.outcomeHeader] = decision.outcome.rawValue
        return response
    }

    // MARK: request bodies

    /// Bodies must be declared `application/json`.
    static func requireJSONContentType(_ request: Request) throws {
        let contentType = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard contentType == "application/json" else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "send the body as application/json", field: "Content-Type")
        }
    }

    /// The `Idempotency-Key` header, checked, or nil when absent.
    static func idempotencyKey(_ request: Request) throws -> String? {
        guard let header = request.headers[.init("Idempotency-Key")!] else { return nil }
        guard (1...128).contains(header.utf8.count),
              header.utf8.allSatisfy({ (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || [45, 46, 58, 95].contains($0) }) else {
            throw APIError.invalid("Idempotency-Key", "must be 1…128 characters of A-Z a-z 0-9 - . _ :")
        }
        return header
    }

    /// The body, within the size cap, read by the strict parser.
    func jsonBody(_ request: Request) async throws -> JSONValue {
        var request = request
        let buffer = try await request.collectBody(upTo: services.configuration.maximumBodyBytes)
        let parsed: Result<JSONValue, JSONInputError> = Result { () throws(JSONInputError) in
            try StrictJSON().parse(Array(buffer.readableBytesView))
        }
        switch parsed {
        case .success(let value): return value
        case .failure(let error): throw APIError(.badRequest, code: "malformed_json", message: "the body is not acceptable JSON: \(error)", field: "body")
        }
    }

    // MARK: rendering

    /// A decision as hospitals see it: units, centres, ETA, rationale summary; no donor data.
    static func render(_ d: MatchDecision, retryOf: UUID? = nil) -> JSONValue {
        let prefix = "api:\(d.request.hospitalID ?? ""):"
        let warnings = d.dispatcherWarnings
        return [
            "decision_id": .string(d.decisionID.uuidString.lowercased()),
            "idempotency_key": .string(d.request.requestID.hasPrefix(prefix) ? String(d.request.requestID.dropFirst(prefix.count)) : d.request.requestID),
            "hospital_id": .nullable(d.request.hospitalID),
            "outcome": .string(d.outcome.rawValue),
            "summary": .string(d.summary),
            "component": .string(d.request.component.rawValue),
            "quantity_requested": .int(d.request.quantity),
            "evaluated_at": .string(iso(d.evaluatedAt)),
            // The unverified answer to the same Idempotency-Key that this decision re-evaluates.
            "retry_of": .nullable(retryOf?.uuidString.lowercased()),
            "units": .array(d.chosen.map { u -> JSONValue in
                ["din": .string(u.din), "centre_id": .string(u.centreID), "group": .string(u.group.description),
                 "product_code": .string(u.productCode), "distance_km": .double(round1(u.distanceKm)), "eta_minutes": .double(round1(u.etaMinutes)),
                 "expires_at": .string(isoUTC(seconds: u.expiresAt)),
                 "attributes": .strings(u.attributes.attributes.map(\.rawValue)), "stale_centre": .bool(u.staleCentre),
                 "data_age_minutes": .int(Int(u.dataAgeSeconds / 60)), "late": .bool(u.late == true)]
            }),
            "centres_used": .strings(d.centresUsed),
            // Centres whose stock is unknown (never delivered a snapshot): the answer could not check them.
            "centres_not_checked": .array((d.centresNotChecked ?? []).map {
                ["centre_id": .string($0.centreID), "distance_km": .double(round1($0.distanceKm)), "warning": .string(noDataWarning)]
            }),
            "split_across_centres": .bool(d.splitAcrossCentres),
            "includes_stale_data": .bool(d.includesStaleData),
            "arrival_deadline_minutes": d.arrivalDeadlineMinutes.map { .double(round1($0)) } ?? .null,
            "warnings": .strings(warnings),
            "rationale": [
                "acceptable_groups": .array(d.rulesApplied.map { ["group": .string($0.group.description), "rank": .int($0.rank), "rule": .string($0.rule)] }),
                "groups_refused": .strings(d.groupsRefused),
                "requirement_notes": .strings(d.requirementNotes),
                "rejected": .array(d.rejected.prefix(10).map { ["centre_id": .string($0.centreID), "reason": .string($0.reason.rawValue), "count": .int($0.count)] }),
            ],
            "policy_version": .string(d.policyVersion),
            "index_version": .nullable(d.indexVersion),
        ]
    }
}

/// A JSON response with sorted keys.
func json(_ object: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
             body: .init(byteBuffer: ByteBuffer(bytes: ResponseJSON.encode(object))))
}

/// ISO 8601, UTC, whole seconds.
func iso(_ date: Date) -> String {
    isoUTC(seconds: Int64(date.timeIntervalSince1970.rounded(.down)))
}

/// One decimal place.
func round1(_ x: Double) -> Double { (x * 10).rounded() / 10 }

extension MatchDecision {
    /// What a dispatcher must see before acting on the decision: stale data, centres that could
    /// not be checked, units that arrive after the deadline.
    public var dispatcherWarnings: [String] {
        var warnings: [String] = []
        if includesStaleData { warnings.append("stale data — confirm before dispatch") }
        if let unknown = centresNotChecked, !unknown.isEmpty {
            warnings.append("\(unknown.count) centre(s) could not be checked: \(noDataWarning)")
        }
        let late = chosen.filter { $0.late == true }.count
        if late > 0 { warnings.append("\(late) of \(chosen.count) unit(s) arrive after the deadline — confirm the time before dispatch") }
        return warnings
    }
}
