import CoreMetrics
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The database could not be used; every caller maps this to "unable to verify", never to "no units".
public struct DatabaseUnavailableError: Error, Sendable, CustomStringConvertible {
    /// Which database, without secrets.
    public var target: String
    /// What went wrong, as the driver reported it.
    public var underlying: String
    /// Creates the error.
    public init(target: String, underlying: String) {
        self.target = target
        self.underlying = underlying
    }
    public var description: String { "database \(target) is unavailable: \(underlying)" }
}

/// A pooled PostgreSQL client with its run loop, for one role.
///
/// The only type outside this target that touches PostgreSQL: callers get repositories from it.
public final class Database: Sendable {
    /// The pool.
    public let client: PostgresClient
    /// The configuration it was built from.
    public let configuration: DatabaseConfiguration
    /// Logger for database work.
    public let logger: Logger
    /// Pool usage, errors and spans around the store's calls.
    public let observer: DatabaseObserver

    /// Builds the pool; it does nothing until `run()` is running. Pool metrics go to
    /// `metricsFactory` (the process-wide `MetricsSystem` when nil), labelled with `pool`.
    public init(configuration: DatabaseConfiguration, logger: Logger, metricsFactory: (any MetricsFactory)? = nil, pool: String = "main") {
        var config: PostgresClient.Configuration
        switch configuration.endpoint {
        case .socket(let path):
            config = .init(unixSocketPath: path, username: configuration.username,
                           password: configuration.password, database: configuration.database)
        case .tcp(let host, let port):
            config = .init(host: host, port: port, username: configuration.username,
                           password: configuration.password, database: configuration.database,
                           tls: configuration.requireTLS ? .require(.makeClientConfiguration()) : .disable)
        }
        config.options.maximumConnections = configuration.maximumConnections
        config.options.connectTimeout = configuration.connectTimeout
        // plan_cache_mode applies to named prepared statements only: the decision record and the unit
        // re-check (arrays through unnest), whose custom plans were never judged worth giving up, so
        // each was planned again at every execution (12 % of the database's CPU under load).
        var startup: [(String, String)] = [("search_path", "bm"), ("TimeZone", "UTC"), ("application_name", "bloodmatch"),
                                           ("plan_cache_mode", "force_generic_plan")]
        if let role = configuration.setRole { startup.append(("role", role)) }
        config.options.additionalStartupParameters = startup
        // The pool's own chatter (for example a lease requested a moment before `run()` starts) is
        // kept to errors; failures reach callers as thrown errors.
        var background = logger
        background.logLevel = .error
        self.client = PostgresClient(configuration: config, backgroundLogger: background)
        self.configuration = configuration
        self.logger = logger
        self.observer = DatabaseObserver(maximumConnections: configuration.maximumConnections, factory: metricsFactory, pool: pool)
    }

    /// Runs `body` as the named database operation: counted in the pool metrics, timed, and a
    /// client span under the current trace (see `DatabaseObserver`).
    public func observe<T>(
        _ operation: String, isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        try await observer.observe(operation, isolation: isolation, body)
    }

    /// Runs the pool until cancelled (a ServiceLifecycle service does the same).
    public func run() async { await client.run() }

    /// Runs `body` with a live pool, then shuts the pool down: the shape every CLI command uses.
    public static func with<T: Sendable>(
        _ configuration: DatabaseConfiguration, logger: Logger,
        _ body: @Sendable (Database) async throws -> T
    ) async throws -> T {
        let database = Database(configuration: configuration, logger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { await database.run(); return nil }
            defer { group.cancelAll() }
            try await database.ping()
            let value = try await body(database)
            return value
        }
    }

    /// Checks that the server answers within the connect timeout; throws `DatabaseUnavailableError`.
    public func ping() async throws {
        do {
            _ = try await observe("ping") {
                if case .socket(let path) = configuration.endpoint, !FileManager.default.fileExists(atPath: path) {
                    // Said at once: waiting out the connect timeout for a socket that is not there helps nobody.
                    throw DatabaseUnavailableError(target: configuration.displayName, underlying: "no server socket at \(path)")
                }
                try await withDeadline(configuration.connectTimeout) { [client, logger] in
                    try await client.query("SELECT 1", logger: logger)
                }
            }
        } catch {
            // The pool retries a refused login until the deadline and then reports only the time
            // spent; one direct attempt names the server's reason (a wrong password, no such
            // database, no pg_hba.conf entry), which is what the operator has to fix.
            let reason = await refusalReason() ?? serverMessage(error)
            throw DatabaseUnavailableError(target: configuration.displayName, underlying: reason)
        }
    }

    /// The server's message when a single direct connection attempt is refused, nil otherwise.
    func refusalReason() async -> String? {
        let c = configuration
        let config: PostgresConnection.Configuration
        switch c.endpoint {
        case .socket(let path):
            // No socket file: no server listens there (not started, or another port or folder).
            guard FileManager.default.fileExists(atPath: path) else {
                return "no server socket at \(path): the database is not running there (start it with `Jobs/db.sh start`, or check BLOODMATCH_DB_SOCKET / BLOODMATCH_DB_PORT)"
            }
            config = .init(unixSocketPath: path, username: c.username, password: c.password, database: c.database)
        case .tcp(let host, let port):
            // With TLS required the pool's own error stands (no second TLS set-up here).
            guard !c.requireTLS else { return nil }
            config = .init(host: host, port: port, username: c.username, password: c.password, database: c.database, tls: .disable)
        }
        let logger = self.logger
        let attempt = try? await withDeadline(.seconds(1)) { () -> String? in
            do {
                let conn = try await PostgresConnection.connect(configuration: config, id: 0, logger: logger)
                try? await conn.close()
                return nil
            } catch let error as PSQLError {
                return error.serverInfo?[.message]
            }
        }
        return attempt ?? nil
    }
}

/// The operation did not finish within its deadline.
public struct DeadlineExceededError: Error, Sendable, CustomStringConvertible {
    /// The deadline that passed.
    public var deadline: Duration
    /// Creates the error.
    public init(deadline: Duration) { self.deadline = deadline }
    public var description: String { "no answer within \(deadline)" }
}

/// Runs `operation` and answers by `deadline` whatever it does: on time its result, otherwise
/// `DeadlineExceededError`, while the operation is cancelled and left to finish in the background.
///
/// A task group would wait for its children, so an operation that ignores cancellation (a query
/// waiting on a lock, a connection attempt to a paused server) would hold the answer past the
/// deadline; this returns on time, which is what "answer within the deadline" needs.
public func withDeadline<T: Sendable>(
    _ deadline: Duration, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let work = Task { try await operation() }
    let gate = DeadlineGate<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            gate.install(continuation)
            let timer = Task {
                try? await Task.sleep(for: deadline)
                if !Task.isCancelled, gate.resume(with: .failure(DeadlineExceededError(deadline: deadline))) { work.cancel() }
            }
            Task {
                let result = await work.result
                gate.resume(with: result)
                // The timer is no longer needed: cancelling it ends its sleep now instead of
                // leaving one sleeping task per call for the whole deadline.
                timer.cancel()
            }
        }
    } onCancel: {
        work.cancel()
    }
}

/// Runs `operation`, cancels it at `deadline` and waits for it to end, then throws
/// `DeadlineExceededError`; nothing is left running behind.
///
/// Use it, not `withDeadline`, when what the operation reads or writes is used again after the
/// answer: a request body whose connection the server reads next (two readers of one stream trap),
/// a partial file that is removed. The operation must honour cancellation (NIO streams and the
/// HTTP client do), or the answer waits for it.
public func withDeadlineAwaitingCancellation<T: Sendable>(
    _ deadline: Duration, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: deadline)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DeadlineExceededError(deadline: deadline) }
        return value
    }
}

/// Resumes a continuation exactly once, from whichever side comes first.
private final class DeadlineGate<T: Sendable>: Sendable {
    private let state = Mutex<(CheckedContinuation<T, any Error>?, Result<T, any Error>?, Bool)>((nil, nil, false))

    func install(_ continuation: CheckedContinuation<T, any Error>) {
        let early: Result<T, any Error>? = state.withLock { s in
            if let result = s.1 { return result }
            s.0 = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    /// True when this call was the one that answered.
    @discardableResult
    func resume(with result: Result<T, any Error>) -> Bool {
        let (continuation, first): (CheckedContinuation<T, any Error>?, Bool) = state.withLock { s in
            guard !s.2 else { return (nil, false) }
            s.2 = true
            if let c = s.0 {
                s.0 = nil
                return (c, true)
            }
            s.1 = result
            return (nil, true)
        }
        continuation?.resume(with: result)
        return first
    }
}

extension Database {
    /// How far this host's clock is from the database server's: server minus local, in seconds,
    /// with the local time taken as the midpoint of the round trip.
    public func clockSkew(localClock: @Sendable () -> Date = Date.init) async throws -> Double {
        try await observe("clock_skew") {
            let before = localClock()
            var server = before
            for try await (at,) in try await client.query("SELECT clock_timestamp()", logger: logger).decode((Date,).self) { server = at }
            let after = localClock()
            let local = before.addingTimeInterval(after.timeIntervalSince(before) / 2)
            return server.timeIntervalSince(local)
        }
    }
}
