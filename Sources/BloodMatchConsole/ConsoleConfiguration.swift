import BloodMatchStore
import Foundation

/// Settings of `bloodmatch console`, read once at start-up; every field has a documented default.
public struct ConsoleConfiguration: Sendable {
    /// Listen address.
    public var host: String = "127.0.0.1"
    /// Listen port.
    public var port: Int = 8444
    /// PEM certificate chain and private key; when set, the console speaks TLS only (and sends HSTS).
    public var tlsCertificatePath: String?
    /// PEM private key for `tlsCertificatePath`.
    public var tlsKeyPath: String?
    /// A session with no request for this long ends (the operator logs in again).
    public var idleTimeout: Duration = .seconds(15 * 60)
    /// A session ends this long after its log-in, however busy (a shift).
    public var sessionLifetime: Duration = .seconds(12 * 3600)
    /// Sessions open at once (all operators); past it a log-in is refused until one ends.
    public var maximumSessions: Int = 200
    /// Refused log-ins per minute allowed from one client address, and the burst.
    public var loginFailuresPerMinute: Double = 5
    /// See `loginFailuresPerMinute`.
    public var loginFailureBurst: Double = 10
    /// Database connections each logged-in operator's actions use (their own login's pool).
    public var connectionsPerSession: Int = 2
    /// Where operators log in: the endpoint and database of the service's own configuration; each
    /// session's user and password are the operator's.
    public var operatorDatabase: DatabaseConfiguration
    /// Request bodies over this are refused (413).
    public var maximumBodyBytes: Int = 16 * 1024
    /// The longest a request may work before answering "unable to verify".
    public var requestDeadline: Duration = .seconds(6)
    /// How often the live stream tells the page what changed.
    public var liveInterval: Duration = .seconds(2)
    /// How long one live stream lasts before the browser reconnects (so a stream never holds a
    /// connection, or a graceful shutdown, for long).
    public var liveStreamLifetime: Duration = .seconds(120)
    /// Country outlines (GeoJSON) for the map, served to the page as they are.
    public var outlines: Data = Data(#"{"type":"FeatureCollection","features":[]}"#.utf8)
    /// Days of issues over which days of supply are computed.
    public var supplyWindowDays: Int = 28

    /// The defaults, with the database operators log in to.
    public init(operatorDatabase: DatabaseConfiguration) {
        self.operatorDatabase = operatorDatabase
    }

    /// Whether the console speaks TLS.
    public var usesTLS: Bool { tlsCertificatePath != nil && tlsKeyPath != nil }
}
