import BloodMatchCore
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import BloodMatchConsole
@testable import BloodMatchService

/// The console's gate and log-in, with no database behind it (a socket that does not exist): what
/// a stranger gets, the headers every answer carries, and the fail-safe log-in answer.
@Suite("Console gate")
struct ConsoleGateTests {
    static func services() throws -> ConsoleServices {
        let config = DatabaseConfiguration.embedded(socketPath: "/nonexistent/bm-console-test/.s.PGSQL.1", database: "none", role: .app)
        let logger = Logger(label: "console-test")
        let database = Database(configuration: config, logger: logger)
        let planner = MatchPlanner(rules: try CompatibilityPolicy(jsonData: StockFixture.policyData()), settings: .standard)
        let engine = DecisionEngine(database: database, planner: planner, index: nil, logger: logger)
        var console = ConsoleConfiguration(operatorDatabase: config)
        console.outlines = Data(#"{"type":"FeatureCollection","features":[]}"#.utf8)
        return ConsoleServices(configuration: console, database: database, engine: engine, planner: planner,
                               minimumRemainingSeconds: [:], logger: logger)
    }

    static func withApp(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = try buildConsoleApplication(services: try services(), refreshIndex: false)
        try await app.test(.router) { client in try await body(client) }
    }

    @Test("a stranger is sent to the log-in page; its data routes answer 401; every answer carries the CSP")
    func stranger() async throws {
        try await Self.withApp { client in
            try await client.execute(uri: "/console", method: .get) { r in
                #expect(r.status == .seeOther)
                #expect(r.headers[.location] == "/console/login")
                #expect(r.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("script-src 'self'") == true)
            }
            try await client.execute(uri: "/console/api/overview?component=RBC", method: .get) { r in
                #expect(r.status == .unauthorized)
                #expect(String(buffer: r.body).contains("not_logged_in"))
            }
            try await client.execute(uri: "/console/api/match", method: .post, body: ByteBuffer(string: "{}")) { r in
                #expect(r.status == .unauthorized)
            }
            try await client.execute(uri: "/console/login", method: .get) { r in
                #expect(r.status == .ok)
                let csp = r.headers[HTTPField.Name("Content-Security-Policy")!] ?? ""
                #expect(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"))
                #expect(r.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
                #expect(r.headers[.cacheControl] == "no-store")
                let page = String(buffer: r.body)
                #expect(page.contains("action=\"/console/login\"") && !page.contains("<script>") && !page.contains("{{"))
            }
        }
    }

    @Test("the health probe answers without a session and says the stock cannot be verified while the database is away")
    func healthProbe() async throws {
        try await Self.withApp { client in
            try await client.execute(uri: "/console/health", method: .get) { r in
                #expect(r.status == .ok)
                let body = String(buffer: r.body)
                #expect(body.contains("\"verified\":false") && body.contains("\"sessions\":0"), "\(body)")
            }
        }
    }

    @Test("static files: the script and styles are served; pages and unknown names are not")
    func assets() async throws {
        try await Self.withApp { client in
            try await client.execute(uri: "/console/assets/console.js", method: .get) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType]?.hasPrefix("text/javascript") == true)
            }
            try await client.execute(uri: "/console/assets/countries.geojson", method: .get) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/console/assets/console.html", method: .get) { r in #expect(r.status == .notFound) }
            try await client.execute(uri: "/console/assets/nothing.js", method: .get) { r in #expect(r.status == .notFound) }
        }
    }

    @Test("a log-in posted from another origin is refused before the password is looked at")
    func crossOriginLogin() async throws {
        try await Self.withApp { client in
            try await client.execute(uri: "/console/login", method: .post,
                                     headers: [.origin: "http://evil.example", .contentType: "application/x-www-form-urlencoded"],
                                     body: ByteBuffer(string: "operator=someone&password=x")) { r in
                #expect(r.status == .forbidden)
                #expect(String(buffer: r.body).contains("cross_origin"))
                #expect(r.headers[.setCookie] == nil)
            }
            try await client.execute(uri: "/console/login", method: .post,
                                     headers: [HTTPField.Name("Sec-Fetch-Site")!: "cross-site", .contentType: "application/x-www-form-urlencoded"],
                                     body: ByteBuffer(string: "operator=someone&password=x")) { r in
                #expect(r.status == .forbidden)
            }
        }
    }

    @Test("with the database unreachable a log-in says it could not be checked, never that the password was wrong")
    func loginFailSafe() async throws {
        try await Self.withApp { client in
            try await client.execute(uri: "/console/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                     body: ByteBuffer(string: "operator=dispatcher_one&password=secret")) { r in
                #expect(r.status == .seeOther)
                #expect(r.headers[.location] == "/console/login?e=unavailable")
                #expect(r.headers[.setCookie] == nil)
            }
            try await client.execute(uri: "/console/login?e=unavailable", method: .get) { r in
                #expect(String(buffer: r.body).contains("Unable to verify"))
            }
            // A name that cannot be a login is refused without asking the database.
            try await client.execute(uri: "/console/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                     body: ByteBuffer(string: "operator=Robert%27%3B--&password=x")) { r in
                #expect(r.headers[.location] == "/console/login?e=refused")
            }
        }
    }
}

/// Sessions, cookies and form fields: pure parts of the gate.
@Suite("Console sessions")
struct ConsoleSessionTests {
    static func sessions(idle: Duration = .seconds(60), lifetime: Duration = .seconds(3600), maximum: Int = 2) -> ConsoleSessions {
        var config = ConsoleConfiguration(operatorDatabase: .embedded(socketPath: "/nonexistent/.s.PGSQL.1", role: .app))
        config.idleTimeout = idle
        config.sessionLifetime = lifetime
        config.maximumSessions = maximum
        return ConsoleSessions(configuration: config, logger: Logger(label: "console-test"))
    }

    @Test("a session is found by its token, ends when idle, past its lifetime or at log-out, and sessions are bounded")
    func lifecycle() throws {
        let sessions = Self.sessions()
        let a = try #require(sessions.open(OperatorRecord(name: "disp_a", role: .dispatcher, canLogin: true), password: "x", clientAddress: nil))
        let b = try #require(sessions.open(OperatorRecord(name: "view_b", role: .viewer, canLogin: true), password: "y", clientAddress: nil))
        #expect(sessions.open(OperatorRecord(name: "third", role: .viewer, canLogin: true), password: "z", clientAddress: nil) == nil)
        #expect(a.token != b.token && a.session.csrfToken != b.session.csrfToken && a.token.count == 43)
        guard case .active(let found) = sessions.lookup(token: a.token) else { Issue.record("not found"); return }
        #expect(found.operatorName == "disp_a" && found.may(.issue) && !b.session.may(.issue) && b.session.may(.look))
        guard case .unknown = sessions.lookup(token: a.token + "x") else { Issue.record("a changed token was accepted"); return }
        guard case .expired(let name, let reason) = sessions.lookup(token: a.token, now: .now + .seconds(61)) else {
            Issue.record("an idle session was accepted"); return
        }
        #expect(name == "disp_a" && reason == "idle")
        guard case .unknown = sessions.lookup(token: a.token) else { Issue.record("an ended session came back"); return }
        #expect(sessions.close(token: b.token)?.operatorName == "view_b")
        #expect(sessions.count == 0)
    }

    @Test("the live stream's reconnections do not keep an unattended page's session alive")
    func liveDoesNotTouch() throws {
        let sessions = Self.sessions()
        let a = try #require(sessions.open(OperatorRecord(name: "disp_a", role: .dispatcher, canLogin: true), password: "x", clientAddress: nil))
        guard case .active = sessions.lookup(token: a.token, now: .now + .seconds(50), touch: false) else { Issue.record("not found"); return }
        guard case .expired = sessions.lookup(token: a.token, now: .now + .seconds(61)) else {
            Issue.record("a stream reconnection restarted the idle clock"); return
        }
        #expect(!a.session.isOpen)
    }

    @Test("the sweep ends sessions of logins the database no longer lets log in")
    func sweepDisabled() throws {
        let sessions = Self.sessions()
        let a = try #require(sessions.open(OperatorRecord(name: "disp_a", role: .dispatcher, canLogin: true), password: "x", clientAddress: nil))
        _ = try #require(sessions.open(OperatorRecord(name: "disp_b", role: .dispatcher, canLogin: true), password: "x", clientAddress: nil))
        let ended = sessions.sweep(stillAllowed: { $0 != "disp_b" })
        #expect(ended.map(\.session.operatorName) == ["disp_b"] && ended.map(\.reason) == ["login disabled"])
        guard case .active = sessions.lookup(token: a.token) else { Issue.record("an allowed session ended"); return }
        let late = sessions.sweep(now: .now + .seconds(7200))
        #expect(late.map(\.reason) == ["idle"])
    }

    @Test("cookies, form fields, request ids and route templates")
    func parsing() {
        let headers: HTTPFields = [.cookie: "a=1; bm_console=TOKEN-1; c=3"]
        #expect(ConsoleMiddleware.cookie("bm_console", in: headers) == "TOKEN-1")
        #expect(ConsoleMiddleware.cookie("bm", in: headers) == nil)
        let form = ConsoleHandlers.formFields("operator=disp_a&password=p%2Bq+r%26s&empty=")
        #expect(form["operator"] == "disp_a" && form["password"] == "p+q r&s" && form["empty"] == "")
        #expect(ConsoleMiddleware.requestID("abc-123") == "abc-123")
        #expect(ConsoleMiddleware.requestID("has \"quote\"") != "has \"quote\"")
        #expect(ConsoleRoute.template(for: "/console/api/reservations/6868e249-5eb8-4c04-871f-02f5a63b78cb/issue")
                == "/console/api/reservations/{id}/issue")
        #expect(ConsoleRoute.template(for: "/console/api/other") == "unmatched")
        #expect(ConsoleRoute.isPublic(path: "/console/login", method: .post) && !ConsoleRoute.isPublic(path: "/console/api/session", method: .get))
        #expect(ConsoleSessions.constantTimeEqual("abc", "abc") && !ConsoleSessions.constantTimeEqual("abc", "abd")
                && !ConsoleSessions.constantTimeEqual("abc", "abcd"))
    }
}
