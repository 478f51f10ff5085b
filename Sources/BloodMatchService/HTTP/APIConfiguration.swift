import Foundation

/// Settings of `bloodmatch serve`, read once at start-up; every field has a documented default.
public struct APIConfiguration: Sendable {
    /// Listen address.
    public var host: String = "127.0.0.1"
    /// Listen port.
    public var port: Int = 8443
    /// PEM certificate chain and private key; when set, the listener speaks TLS only.
    public var tlsCertificatePath: String?
    /// PEM private key for `tlsCertificatePath`.
    public var tlsKeyPath: String?
    /// Request body cap (bytes); over it: 413.
    public var maximumBodyBytes: Int = 64 * 1024
    /// Request target cap (bytes); over it: 414.
    public var maximumURLBytes: Int = 8 * 1024
    /// Total header cap (bytes); over it: 431.
    public var maximumHeaderBytes: Int = 16 * 1024
    /// A connection with no traffic for this long is closed (slow clients).
    public var idleTimeout: Duration = .seconds(30)
    /// The longest a request may work before answering 503 "unable to verify".
    public var requestDeadline: Duration = .seconds(6)
    /// Sustained requests per second per hospital.
    public var rateLimitPerSecond: Double = 20
    /// Burst per hospital.
    public var rateLimitBurst: Double = 40
    /// Requests doing work at once, all hospitals together, for lookups (GET) and for writes each;
    /// past it: 503 with Retry-After.
    public var maximumConcurrentRequests: Int = 64
    /// Requests doing work at once for one hospital (nil: a quarter of `maximumConcurrentRequests`);
    /// past it: 503 `overloaded` for that hospital only.
    public var maximumConcurrentPerHospital: Int?
    /// The longest a request body may take to arrive, whole; past it: 408 and the connection closed.
    public var bodyDeadline: Duration = .seconds(10)
    /// Failed authentications (no key, malformed, unknown) per second allowed from one client
    /// address; past it (and the burst), that address's requests are refused 429 before their key
    /// is looked at.
    public var failedAuthenticationRate: Double = 5
    /// Burst of failed authentications from one client address.
    public var failedAuthenticationBurst: Double = 20
    /// How long an index check against the snapshots in force is reused.
    public var indexVerificationInterval: Duration = .seconds(1)
    /// How long a looked-up API key is reused (a revocation takes effect within this).
    public var keyCacheTTL: Duration = .seconds(5)
    /// Access records per INSERT.
    public var accessBatchSize: Int = 500
    /// Longest wait before access records are written.
    public var accessFlushInterval: Duration = .milliseconds(200)
    /// Access records held before new requests are refused.
    public var accessQueueCapacity: Int = 20_000
    /// The OpenAPI document served at `/openapi.json`.
    public var openAPIDocument: Data = Data("{}".utf8)
    /// Nearest centres listed by `/v1/availability` by default, and the most a caller may ask for.
    public var availabilityDefaultLimit = 20
    /// See `availabilityDefaultLimit`.
    public var availabilityMaximumLimit = 100

    /// The defaults.
    public init() {}
}
