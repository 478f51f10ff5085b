import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import Foundation
import Hummingbird
import Logging
import Synchronization

/// The request context: the peer address, the request id and, once its cookie is checked, the
/// operator's session.
public struct ConsoleRequestContext: RequestContext {
    /// Hummingbird's storage.
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address.
    public var clientAddress: String?
    /// The request's id (its valid `X-Request-ID`, or generated): on its record and every row it writes.
    public var requestID: String = ""
    /// The logged-in operator, when the cookie names a live session.
    public var session: ConsoleSession?

    /// Creates a context for one request.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Bodies over 16 KiB are refused (413) when read.
    public var maxUploadSize: Int { 16 * 1024 }
}

/// Everything the console's handlers use, built once per process (tests build their own).
public final class ConsoleServices: Sendable {
    /// Settings.
    public let configuration: ConsoleConfiguration
    /// The service's own pool (role `bloodmatch_app`): reads for the map, the index, refused log-ins.
    public let database: Database
    /// The index and its checks; operators' decisions are made by engines over their own pools
    /// that share this engine's index.
    public let engine: DecisionEngine
    /// Rules, settings and travel times.
    public let planner: MatchPlanner
    /// Index currency: "unable to verify" when the index or the database cannot be trusted.
    public let dataGuard: DataGuard
    /// Held units for the counts.
    public let heldUnits = HeldUnitDirectory()
    /// Logged-in operators.
    public let sessions: ConsoleSessions
    /// Refused log-ins per client address.
    public let loginFailures: RateLimiter
    /// Logger.
    public let logger: Logger
    /// Minimum remaining life per component at issue (Data/matching.json).
    public let minimumRemainingSeconds: [String: Int]
    /// The wall clock (tests pass their own).
    public let now: @Sendable () -> Date
    /// Set when a shutdown is asked for: live streams end within one interval instead of holding
    /// up the server's drain (a stream lasts up to `liveStreamLifetime`).
    let stopping = Mutex(false)

    /// Ends the live streams: called when SIGTERM or SIGINT arrives, before the server drains.
    public func beginStopping() { stopping.withLock { $0 = true } }

    /// Builds the services over a running pool.
    public init(configuration: ConsoleConfiguration, database: Database, engine: DecisionEngine, planner: MatchPlanner,
                minimumRemainingSeconds: [String: Int], logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.configuration = configuration
        self.database = database
        self.engine = engine
        self.planner = planner
        self.dataGuard = DataGuard(engine: engine, interval: .seconds(1), deadline: .seconds(4))
        self.sessions = ConsoleSessions(configuration: configuration, logger: logger)
        self.loginFailures = RateLimiter(rate: configuration.loginFailuresPerMinute / 60, burst: configuration.loginFailureBurst)
        self.logger = logger
        self.minimumRemainingSeconds = minimumRemainingSeconds
        self.now = now
    }

    /// An engine that records as the session's operator (their pool writes; the index is shared).
    func engine(for session: ConsoleSession) async -> DecisionEngine {
        DecisionEngine(database: session.database, readDatabase: database, planner: planner, index: await engine.currentIndex,
                       logger: logger)
    }
}
