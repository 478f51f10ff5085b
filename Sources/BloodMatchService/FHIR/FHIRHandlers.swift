import BloodMatchIngest
import BloodMatchCore
import BloodMatchStore
import Foundation
import Hummingbird

/// The FHIR routes: thin adapters from FHIR REST to the index, the stores and the engine, with the
/// same keys, limits, access records and fail-safe answers as `/v1` (the middleware is shared).
extension APIHandlers {
    func handleFHIR(_ route: APIRoute, request: Request, context: APIRequestContext) async throws -> Response {
        try Self.requireFHIRVersion(request)
        if route == .fhirMetadata { return fhirJSON(FHIRCapability.statement(now: services.now())) }
        let caller = try caller(context)
        switch route {
        case .fhirSearchProducts: return try await fhirSearchProducts(request, caller: caller)
        case .fhirReadProduct: return try await fhirReadProduct(context, caller: caller)
        case .fhirCreateSupplyRequest: return try await fhirCreateSupplyRequest(request, context: context, caller: caller)
        case .fhirSearchSupplyRequests: return try await fhirSearchSupplyRequests(request, caller: caller)
        case .fhirReadSupplyRequest: return try await fhirReadSupplyRequest(request, context: context, caller: caller)
        case .fhirCancelSupplyRequest: return try await fhirCancelSupplyRequest(context, caller: caller)
        case .fhirSearchDispenses: return try await fhirSearchDispenses(request, caller: caller)
        case .fhirReadDispense: return try await fhirReadDispense(request, context: context, caller: caller)
        case .fhirUpdateDispense: return try await fhirUpdateDispense(request, context: context, caller: caller)
        default: throw APIError(.notFound, code: "not_found", message: "no such resource")
        }
    }

    // MARK: BiologicallyDerivedProduct

    private func fhirSearchProducts(_ request: Request, caller: AuthenticatedCaller) async throws -> Response {
        let query = fhirQuery(request)
        let search = try FHIRProductSearch(query: query)
        let now = services.now()
        let verified = try await services.dataGuard.verifiedIndex(now: now)
        let held: [HeldUnit]
        do {
            held = try await answerWithin(.seconds(3)) { [services] in try await services.heldUnits.current(database: services.lookupDatabase) }
        } catch {
            throw APIError.unableToVerify(affected: ["reservations"], since: Date(), reason: "held units could not be read: \(DataGuard.describe(error))")
        }
        let index = verified.index
        let seconds = Int64(now.timeIntervalSince1970)
        let minimum = Dictionary(uniqueKeysWithValues: services.planner.settings.minimumRemainingHoursAtArrival.map {
            ($0.key, Int64(($0.value * 3600).rounded(.up)))
        })
        let (total, page) = search.run(index: index, held: held, now: seconds, minimumRemainingSeconds: minimum)
        let resources: [(id: String, resource: JSONValue)] = page.map { hit in
            let p = hit.position, centre = index.centres[hit.centre]
            let key = index.unitKey(at: p)
            return (FHIRProduct.id(key), FHIRProduct.resource(FHIRUnitView(
                key: key, component: hit.component, group: hit.group, collectedAt: index.collection(at: p),
                expiresAt: index.expiry(at: p), attributes: index.attributeSet(at: p), centreID: centre.siteID,
                stockAsOf: centre.asOf, stale: centre.isStale(now: seconds), available: true)))
        }
        var next: [(String, String)]?
        if search.offset + search.count < total, search.count > 0, search.offset + search.count <= FHIRProductSearch.maximumOffset {
            next = query.filter { $0.name != "_offset" }.map { ($0.name, $0.value) } + [("_offset", String(search.offset + search.count))]
        }
        var response = fhirJSON(fhirBundle(request, type: "BiologicallyDerivedProduct", total: total, resources: resources,
                                           query: query.map { ($0.name, $0.value) }, next: next,
                                           note: "index \(verified.version), verified \(iso(verified.verifiedAt))"))
        response.headers[APIMiddleware.outcomeHeader] = "listed"
        return response
    }

    private func fhirReadProduct(_ context: APIRequestContext, caller: AuthenticatedCaller) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let key = FHIRProduct.key(id: id) else {
            throw APIError.invalid("id", "must be DIN-PRODUCTCODE: a 13-character ISBT 128 DIN, '-', an 8-character product code")
        }
        let now = services.now()
        let unit: VisibleUnit?
        do {
            unit = try await answerWithin(.seconds(3)) { [database = services.lookupDatabase] in
                try await PostgresUnitVisibility(database: database).unit(key, hospital: caller.hospital, now: now)
            }
        } catch {
            throw APIError.unableToVerify(affected: ["inventory", "reservations"], since: Date(), reason: "the unit could not be read: \(DataGuard.describe(error))")
        }
        guard let unit else {
            throw APIError(.notFound, code: "not_found", message: "no unit \(key) in stock, held for or issued to \(caller.hospital)", field: "id")
        }
        return fhirJSON(FHIRProduct.resource(FHIRUnitView(
            key: unit.key, component: unit.component, group: unit.group, collectedAt: unit.collectedAt.map { Int64($0.timeIntervalSince1970) },
            expiresAt: Int64(unit.expiresAt.timeIntervalSince1970), attributes: unit.attributes, centreID: unit.centreID,
            stockAsOf: unit.stockAsOf.map { Int64($0.timeIntervalSince1970) }, stale: unit.stale, available: unit.standing == .available)))
    }

    // MARK: helpers

    /// This server's FHIR base URL as the caller reached it.
    func fhirBase(_ request: Request) -> String {
        let scheme = services.configuration.tlsCertificatePath == nil ? "http" : "https"
        // The Host the client sent, when it is a plain host[:port]; never other text in the links.
        let given = request.head.authority ?? ""
        let plain = (1...200).contains(given.utf8.count)
            && given.utf8.allSatisfy { (48...58).contains($0) || (65...90).contains($0) || (97...122).contains($0) || [45, 46, 91, 93].contains($0) }
        let host = plain ? given : "\(services.configuration.host):\(services.configuration.port)"
        return "\(scheme)://\(host)/fhir"
    }

    /// A searchset Bundle.
    func fhirBundle(_ request: Request, type: String, total: Int, resources: [(id: String, resource: JSONValue)], query: [(String, String)],
                    next: [(String, String)]?, note: String? = nil) -> JSONValue {
        let base = fhirBase(request)
        func url(_ parameters: [(String, String)]) -> String {
            let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
            let q = parameters.map { "\($0.0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
            return base + "/" + type + (q.isEmpty ? "" : "?" + q.joined(separator: "&"))
        }
        var links: [JSONValue] = [["relation": "self", "url": .string(url(query))]]
        if let next { links.append(["relation": "next", "url": .string(url(next))]) }
        var bundle: [String: JSONValue] = [
            "resourceType": "Bundle",
            "type": "searchset",
            "timestamp": .string(iso(services.now())),
            "total": .int(total),
            "link": .array(links),
            "entry": .array(resources.map { r in
                ["fullUrl": .string(base + "/" + type + "/" + r.id), "resource": r.resource, "search": ["mode": "match"]]
            }),
        ]
        if let note { bundle["meta"] = ["tag": [["system": .string(FHIRSystem.base + "/CodeSystem/source"), "code": "index", "display": .string(note)]]] }
        return .object(bundle)
    }

    /// The query's parameters in order, an empty `?` or `&&` dropped (clients send `path?` with none).
    func fhirQuery(_ request: Request) -> [(name: String, value: String)] {
        request.uri.queryParameters.compactMap { $0.key.isEmpty && $0.value.isEmpty ? nil : (name: String($0.key), value: String($0.value)) }
    }

    /// FHIR bodies are `application/fhir+json` (or `application/json`), of FHIR 5.0 when a
    /// `fhirVersion` parameter says which.
    static func requireFHIRContentType(_ request: Request) throws {
        let header = request.headers[.contentType] ?? ""
        let contentType = header.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard contentType == "application/fhir+json" || contentType == "application/json" else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "send the body as application/fhir+json", field: "Content-Type")
        }
        if let version = fhirVersion(header), version != "5.0" {
            throw APIError(.unsupportedMediaType, code: "unsupported_fhir_version",
                           message: "the body is FHIR \(version.prefix(10)); this server speaks FHIR 5.0 (R5) only", field: "Content-Type")
        }
    }

    /// An `Accept` asking for another FHIR version is answered 406 (FHIR R5 http.html, "FHIR Version parameter").
    static func requireFHIRVersion(_ request: Request) throws {
        guard let accept = request.headers[.accept], let version = fhirVersion(accept), version != "5.0" else { return }
        throw APIError(.notAcceptable, code: "unsupported_fhir_version",
                       message: "FHIR \(version.prefix(10)) was asked for; this server speaks FHIR 5.0 (R5) only", field: "Accept")
    }

    /// The `fhirVersion` media-type parameter of a header, when present.
    static func fhirVersion(_ header: String) -> String? {
        for part in header.split(separator: ";").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == "fhirversion" { return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        return nil
    }

    /// `_count` of a listing: 1…100, default 50.
    static func listCount(_ query: [(name: String, value: String)]) throws(APIError) -> Int {
        guard let text = query.last(where: { $0.name == "_count" })?.value else { return 50 }
        guard let n = Int(text), (1...100).contains(n) else { throw APIError.invalid("_count", "must be a whole number 1…100") }
        return n
    }

    /// Refuses parameters a search does not know.
    static func onlyParameters(_ query: [(name: String, value: String)], _ known: Set<String>, resource: String) throws(APIError) {
        if let unknown = query.first(where: { !known.contains($0.name) }) {
            throw APIError(.badRequest, code: "unknown_parameter",
                           message: "search parameter '\(unknown.name.prefix(40))' is not supported on \(resource); see /fhir/metadata",
                           field: String(unknown.name.prefix(40)))
        }
    }
}
