import BloodMatchCore
import BloodMatchIngest
import BloodMatchService
import BloodMatchStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The console's pages and its log-in, log-out and session routes (data and actions are in the
/// extensions beside this file).
struct ConsoleHandlers: Sendable {
    let services: ConsoleServices
    let assets: ConsoleAssets

    // MARK: pages

    /// `/console`: the console for a logged-in operator (the gate sends others to the log-in page).
    func page(_ context: ConsoleRequestContext) -> Response {
        assets.response(for: "console.html")
    }

    /// `GET /console/login`, with a fixed message chosen by `?e=` (nothing the visitor sent is echoed).
    func loginPage(_ request: Request) -> Response {
        let messages = [
            "refused": "The name or password was not accepted.",
            "unavailable": "Unable to verify — the database could not be asked. Try again shortly; call the on-call engineer if this lasts.",
            "throttled": "Too many refused log-ins from this address; wait a minute and try again.",
            "expired": "Your session ended (idle, or at the end of its lifetime). Log in again.",
            "logged_out": "You are logged out.",
            "full": "The console has as many sessions open as it allows; try again when one ends.",
        ]
        let key = request.uri.queryParameters.get("e") ?? ""
        let message = messages[key] ?? ""
        var response = assets.response(for: "login.html", replacing: ["{{message}}": message, "{{message_class}}": message.isEmpty ? "message hidden" : "message"])
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// `GET /console/assets/{file}`.
    func asset(_ context: ConsoleRequestContext) throws -> Response {
        let name = try context.parameters.require("file")
        guard assets.contains(name), !name.hasSuffix(".html") else {
            throw ConsoleError(.notFound, code: "not_found", message: "no such file")
        }
        var response = assets.response(for: name)
        response.headers[.cacheControl] = "no-cache"
        return response
    }

    // MARK: log-in and log-out

    /// `POST /console/login` (form: `operator`, `password`): the database judges the password; on
    /// success a session cookie and the console, otherwise the log-in page with a fixed message.
    func login(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let address = context.clientAddress ?? "local"
        if services.loginFailures.wait(address) != nil {
            services.logger.warning("console log-in refused: too many refused log-ins from this address", metadata: ["client_addr": "\(address)"])
            return redirect("/console/login?e=throttled")
        }
        let buffer = try await request.body.collect(upTo: services.configuration.maximumBodyBytes)
        let form = Self.formFields(String(buffer: buffer))
        let name = form["operator"] ?? ""
        let password = form["password"] ?? ""
        let outcome: Result<OperatorRecord, OperatorLoginFailure>
        if name.isEmpty || password.isEmpty || password.utf8.count > 256 {
            outcome = .failure(.refused(serverMessage: "name or password missing or too long"))
        } else {
            do {
                outcome = .success(try await OperatorLogin.authenticate(login: name, password: password, template: services.configuration.operatorDatabase,
                                                                        logger: services.logger))
            } catch {
                outcome = .failure(error)
            }
        }
        switch outcome {
        case .success(let record):
            guard let (token, session) = services.sessions.open(record, password: password, clientAddress: context.clientAddress) else {
                return redirect("/console/login?e=full")
            }
            let payload: JSONValue = ["session": .string(session.id), "role": .string(record.role.rawValue),
                                      "client_address": .nullable(context.clientAddress)]
            do {
                try await recordEvent("console.login", of: session, payload: payload, requestID: context.requestID)
            } catch {
                // A log-in that cannot be recorded does not happen.
                services.sessions.close(token: token)
                services.logger.error("console log-in not recorded; refused", metadata: ["operator": "\(record.name)", "error": "\(error)"])
                return redirect("/console/login?e=unavailable")
            }
            services.logger.info("console log-in", metadata: ["operator": "\(record.name)", "role": "\(record.role.rawValue)", "session": "\(session.id)"])
            var response = redirect("/console")
            response.headers[.setCookie] = sessionCookie(token, maxAge: Int(services.configuration.sessionLifetime.components.seconds))
            return response
        case .failure(let failure):
            if case .unavailable(let reason) = failure {
                services.logger.error("console log-in could not be checked", metadata: ["operator": "\(name.prefix(40))", "reason": "\(reason)"])
                return redirect("/console/login?e=unavailable")
            }
            _ = services.loginFailures.acquire(address)
            let reason: String = switch failure {
            case .notAnOperator: "not a console role"
            default: "refused by the database"
            }
            services.logger.warning("console log-in refused", metadata: ["operator": "\(name.prefix(40))", "reason": "\(failure)",
                                                                         "client_addr": "\(address)"])
            // Recorded as the service (actor `anonymous`); the name only when it could be one.
            let shown = (try? PostgresOperatorStore.validate(name: name)) != nil ? name : "(not a valid login name)"
            let payload: JSONValue = ["operator": .string(shown), "reason": .string(reason), "client_address": .nullable(context.clientAddress)]
            do {
                try await withDeadline(.seconds(3)) {
                    try await PostgresAuditLog(database: services.database).append(NewAuditEvent(
                        actor: "anonymous", action: "console.login_refused", subject: "console",
                        payloadJSON: String(decoding: ResponseJSON.encode(payload), as: UTF8.self), requestID: context.requestID,
                        clientAddress: context.clientAddress))
                }
            } catch {
                services.logger.error("refused console log-in not recorded", metadata: ["error": "\(error)"])
            }
            return redirect("/console/login?e=refused")
        }
    }

    /// `POST /console/logout`.
    func logout(_ request: Request, context: ConsoleRequestContext) async -> Response {
        if let session = context.session {
            let payload: JSONValue = ["session": .string(session.id), "client_address": .nullable(context.clientAddress)]
            do {
                try await recordEvent("console.logout", of: session, payload: payload, requestID: context.requestID)
            } catch {
                services.logger.error("console log-out not recorded", metadata: ["operator": "\(session.operatorName)", "error": "\(error)"])
            }
            services.sessions.close(token: ConsoleMiddleware.cookie(ConsoleMiddleware.cookieName, in: request.headers))
        }
        var response = redirect("/console/login?e=logged_out")
        response.headers[.setCookie] = sessionCookie("", maxAge: 0)
        return response
    }

    /// `GET /console/api/session`: who is logged in, what the page may offer, and the CSRF token.
    func session(_ context: ConsoleRequestContext) throws -> Response {
        guard let session = context.session else { throw ConsoleError(.unauthorized, code: "not_logged_in", message: "log in first") }
        let may = JSONValue.object(Dictionary(uniqueKeysWithValues: ConsoleAction.allCases.map { ($0.rawValue, JSONValue.bool(session.may($0))) }))
        return jsonResponse([
            "operator": .string(session.operatorName), "role": .string(session.role.rawValue), "csrf_token": .string(session.csrfToken),
            "may": may, "idle_timeout_seconds": .int(Int(services.configuration.idleTimeout.components.seconds)),
            "logged_in_at": .string(isoUTC(seconds: Int64(session.loggedInAt.timeIntervalSince1970))),
            // The match form offers every requirement the engine knows, from the engine itself.
            "requirements": .strings(UnitAttribute.allCases.map(\.rawValue)),
        ])
    }

    // MARK: helpers

    /// A `console.*` event about the session's operator, written on their own login within 5 s.
    func recordEvent(_ action: String, of session: ConsoleSession, payload: JSONValue, requestID: String) async throws {
        let text = String(decoding: ResponseJSON.encode(payload), as: UTF8.self)
        try await withDeadline(.seconds(5)) {
            try await PostgresConsoleStore(database: session.database).record(
                action: action, subject: "operator:" + session.operatorName, requestID: requestID, payloadJSON: text)
        }
    }

    func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    /// The session cookie: HttpOnly (no script reads it), Secure (never sent in clear; browsers
    /// accept it from http://localhost for development), SameSite=Strict (never sent with a
    /// request another site starts), scoped to the console's paths.
    func sessionCookie(_ token: String, maxAge: Int) -> String {
        "\(ConsoleMiddleware.cookieName)=\(token); Path=/console; Max-Age=\(maxAge); HttpOnly; Secure; SameSite=Strict"
    }

    /// `application/x-www-form-urlencoded` fields (the last of a repeated name wins).
    static func formFields(_ body: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            guard let name = parts.first else { continue }
            out[decode(name)] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return out
    }
}

/// A JSON answer, not cached.
func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
             body: .init(byteBuffer: ByteBuffer(bytes: ResponseJSON.encode(value))))
}
