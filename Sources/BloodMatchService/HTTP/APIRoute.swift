import Hummingbird

/// Every route the API serves: the single table the router is built from and the OpenAPI
/// document is checked against (`OpenAPIDocumentTests`).
///
public enum APIRoute: String, CaseIterable, Sendable {
    /// `GET /health`: the process is up.
    case health
    /// `GET /ready`: database reachable, index current, access records writable.
    case ready
    /// `GET /metrics`: Prometheus.
    case metrics
    /// `GET /openapi.json`: the committed OpenAPI document.
    case openAPI
    /// `GET /v1/availability`.
    case availability
    /// `POST /v1/matches`.
    case createMatch
    /// `GET /v1/matches/{id}`.
    case getMatch
    /// `POST /v1/reservations`: hold a decision's units.
    case createReservation
    /// `GET /v1/reservations/{id}`.
    case getReservation
    /// `DELETE /v1/reservations/{id}`: release a hold.
    case releaseReservation
    /// `POST /v1/units/{din}/{product_code}/receipt`: the hospital confirms an issued unit arrived.
    case recordReceipt
    /// `POST /v1/units/{din}/{product_code}/fate`: transfused, returned or discarded, after receipt.
    case recordFate
    /// `GET /fhir/metadata`: the FHIR CapabilityStatement (no key: it describes the server only).
    case fhirMetadata
    /// `GET /fhir/BiologicallyDerivedProduct`: search of available stock.
    case fhirSearchProducts
    /// `GET /fhir/BiologicallyDerivedProduct/{id}`: one unit the caller may see.
    case fhirReadProduct
    /// `POST /fhir/SupplyRequest`: place an order.
    case fhirCreateSupplyRequest
    /// `GET /fhir/SupplyRequest`: the caller's orders.
    case fhirSearchSupplyRequests
    /// `GET /fhir/SupplyRequest/{id}`: one order with its status.
    case fhirReadSupplyRequest
    /// `DELETE /fhir/SupplyRequest/{id}`: cancel an order not yet decided.
    case fhirCancelSupplyRequest
    /// `GET /fhir/BiologicallyDerivedProductDispense`: the units allocated and issued against the caller's orders.
    case fhirSearchDispenses
    /// `GET /fhir/BiologicallyDerivedProductDispense/{id}`.
    case fhirReadDispense
    /// `PUT /fhir/BiologicallyDerivedProductDispense/{id}`: the hospital's receipt or the unit's fate.
    case fhirUpdateDispense

    /// HTTP method.
    public var method: HTTPRequest.Method {
        switch self {
        case .createMatch, .createReservation, .recordReceipt, .recordFate, .fhirCreateSupplyRequest: .post
        case .releaseReservation, .fhirCancelSupplyRequest: .delete
        case .fhirUpdateDispense: .put
        default: .get
        }
    }

    /// Path template, in the syntax both Hummingbird and OpenAPI use.
    public var path: String {
        switch self {
        case .health: "/health"
        case .ready: "/ready"
        case .metrics: "/metrics"
        case .openAPI: "/openapi.json"
        case .availability: "/v1/availability"
        case .createMatch, .getMatch: "/v1/matches" + (self == .getMatch ? "/{id}" : "")
        case .createReservation: "/v1/reservations"
        case .getReservation, .releaseReservation: "/v1/reservations/{id}"
        case .recordReceipt: "/v1/units/{din}/{product_code}/receipt"
        case .recordFate: "/v1/units/{din}/{product_code}/fate"
        case .fhirMetadata: "/fhir/metadata"
        case .fhirSearchProducts: "/fhir/BiologicallyDerivedProduct"
        case .fhirReadProduct: "/fhir/BiologicallyDerivedProduct/{id}"
        case .fhirCreateSupplyRequest, .fhirSearchSupplyRequests: "/fhir/SupplyRequest"
        case .fhirReadSupplyRequest, .fhirCancelSupplyRequest: "/fhir/SupplyRequest/{id}"
        case .fhirSearchDispenses: "/fhir/BiologicallyDerivedProductDispense"
        case .fhirReadDispense, .fhirUpdateDispense: "/fhir/BiologicallyDerivedProductDispense/{id}"
        }
    }

    /// Whether the route needs an API key.
    public var requiresKey: Bool { Self.needsKey(path: path) }

    /// Whether a path (a template, or a path no route matches) needs a key: everything under `/v1`
    /// and `/fhir` except the CapabilityStatement, so unknown paths there reveal nothing to strangers.
    public static func needsKey(path: String) -> Bool {
        path.hasPrefix("/v1") || (path.hasPrefix("/fhir") && path != "/fhir/metadata")
    }

    /// Whether answers on this path speak FHIR (errors as OperationOutcome, `application/fhir+json`).
    public static func isFHIR(path: String) -> Bool { path.hasPrefix("/fhir") }

    /// Distinct path templates.
    public static var paths: [String] {
        var seen: [String] = []
        for route in allCases where !seen.contains(route.path) { seen.append(route.path) }
        return seen
    }

    /// Methods served on a path template.
    public static func methods(on path: String) -> [HTTPRequest.Method] {
        allCases.filter { $0.path == path }.map(\.method)
    }

    /// The path template a concrete path matches (for metrics and access records), or nil.
    public static func template(for path: String) -> String? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for template in paths {
            let parts = template.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == segments.count else { continue }
            if zip(parts, segments).allSatisfy({ $0.hasPrefix("{") || $0 == $1 }) { return template }
        }
        return nil
    }
}
