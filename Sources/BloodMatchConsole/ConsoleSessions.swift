import BloodMatchStore
import Crypto
import Foundation
import Logging
import Synchronization

/// One logged-in operator: who, in which group, the CSRF token their page sends with every change,
/// and the pool of connections that acts as them (their own database login, so the database's
/// grants decide what they may do and its stamp records them on every row and event).
///
/// The operator's password lives only in that pool's configuration (the pool needs it to reconnect
/// after a database restart), in this process's memory, until the session ends; it is never
/// written anywhere.
public final class ConsoleSession: Sendable {
    /// A short, non-secret name for logs and records: the first 12 hex digits of the token's SHA-256.
    public let id: String
    /// The login.
    public let operatorName: String
    /// Its group.
    public let role: OperatorRole
    /// The token the page sends in `X-CSRF-Token` with every change.
    public let csrfToken: String
    /// The operator's own pool.
    public let database: Database
    /// When the operator logged in.
    public let loggedInAt: Date
    /// The browser's address at log-in.
    public let clientAddress: String?
    let started: ContinuousClock.Instant
    let lastSeen: Mutex<ContinuousClock.Instant>
    let pool: Task<Void, Never>

    init(id: String, operatorName: String, role: OperatorRole, csrfToken: String, database: Database, loggedInAt: Date,
         clientAddress: String?, now: ContinuousClock.Instant) {
        self.id = id
        self.operatorName = operatorName
        self.role = role
        self.csrfToken = csrfToken
        self.database = database
        self.loggedInAt = loggedInAt
        self.clientAddress = clientAddress
        self.started = now
        self.lastSeen = Mutex(now)
        self.pool = Task { await database.run() }
    }

    /// Whether the session is still open (not logged out, expired or swept).
    public var isOpen: Bool { !pool.isCancelled }

    /// Whether the page may offer, and the console accept, an action. The database decides again
    /// on every write (a viewer's login cannot insert a decision, hold or distribution).
    public func may(_ action: ConsoleAction) -> Bool {
        switch action {
        case .look: true
        case .match, .reserve, .release, .issue: role == .dispatcher || role == .supervisor
        }
    }
}

/// What an operator can ask the console to do.
public enum ConsoleAction: String, Sendable, CaseIterable {
    /// Read the map, orders, decisions and traces.
    case look
    /// Match a request (records a decision).
    case match
    /// Hold a decision's units.
    case reserve
    /// Release a hold.
    case release
    /// Issue held units (a distribution record per unit).
    case issue
}

/// The sessions of this console process, by the SHA-256 of their token (the token itself is kept
/// only by the browser, in an HttpOnly cookie).
///
/// Sessions live in this process: after a restart, or behind another instance, the operator logs
/// in again (what they did is in the database already; nothing of theirs is lost).
public final class ConsoleSessions: Sendable {
    /// Why a token does not name a session.
    public enum Lookup: Sendable {
        /// A live session.
        case active(ConsoleSession)
        /// It did, but it ended: idle too long, or past its lifetime.
        case expired(operatorName: String, reason: String)
        /// No such session (never, logged out, or this process restarted since).
        case unknown
    }

    let configuration: ConsoleConfiguration
    let logger: Logger
    private let sessions = Mutex<[String: ConsoleSession]>([:])

    /// Creates an empty registry.
    public init(configuration: ConsoleConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Sessions open now.
    public var count: Int { sessions.withLock { $0.count } }

    /// Opens a session for an operator the database has just authenticated; returns the token for
    /// the cookie. Nil when `maximumSessions` are open.
    public func open(_ record: OperatorRecord, password: String, clientAddress: String?, now: Date = Date()) -> (token: String, session: ConsoleSession)? {
        let token = Self.randomToken()
        let digest = Self.digest(token)
        var config = configuration.operatorDatabase
        config.username = record.name
        config.password = password
        config.setRole = nil
        config.maximumConnections = configuration.connectionsPerSession
        var sessionLogger = logger
        sessionLogger[metadataKey: "operator"] = "\(record.name)"
        let database = Database(configuration: config, logger: sessionLogger, pool: "console")
        let session = ConsoleSession(id: String(digest.prefix(12)), operatorName: record.name, role: record.role,
                                     csrfToken: Self.randomToken(), database: database, loggedInAt: now, clientAddress: clientAddress,
                                     now: .now)
        let opened = sessions.withLock { all -> Bool in
            guard all.count < configuration.maximumSessions else { return false }
            all[digest] = session
            return true
        }
        guard opened else {
            session.pool.cancel()
            return nil
        }
        return (token, session)
    }

    /// The session a cookie's token names, its idle clock restarted unless `touch` is false (the
    /// live stream, which reconnects by itself, must not keep an unattended page's session alive).
    public func lookup(token: String?, now: ContinuousClock.Instant = .now, touch: Bool = true) -> Lookup {
        guard let token, !token.isEmpty, token.utf8.count <= 128 else { return .unknown }
        let digest = Self.digest(token)
        let (found, ended): (ConsoleSession?, String?) = sessions.withLock { all in
            guard let session = all[digest] else { return (nil, nil) }
            if let reason = expiry(of: session, now: now) {
                all[digest] = nil
                return (session, reason)
            }
            if touch { session.lastSeen.withLock { $0 = now } }
            return (session, nil)
        }
        guard let found else { return .unknown }
        if let ended {
            found.pool.cancel()
            return .expired(operatorName: found.operatorName, reason: ended)
        }
        return .active(found)
    }

    /// Ends the session a token names (log-out). Returns it when there was one.
    @discardableResult
    public func close(token: String?) -> ConsoleSession? {
        guard let token else { return nil }
        let session = sessions.withLock { $0.removeValue(forKey: Self.digest(token)) }
        session?.pool.cancel()
        return session
    }

    /// Ends every session that is idle too long or past its lifetime, or whose login the database
    /// no longer lets log in (`stillAllowed` false); returns those ended, with why.
    public func sweep(now: ContinuousClock.Instant = .now, stillAllowed: (String) -> Bool = { _ in true })
        -> [(session: ConsoleSession, reason: String)] {
        let ended: [(ConsoleSession, String)] = sessions.withLock { all in
            var out: [(ConsoleSession, String)] = []
            for (digest, session) in all {
                let reason = expiry(of: session, now: now) ?? (stillAllowed(session.operatorName) ? nil : "login disabled")
                if let reason {
                    all[digest] = nil
                    out.append((session, reason))
                }
            }
            return out
        }
        for (session, _) in ended { session.pool.cancel() }
        return ended.map { (session: $0.0, reason: $0.1) }
    }

    /// Names of the operators with a session open.
    public var operatorNames: Set<String> { sessions.withLock { Set($0.values.map(\.operatorName)) } }

    private func expiry(of session: ConsoleSession, now: ContinuousClock.Instant) -> String? {
        if now - session.lastSeen.withLock({ $0 }) > configuration.idleTimeout { return "idle" }
        if now - session.started > configuration.sessionLifetime { return "lifetime" }
        return nil
    }

    /// 32 random bytes, URL-safe base64 without padding (43 characters).
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Hex SHA-256 of a token.
    static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether two secrets are equal, in time that does not depend on where they differ.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}
