import BloodMatchIngest
import BloodMatchService
import BloodMatchStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The gate every console request passes: request id, session from the cookie, the same-origin
/// check and the CSRF token on every change, the body cap; then errors rendered, the security
/// headers set on every answer, and each request of a logged-in operator recorded in the event log
/// on their own login (`console.request`: route, status, time, the browser's address).
struct ConsoleMiddleware: RouterMiddleware {
    typealias Context = ConsoleRequestContext
    let services: ConsoleServices

    static let cookieName = "bm_console"
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    static let requestIDHeader = HTTPField.Name("X-Request-ID")!

    /// The Content-Security-Policy of every answer: scripts, styles and data from this origin
    /// only, nothing inline, no framing, forms post only here.
    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let requestedAt = services.now()
        var context = context
        context.requestID = Self.requestID(request.headers[Self.requestIDHeader])
        let path = request.uri.path
        let route = ConsoleRoute.template(for: path)
        let api = path.hasPrefix("/console/api/")
        var response: Response
        do {
            let lookup = services.sessions.lookup(token: Self.cookie(Self.cookieName, in: request.headers),
                                                  touch: route != "/console/api/live")
            if case .active(let session) = lookup { context.session = session }
            if case .expired(let name, let reason) = lookup {
                services.logger.info("console session ended", metadata: ["operator": "\(name)", "reason": "\(reason)"])
            }
            if !ConsoleRoute.isPublic(path: path, method: request.method), context.session == nil {
                if api || request.method != .get {
                    throw ConsoleError(.unauthorized, code: "not_logged_in", message: "log in to the console first")
                }
                let expired: Bool = if case .expired = lookup { true } else { false }
                return finish(redirect(to: "/console/login" + (expired ? "?e=expired" : "")), request: request)
            }
            if ![.get, .head].contains(request.method) {
                try checkSameOrigin(request)
                if let session = context.session, route != "/console/login" {
                    guard let sent = request.headers[Self.csrfHeader], ConsoleSessions.constantTimeEqual(sent, session.csrfToken) else {
                        throw ConsoleError(.forbidden, code: "csrf", message: "the request's CSRF token is missing or wrong; reload the page (nothing was done)")
                    }
                }
            }
            response = try await next(request, context)
        } catch let error as ConsoleError {
            response = error.response(api: api || request.method != .get)
        } catch let error as HTTPError {
            response = ConsoleError(error.status, code: "refused", message: error.body ?? error.status.reasonPhrase).response(api: api)
        } catch let error as any HTTPResponseError {
            response = ConsoleError(error.status, code: "refused", message: error.status.reasonPhrase).response(api: api)
        } catch {
            services.logger.error("console: unexpected error", metadata: ["route": "\(route)", "error": "\(String(reflecting: error))"])
            response = ConsoleError(.internalServerError, code: "internal", message: "unexpected error; it was logged").response(api: api)
        }
        // The page's own static files (scripts, styles, outlines) carry none of the service's data:
        // recorded, they were five chain events per page load saying nothing.
        if let session = context.session, route != "/console/logout", route != "/console/assets/{file}" {
            // Recorded before the answer leaves (never a detached task a shutdown could drop).
            await record(session, request: request, route: route, response: response, requestedAt: requestedAt, started: started,
                         context: context)
        }
        return finish(response, request: request, requestID: context.requestID)
    }

    /// The security headers and the request id on every answer.
    private func finish(_ response: Response, request: Request, requestID: String? = nil) -> Response {
        var response = response
        let h = HTTPField.Name.self
        response.headers[h.init("Content-Security-Policy")!] = Self.contentSecurityPolicy
        response.headers[h.init("X-Content-Type-Options")!] = "nosniff"
        response.headers[h.init("X-Frame-Options")!] = "DENY"
        response.headers[h.init("Referrer-Policy")!] = "same-origin"   // "no-referrer" makes browsers send `Origin: null` with form posts
        response.headers[h.init("Cross-Origin-Opener-Policy")!] = "same-origin"
        response.headers[h.init("Permissions-Policy")!] = "geolocation=(), camera=(), microphone=()"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        if services.configuration.usesTLS { response.headers[.strictTransportSecurity] = "max-age=31536000" }
        if let requestID { response.headers[Self.requestIDHeader] = requestID }
        return response
    }

    /// A change must come from a page of this console: a browser's `Origin` (sent with every
    /// POST) must be this origin, and `Sec-Fetch-Site`, when sent, same-origin.
    private func checkSameOrigin(_ request: Request) throws {
        let scheme = services.configuration.usesTLS ? "https" : "http"
        if let origin = request.headers[.origin] {
            guard let host = request.head.authority, origin == "\(scheme)://\(host)" else {
                throw ConsoleError(.forbidden, code: "cross_origin", message: "changes are accepted only from the console's own pages (nothing was done)")
            }
        }
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site != "same-origin", site != "none" {
            throw ConsoleError(.forbidden, code: "cross_origin", message: "changes are accepted only from the console's own pages (nothing was done)")
        }
    }

    /// The request in the event log, as the operator. A record that cannot be written is logged;
    /// the answer has been given (what the request changed is in the database already, with its
    /// own events).
    private func record(_ session: ConsoleSession, request: Request, route: String, response: Response, requestedAt: Date,
                        started: ContinuousClock.Instant, context: Context) async {
        let latency = ContinuousClock.now - started
        let ms = Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15
        var payload: [String: JSONValue] = [
            "method": .string(request.method.rawValue), "route": .string(route), "status": .int(response.status.code),
            "latency_ms": .double((ms * 100).rounded() / 100), "requested_at": .string(isoUTCMilliseconds(requestedAt)),
            "client_address": .nullable(context.clientAddress), "session": .string(session.id),
            "outcome": .string(response.headers[HTTPField.Name("BloodMatch-Outcome")!] ?? (response.status.code < 400 ? "ok" : "refused")),
        ]
        if let query = request.uri.query, !query.isEmpty { payload["query"] = .string(String(AccessRedaction.query(query).prefix(512))) }
        if route == "unmatched" { payload["path"] = .string(String(AccessRedaction.text(request.uri.path).prefix(256))) }
        let store = PostgresConsoleStore(database: session.database)
        let requestID = context.requestID
        let text = String(decoding: ResponseJSON.encode(.object(payload)), as: UTF8.self)
        do {
            try await withDeadline(.seconds(2)) {
                try await store.record(action: "console.request", subject: route, requestID: requestID, payloadJSON: text)
            }
        } catch {
            services.logger.error("console request not recorded", metadata: [
                "operator": "\(session.operatorName)", "route": "\(route)", "request_id": "\(requestID)", "error": "\(error)"])
        }
    }

    /// A 303 to `location`.
    func redirect(to location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    /// A cookie's value from the `Cookie` headers.
    static func cookie(_ name: String, in headers: HTTPFields) -> String? {
        for line in headers[values: .cookie] {
            for part in line.split(separator: ";") {
                let pair = part.trimmingCharacters(in: .whitespaces)
                if pair.hasPrefix(name + "=") { return String(pair.dropFirst(name.count + 1)) }
            }
        }
        return nil
    }

    /// The caller's request id, or a new one (the API's rule: `acceptableRequestID`).
    static func requestID(_ header: String?) -> String { acceptableRequestID(header) }
}
