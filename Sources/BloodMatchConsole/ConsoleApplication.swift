import BloodMatchService
import BloodMatchStore
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// Builds the console's HTTP application: its router under `/console`, the gate, the handlers and
/// the background services (the index refresher, and the sweep that ends idle sessions and those
/// of disabled logins). `bloodmatch console` and the tests call this same builder.
public func buildConsoleApplication(services: ConsoleServices, refreshIndex: Bool = true,
                                    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in })
    throws -> some ApplicationProtocol {
    let router = try buildConsoleRouter(services: services)
    let configuration = services.configuration
    let http1 = HTTP1Channel.Configuration(idleTimeout: .seconds(75))
    let server: HTTPServerBuilder
    if let cert = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
        let tls = try serverTLSConfiguration(certificatePath: cert, keyPath: key)
        server = try .tls(.http1(configuration: http1), tlsConfiguration: tls)
    } else {
        server = .http1(configuration: http1)
    }
    var app = Application(router: router, server: server,
                          configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "bloodmatch-console"),
                          onServerRunning: onServerRunning, logger: services.logger)
    if refreshIndex {
        app.addServices(ConsoleIndexRefresher(refresher: IndexRefresher(database: services.database, engine: services.engine)))
    }
    app.addServices(ConsoleSessionSweep(services: services))
    return app
}

/// The console's router (the tests drive it directly).
public func buildConsoleRouter(services: ConsoleServices) throws -> Router<ConsoleRequestContext> {
    let router = Router(context: ConsoleRequestContext.self)
    router.addMiddleware { ConsoleMiddleware(services: services) }
    let handlers = ConsoleHandlers(services: services, assets: try ConsoleAssets(outlines: services.configuration.outlines))
    router.get("/console") { _, context in handlers.page(context) }
    router.get("/console/login") { request, _ in handlers.loginPage(request) }
    router.get("/console/health") { _, _ in await handlers.health() }
    router.post("/console/login") { request, context in try await handlers.login(request, context: context) }
    router.post("/console/logout") { request, context in await handlers.logout(request, context: context) }
    router.get("/console/assets/{file}") { _, context in try handlers.asset(context) }
    router.get("/console/api/session") { _, context in try handlers.session(context) }
    router.get("/console/api/overview") { request, context in try await handlers.overview(request, context: context) }
    router.get("/console/api/live") { _, context in handlers.live(context) }
    router.get("/console/api/orders") { _, context in try await handlers.orders(context) }
    router.get("/console/api/wastage") { _, context in try await handlers.wastage(context) }
    router.get("/console/api/trace") { request, context in try await handlers.trace(request, context: context) }
    router.post("/console/api/match") { request, context in try await handlers.match(request, context: context) }
    router.post("/console/api/reservations") { request, context in try await handlers.reserve(request, context: context) }
    router.post("/console/api/reservations/{id}/release") { request, context in try await handlers.release(request, context: context) }
    router.post("/console/api/reservations/{id}/issue") { request, context in try await handlers.issue(request, context: context) }
    return router
}

/// Keeps the shared index current (rebuilt after imports, as `serve` does).
struct ConsoleIndexRefresher: Service {
    let refresher: IndexRefresher
    func run() async throws {
        await cancelWhenGracefulShutdown { await refresher.run() }
    }
}

/// Every 30 s: ends idle sessions, those past their lifetime, and those whose login the database
/// no longer lets log in (`operator disable`), recording each end as the service.
struct ConsoleSessionSweep: Service {
    let services: ConsoleServices
    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(30))
                await sweep()
            }
        }
    }

    func sweep() async {
        var allowed: Set<String>?
        if services.sessions.count > 0 {
            let database = services.database
            allowed = try? await withDeadline(.seconds(3)) {
                Set(try await PostgresOperatorStore(database: database).list().filter(\.canLogin).map(\.name))
            }
        }
        let ended = services.sessions.sweep(stillAllowed: { name in allowed.map { $0.contains(name) } ?? true })
        for (session, reason) in ended {
            services.logger.info("console session ended", metadata: ["operator": "\(session.operatorName)", "reason": "\(reason)", "session": "\(session.id)"])
        }
    }
}
