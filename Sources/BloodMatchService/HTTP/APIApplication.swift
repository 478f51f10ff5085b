import BloodMatchCore
import BloodMatchStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// The request context: the body cap, the peer address, the request id and, once verified, the caller.
public struct APIRequestContext: RequestContext {
    /// Hummingbird's storage.
    public var coreContext: CoreRequestContextStorage
    /// The hospital and key, set by `APIMiddleware` for `/v1` routes.
    public var caller: AuthenticatedCaller?
    /// The peer's IP address.
    public var clientAddress: String?
    /// The request's W3C trace id (32 hex digits), set by `TraceMiddleware`: stored on the access
    /// record and on the decision and reservation rows the request writes.
    public var traceID: String?
    /// The request's id (its valid `X-Request-ID`, or generated), set by `APIMiddleware`: on the
    /// access record, the response, and every decision, reservation and unit event it writes.
    public var requestID: String?

    /// Creates a context for one request.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Bodies over 64 KiB are refused (413) when read.
    public var maxUploadSize: Int { 64 * 1024 }
}

/// Everything the handlers use, built once per process (tests build their own).
public final class APIServices: Sendable {
    /// Settings.
    public let configuration: APIConfiguration
    /// The pool (role `bloodmatch_app`).
    public let database: Database
    /// The pool of lookups (keys, held units, sites, index checks, reads of decisions and holds):
    /// writes cannot take its connections, so a stalled write path does not stall lookups.
    public let lookupDatabase: Database
    /// Matching and recording.
    public let engine: DecisionEngine
    /// Rules, settings and travel times.
    public let planner: MatchPlanner
    /// Index currency.
    public let dataGuard: DataGuard
    /// Bearer keys.
    public let authenticator: APIKeyAuthenticator
    /// Per-hospital rate limit.
    public let rateLimiter: RateLimiter
    /// Bound on requests in flight that write (POST, DELETE), with each hospital's share.
    public let budget: ConcurrencyBudget
    /// Bound on lookups in flight (GET), with each hospital's share: stalled writes cannot take
    /// the slots lookups need.
    public let lookupBudget: ConcurrencyBudget
    /// Failed authentications per client address: charged only when a key is refused.
    public let failureLimiter: RateLimiter
    /// Access records.
    public let recorder: AccessRecorder
    /// Metrics.
    public let metrics: ServiceMetrics
    /// Logger.
    public let logger: Logger
    /// The wall clock: when each request arrived (tests pass their own).
    public let now: @Sendable () -> Date
    let sites = SiteDirectory()
    let expiryTables = ExpiryTables()
    /// Held units for availability counts.
    let heldUnits = HeldUnitDirectory()

    /// Builds the services over a running pool.
    /// `lookupDatabase` defaults to `database` (one pool for everything, as in tests).
    public init(configuration: APIConfiguration, database: Database, lookupDatabase: Database? = nil, engine: DecisionEngine,
                planner: MatchPlanner, metrics: ServiceMetrics, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.configuration = configuration
        self.database = database
        self.lookupDatabase = lookupDatabase ?? database
        self.engine = engine
        self.planner = planner
        self.dataGuard = DataGuard(engine: engine, interval: configuration.indexVerificationInterval,
                                   deadline: min(configuration.requestDeadline, .seconds(4)))
        self.authenticator = APIKeyAuthenticator(lookup: PostgresAPIKeyStore(database: lookupDatabase ?? database), cacheTTL: configuration.keyCacheTTL)
        self.rateLimiter = RateLimiter(rate: configuration.rateLimitPerSecond, burst: configuration.rateLimitBurst)
        self.budget = ConcurrencyBudget(limit: configuration.maximumConcurrentRequests, perKeyLimit: configuration.maximumConcurrentPerHospital)
        self.lookupBudget = ConcurrencyBudget(limit: configuration.maximumConcurrentRequests, perKeyLimit: configuration.maximumConcurrentPerHospital)
        self.failureLimiter = RateLimiter(rate: configuration.failedAuthenticationRate, burst: configuration.failedAuthenticationBurst)
        let log = PostgresAccessLog(database: database)
        self.recorder = AccessRecorder(writer: { try await log.append($0) }, logger: logger,
                                       capacity: configuration.accessQueueCapacity, batchSize: configuration.accessBatchSize,
                                       interval: configuration.accessFlushInterval, now: now)
        self.metrics = metrics
        self.logger = logger
        self.now = now
    }
}

/// Hospital sites by id, loaded from the database on first use and again (at most once a
/// minute) when an unknown id is asked for.
actor SiteDirectory {
    private var locations: [String: GeoPoint] = [:]
    private var loadedAt: ContinuousClock.Instant?

    func location(of hospital: String, database: Database) async throws -> GeoPoint? {
        if let known = locations[hospital] { return known }
        if let loadedAt, ContinuousClock.now - loadedAt < .seconds(60) { return nil }
        let sites = try await answerWithin(.seconds(3)) { try await PostgresSiteStore(database: database).all() }
        locations = Dictionary(sites.filter { $0.kind == .hospital }.map { ($0.id, $0.location) }, uniquingKeysWith: { a, _ in a })
        loadedAt = .now
        return locations[hospital]
    }
}

/// Builds the HTTP application: router, middleware, handlers and the background services
/// (access recorder, and the index refresher when `refreshIndex`). `serve` and the tests call
/// this same builder.
public func buildApplication(services: APIServices, refreshIndex: Bool = true,
                             onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in })
    throws -> some ApplicationProtocol {
    let router = Router(context: APIRequestContext.self)
    router.addMiddleware { TraceMiddleware() }
    router.addMiddleware { APIMiddleware(services: services) }
    let handlers = APIHandlers(services: services)
    for route in APIRoute.allCases {
        router.on(RouterPath(route.path), method: route.method) { request, context in
            try await handlers.handle(route, request: request, context: context)
        }
        // HEAD on every GET route: the same answer, its body dropped by the middleware.
        if route.method == .get {
            router.on(RouterPath(route.path), method: .head) { request, context in
                try await handlers.handle(route, request: request, context: context)
            }
        }
    }
    let configuration = services.configuration
    var http1 = HTTP1Channel.Configuration(idleTimeout: .nanoseconds(ServiceMetrics.nanoseconds(configuration.idleTimeout)))
    http1.httpDecoder = .init(maxHeaderFieldSize: 64 * 1024, maxHeaderListSize: 80 * 1024, maxHeaderFieldCount: 200)
    let server: HTTPServerBuilder
    if let cert = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
        let tls = try serverTLSConfiguration(certificatePath: cert, keyPath: key)
        server = try .tls(http1Server(http1), tlsConfiguration: tls)
    } else {
        server = http1Server(http1)
    }
    var app = Application(router: router, server: server,
                          configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                               serverName: "bloodmatch"),
                          onServerRunning: onServerRunning, logger: services.logger)
    // Shut down in reverse order: the server drains first, then the refresher stops, then the
    // recorder flushes what the last requests queued (the pool itself outlives the application).
    app.addServices(services.recorder)
    if refreshIndex {
        var refresher = IndexRefresher(database: services.database, engine: services.engine)
        let metrics = services.metrics
        refresher.onRebuild = { index, duration in metrics.indexRebuilt(index, duration: duration) }
        app.addServices(IndexRefresherService(refresher: refresher))
    }
    app.addServices(DomainMetricsService(metrics: services.metrics, database: services.lookupDatabase, engine: services.engine,
                                         interval: .seconds(15), logger: services.logger))
    return app
}

/// The TLS settings of every BloodMatch listener: the PEM chain and key, TLS 1.2 at least, and for
/// TLS 1.2 forward-secret AEAD suites only (ECDHE with AES-GCM or ChaCha20-Poly1305), as RFC 9325
/// §4.2 recommends; TLS 1.3's suites are all of that kind already.
public func serverTLSConfiguration(certificatePath: String, keyPath: String) throws -> TLSConfiguration {
    let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
    let privateKey = try NIOSSLPrivateKey(file: keyPath, format: .pem)
    var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
    tls.minimumTLSVersion = .tlsv12
    tls.cipherSuiteValues = [.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                             .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                             .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256]
    return tls
}

/// Runs an `IndexRefresher` as a ServiceLifecycle service (cancelled on graceful shutdown).
struct IndexRefresherService: Service {
    let refresher: IndexRefresher
    func run() async throws {
        await cancelWhenGracefulShutdown { await refresher.run() }
    }
}

/// HTTP/1 with `HTTP1KeepAliveHandler`: a request that does not ask to keep its connection has it
/// closed after the answer.
func http1Server(_ configuration: HTTP1Channel.Configuration) -> HTTPServerBuilder {
    HTTPServerBuilder { responder in
        KeepAliveRespectingHTTP1Channel(base: HTTP1Channel(responder: responder, configuration: configuration))
    }
}
