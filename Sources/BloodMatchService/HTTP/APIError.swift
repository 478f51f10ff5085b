import BloodMatchIngest
import Foundation
import Hummingbird

/// Every refusal the API gives, rendered as `{"error":{"code":…,"message":…,"field":…}}`.
///
/// The one place that maps errors to HTTP statuses: handlers throw these, the middleware renders
/// them, and anything else thrown becomes a 500 with a generic message (the detail goes to the log).
public struct APIError: Error, Sendable, HTTPResponseError {
    /// HTTP status.
    public var status: HTTPResponse.Status
    /// Stable machine-readable code (`invalid_field`, `unauthenticated`, …).
    public var code: String
    /// A sentence for the integrator.
    public var message: String
    /// The offending field or parameter, when there is one.
    public var field: String?
    /// Extra response headers (`Retry-After`, `Allow`, `WWW-Authenticate`).
    public var headers: HTTPFields = [:]
    /// Fail-safe details: which data is affected and since when.
    public var failSafe: FailSafe?

    /// What an "unable to verify" answer says about the data it could not check.
    public struct FailSafe: Sendable, Hashable {
        /// The data that could not be verified (`inventory`, `decisions`, `access records`, …).
        public var affected: [String]
        /// When the problem was first seen.
        public var since: Date
        /// Why (no secrets).
        public var reason: String
    }

    /// Creates an error.
    public init(_ status: HTTPResponse.Status, code: String, message: String, field: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers
    }

    /// The sentence every fail-safe answer carries.
    public static let unableToVerifyMessage = "unable to verify — manual review required"

    /// 503: the data could not be checked; never to be read as "no units".
    public static func unableToVerify(affected: [String], since: Date, reason: String) -> APIError {
        var error = APIError(.serviceUnavailable, code: "unable_to_verify", message: unableToVerifyMessage,
                             headers: [.retryAfter: "5", APIMiddleware.outcomeHeader: "unable_to_verify"])
        error.failSafe = FailSafe(affected: affected, since: since, reason: reason)
        return error
    }

    /// 400 for one field or parameter.
    public static func invalid(_ field: String, _ message: String) -> APIError {
        APIError(.badRequest, code: "invalid_field", message: message, field: field)
    }

    /// 401 with the challenge header.
    public static func unauthenticated(_ message: String) -> APIError {
        APIError(.unauthorized, code: "unauthenticated", message: message,
                 headers: [.wwwAuthenticate: #"Bearer realm="bloodmatch""#])
    }

    /// The JSON body.
    public var body: JSONValue {
        var error: [String: JSONValue] = ["code": .string(code), "message": .string(message), "field": .nullable(field)]
        if let failSafe {
            error["affected"] = .strings(failSafe.affected)
            error["since"] = .string(iso(failSafe.since))
            error["reason"] = .string(failSafe.reason)
        }
        return ["error": .object(error)]
    }

    /// Renders the error.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        makeResponse()
    }

    /// Renders the error without a request (middleware short-cuts); on FHIR paths as an
    /// OperationOutcome (`FHIROperationOutcome`).
    public func makeResponse(fhir: Bool = false) -> Response {
        let data = ResponseJSON.encode(fhir ? FHIROperationOutcome.resource(for: self) : body)
        var fields = headers
        fields[.contentType] = fhir ? FHIRResponse.contentType : "application/json; charset=utf-8"
        fields[.cacheControl] = "no-store"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The envelope for errors raised by the framework (404 for an unknown path, 413 for a body
    /// over the cap, …), with codes integrators can switch on.
    public static func from(framework status: HTTPResponse.Status, message: String?) -> APIError {
        switch status.code {
        case 400: return APIError(status, code: "bad_request", message: message ?? "the request could not be read")
        case 404: return APIError(status, code: "not_found", message: "no such resource")
        case 405: return APIError(status, code: "method_not_allowed", message: "method not allowed on this path")
        case 413: return APIError(status, code: "body_too_large", message: "the request body is over the 64 KiB limit", field: "body")
        case 408: return APIError(status, code: "request_timeout", message: "the request took too long to arrive")
        default: return APIError(status, code: "http_\(status.code)", message: message ?? status.reasonPhrase)
        }
    }
}
