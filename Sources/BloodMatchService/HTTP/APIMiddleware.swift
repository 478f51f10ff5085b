import BloodMatchIngest
import BloodMatchStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The gate every request passes: access-record slot, size limits, the client address's failed
/// authentications, key, rate limit, body, concurrency budget; then error rendering, metrics and
/// the access record itself.
///
/// Order matters: a request that cannot be recorded is refused before it does any work; one that
/// is over a size limit is refused before its key is looked up; an address whose keys keep
/// failing is refused before its next key is looked at; the body arrives whole (within its
/// deadline) before a slot of the budget is taken, so a slow sender holds no slot; work starts only
/// within the hospital's rate, its share of the budget and the budget. A refused key that names no
/// existing key (missing, malformed, unknown, or refused for its address) is counted per minute by
/// the recorder rather than recorded one row each.
struct APIMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let services: APIServices

    /// The response header through which handlers report their outcome to the access record.
    static let outcomeHeader = HTTPField.Name("BloodMatch-Outcome")!
    static let requestIDHeader = HTTPField.Name("X-Request-ID")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let requestedAt = services.now()
        let requestID = Self.requestID(request.headers[Self.requestIDHeader])
        let traceID = context.traceID
        let route = APIRoute.template(for: request.uri.path) ?? "unmatched"
        var context = context
        context.requestID = requestID
        // HEAD is GET without the body (RFC 9110 §9.3.2): the router sends it to the GET route's
        // handler, and `finish` drops the body.
        let isHead = request.method == .head && route != "unmatched" && APIRoute.methods(on: route).contains(.get)
        var caller: AuthenticatedCaller?
        var authFailure: AuthenticationFailure?
        var response: Response

        let ticket = services.recorder.reserve()
        // Probes and scrapes (/health, /ready, /metrics, /openapi.json) read no hospital's data:
        // they answer whether or not their access record can be written, so the monitoring
        // works during the very outage it watches. They are recorded whenever records can be.
        let operational = route != "unmatched" && !APIRoute.needsKey(path: route) && route != APIRoute.fhirMetadata.path
        if ticket == nil, !operational {
            let refusal = services.recorder.refusal ?? (Date(), "access records cannot be written")
            response = APIError.unableToVerify(affected: ["access records"], since: refusal.since, reason: refusal.reason)
                .makeResponse(fhir: APIRoute.isFHIR(path: request.uri.path))
            services.logger.error("request refused: it could not be recorded", metadata: [
                "request_id": "\(requestID)", "route": "\(route)", "method": "\(request.method.rawValue)",
                "client_addr": "\(context.clientAddress ?? "")", "reason": "\(refusal.reason)",
            ])
            return finish(response, route: route, request: request, started: started, requestID: requestID, isHead: isHead)
        }
        do {
            try checkSizes(request)
            try checkEncodings(request)
            if route != "unmatched" {
                // Any other method on a known path, standard or not (TRACE, QUERY…), is 405.
                var allowed = APIRoute.methods(on: route)
                if allowed.contains(.get) { allowed.append(.head) }
                guard allowed.contains(request.method) else {
                    throw APIError(.methodNotAllowed, code: "method_not_allowed", message: "\(request.method.rawValue.prefix(20)) is not allowed on \(route)",
                                   headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")])
                }
            }
            // Unknown paths under /v1 need a key too, so they reveal nothing to strangers.
            let needsKey = APIRoute.needsKey(path: route == "unmatched" ? request.uri.path : route)
            if needsKey {
                // An address whose keys keep failing is refused before its next key costs a look-up,
                // unless that key's id is one that exists (a hospital behind the same address).
                let address = context.clientAddress ?? "local"
                if let wait = services.failureLimiter.wait(address),
                   !services.authenticator.presentsKnownKey(request.headers[.authorization]) {
                    authFailure = AuthenticationFailure(.throttled, keyID: AuthenticationFailure.keyID(presentedIn: Self.token(request)),
                                                        message: "too many failed authentications from this address")
                    throw APIError(.tooManyRequests, code: "too_many_failed_authentications",
                                   message: "too many requests with a missing or refused API key from this address; retry after \(wait) s",
                                   headers: [.retryAfter: String(wait)])
                }
                let verified: AuthenticatedCaller
                do {
                    verified = try await services.authenticator.authenticate(authorization: request.headers[.authorization], now: requestedAt)
                } catch let failure as AuthenticationFailure {
                    authFailure = failure
                    _ = services.failureLimiter.acquire(address)
                    throw failure.response
                } catch {
                    throw APIError.unableToVerify(affected: ["api keys"], since: Date(),
                                                  reason: "the API key could not be checked: \(DataGuard.describe(error))")
                }
                caller = verified
                if let wait = services.rateLimiter.acquire(verified.hospital) {
                    throw APIError(.tooManyRequests, code: "rate_limited",
                                   message: "over \(Int(services.rateLimiter.rate)) requests per second for \(verified.hospital); retry after \(wait) s",
                                   headers: [.retryAfter: String(wait)])
                }
                // The whole body first, within its deadline: a slow sender holds no slot of the budget.
                var request = request
                if Self.methodsWithBody.contains(request.method) {
                    request = try await collectBody(request)
                }
                // Lookups and writes have budgets of their own, so stalled writes cannot take a lookup's slot.
                let budget = request.method == .get || request.method == .head ? services.lookupBudget : services.budget
                switch budget.tryAcquire(verified.hospital) {
                case nil: break
                case .full:
                    throw APIError(.serviceUnavailable, code: "overloaded",
                                   message: "the service is at its concurrency limit; retry shortly (nothing was done)", headers: [.retryAfter: "1"])
                case .shareTaken:
                    throw APIError(.tooManyRequests, code: "concurrency_share_taken",
                                   message: "\(verified.hospital) already has \(budget.perKeyLimit) requests of this kind working at once, its share; retry shortly (nothing was done)",
                                   headers: [.retryAfter: "1"])
                }
                defer { budget.release(verified.hospital) }
                context.caller = verified
                response = try await AuditContext.$requestID.withValue(requestID) { try await next(request, context) }
            } else {
                response = try await AuditContext.$requestID.withValue(requestID) { try await next(request, context) }
            }
        } catch {
            response = render(error, route: route).makeResponse(fhir: APIRoute.isFHIR(path: request.uri.path))
        }
        guard let ticket else {
            // An operational route answered while access records cannot be written.
            return finish(response, route: route, request: request, started: started, requestID: requestID, isHead: isHead)
        }
        if let authFailure, !authFailure.reason.namesExistingKey {
            // Anyone can send these in any number: counted per minute, not recorded one by one.
            services.recorder.count(ticket, FailedAuthenticationTally.Attempt(
                clientAddress: context.clientAddress, route: route, reason: authFailure.reason, requestedAt: requestedAt,
                requestID: requestID, keyID: authFailure.keyID))
            return finish(response, route: route, request: request, started: started, requestID: requestID, isHead: isHead)
        }
        let latency = ContinuousClock.now - started
        let outcome = response.headers[Self.outcomeHeader] ?? (response.status.code < 400 ? "ok" : "refused")
        var payload: [String: JSONValue] = [
            "key_id": .nullable(caller?.keyID ?? authFailure?.keyID), "method": .string(request.method.rawValue),
            "parameters": .object(Self.parameters(request).mapValues { .string($0) }), "status": .int(response.status.code),
            "outcome": .string(outcome), "latency_ms": .double(Double(ServiceMetrics.nanoseconds(latency) / 10_000) / 100),
        ]
        if let authFailure {
            // A key that exists, refused: which key and whose, for whoever investigates its use.
            payload["auth_failure"] = ["reason": .string(authFailure.reason.rawValue), "key_id": .nullable(authFailure.keyID)]
            payload["key_hospital"] = .nullable(authFailure.keyHospital)
        }
        if route == "unmatched" { payload["path"] = .string(String(AccessRedaction.text(request.uri.path).prefix(256))) }
        services.recorder.commit(ticket, AccessRecord(actor: caller?.hospital ?? "anonymous", subject: route, payload: payload,
                                                      requestedAt: requestedAt, requestID: requestID, traceID: traceID,
                                                      clientAddress: context.clientAddress))
        return finish(response, route: route, request: request, started: started, requestID: requestID, isHead: isHead)
    }

    /// Methods whose body is read before the work starts.
    static let methodsWithBody: Set<HTTPRequest.Method> = [.post, .put, .patch]

    /// The bearer token presented, or "".
    static func token(_ request: Request) -> Substring {
        guard let value = request.headers[.authorization], let space = value.firstIndex(of: " ") else { return "" }
        return value[value.index(after: space)...]
    }

    /// `request` with its whole body read (up to the size limit) within the body deadline; past the
    /// deadline 408 and the connection closed, past the size 413.
    private func collectBody(_ request: Request) async throws -> Request {
        let body = request.body
        let limit = services.configuration.maximumBodyBytes
        let deadline = services.configuration.bodyDeadline
        let buffer: ByteBuffer
        do {
            // The read is cancelled and awaited at the deadline: the server reads the same
            // connection next, and two readers of one stream trap.
            buffer = try await withDeadlineAwaitingCancellation(deadline) { try await body.collect(upTo: limit) }
        } catch is DeadlineExceededError {
            throw APIError(.requestTimeout, code: "body_timeout",
                           message: "the request body did not arrive whole within \(deadline); nothing was done", field: "body",
                           headers: [.connection: "close"])
        } catch let error as any HTTPResponseError {
            throw error   // over the size limit: 413
        } catch {
            // A malformed chunk, a client that stopped mid-body: the client's fault, not a 5xx.
            throw APIError(.badRequest, code: "unreadable_body",
                           message: "the request body could not be read whole (malformed chunked encoding, or the client stopped sending); nothing was done",
                           field: "body", headers: [.connection: "close"])
        }
        var request = request
        request.body = .init(buffer: buffer)
        return request
    }

    private func finish(_ response: Response, route: String, request: Request, started: ContinuousClock.Instant, requestID: String,
                        isHead: Bool) -> Response {
        var response = response
        response.headers[Self.requestIDHeader] = requestID
        if services.configuration.tlsCertificatePath != nil {
            // Browsers and clients that honour it never fall back to plain HTTP (RFC 6797).
            response.headers[.strictTransportSecurity] = "max-age=31536000"
        }
        if isHead {
            // The GET answer's status and headers, its length, no body.
            response.body = ResponseBody(contentLength: response.body.contentLength) { writer in try await writer.finish(nil) }
        }
        services.metrics.request(route: route, method: request.method.rawValue, status: Int(response.status.code),
                                 duration: ContinuousClock.now - started)
        if response.headers[Self.outcomeHeader] == "unable_to_verify" {
            services.metrics.unableToVerify(route: route)
        }
        return response
    }

    /// A body in an encoding the API does not decode is refused, never read as if it were plain:
    /// `Content-Encoding` other than identity 415, `Transfer-Encoding` other than chunked 501.
    private func checkEncodings(_ request: Request) throws {
        if let encoding = request.headers[.contentEncoding]?.trimmingCharacters(in: .whitespaces).lowercased(),
           !encoding.isEmpty, encoding != "identity" {
            throw APIError(.unsupportedMediaType, code: "unsupported_content_encoding",
                           message: "Content-Encoding '\(encoding.prefix(40))' is not accepted; send the body unencoded", field: "Content-Encoding")
        }
        if let transfer = request.headers[.transferEncoding]?.trimmingCharacters(in: .whitespaces).lowercased(), transfer != "chunked" {
            throw APIError(.notImplemented, code: "unsupported_transfer_encoding",
                           message: "Transfer-Encoding '\(transfer.prefix(40))' is not implemented; only chunked is", field: "Transfer-Encoding",
                           headers: [.connection: "close"])
        }
    }

    private func checkSizes(_ request: Request) throws {
        let limits = services.configuration
        if request.uri.description.utf8.count > limits.maximumURLBytes {
            throw APIError(.uriTooLong, code: "uri_too_long", message: "the request target is over \(limits.maximumURLBytes) bytes")
        }
        let headerBytes = request.headers.reduce(0) { $0 + $1.name.rawName.utf8.count + $1.value.utf8.count + 4 }
        if headerBytes > limits.maximumHeaderBytes {
            throw APIError(.init(code: 431, reasonPhrase: "Request Header Fields Too Large"), code: "headers_too_large",
                           message: "the request headers are over \(limits.maximumHeaderBytes) bytes")
        }
        let lengths = request.headers[values: .contentLength]
        if lengths.count > 1 || (lengths.count == 1 && request.headers[.transferEncoding] != nil) {
            throw APIError(.badRequest, code: "ambiguous_length", message: "Content-Length given twice, or with Transfer-Encoding")
        }
        if let length = lengths.first.flatMap({ Int($0) }), length > limits.maximumBodyBytes {
            throw APIError(.contentTooLarge, code: "body_too_large", message: "the request body is over the \(limits.maximumBodyBytes / 1024) KiB limit",
                           field: "body")
        }
    }

    /// The refusal an error is answered with.
    private func render(_ error: any Error, route: String) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as HTTPError:
            return APIError.from(framework: error.status, message: error.body)
        case let error as any HTTPResponseError:
            // Framework errors such as NIOTooManyBytesError (a body over the cap: 413).
            return APIError.from(framework: error.status, message: nil)
        case let error where isConnectionFailure(error):
            return APIError.unableToVerify(affected: ["inventory"], since: Date(), reason: DataGuard.describe(error))
        default:
            services.logger.error("unexpected error", metadata: ["route": "\(route)", "error": "\(String(reflecting: error))"])
            return APIError(.internalServerError, code: "internal", message: "unexpected error; it was logged")
        }
    }

    /// The caller's request id, or a new one (`acceptableRequestID`).
    static func requestID(_ header: String?) -> String { acceptableRequestID(header) }

    /// The query, the idempotency key and the body length, redacted (`AccessRedaction`) and then
    /// bounded, for the access record.
    static func parameters(_ request: Request) -> [String: String] {
        var out: [String: String] = [:]
        if let query = request.uri.query, !query.isEmpty { out["query"] = String(AccessRedaction.query(query).prefix(512)) }
        if let key = request.headers[.init("Idempotency-Key")!] { out["idempotency_key"] = String(AccessRedaction.text(key).prefix(128)) }
        if let length = request.headers[.contentLength] { out["content_length"] = String(length.prefix(20)) }
        return out
    }
}

/// The caller's request id when it is a short token (1…64 printable ASCII characters, no quote or
/// backslash) holding no API key, otherwise a new one. It is echoed, logged and stored with every
/// row the request writes, so it must be neither long nor a secret.
public func acceptableRequestID(_ header: String?) -> String {
    if let header, (1...64).contains(header.utf8.count),
       header.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }),
       !AccessRedaction.containsKey(header) {
        return header
    }
    return UUID().uuidString.lowercased()
}
