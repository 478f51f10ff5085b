import Foundation

/// Where and as whom to connect to PostgreSQL; read once at the edge (the CLI) and passed down.
public struct DatabaseConfiguration: Sendable, Hashable {
    /// How the server is reached.
    public enum Endpoint: Sendable, Hashable {
        /// A unix-domain socket file, e.g. `.pgdata/sock/.s.PGSQL.54329`.
        case socket(path: String)
        /// TCP host and port.
        case tcp(host: String, port: Int)
    }

    /// The BloodMatch database roles, each with only the privileges its job needs.
    public enum Role: String, Sendable, Hashable, CaseIterable {
        /// Owns the schema; runs migrations.
        case owner = "bloodmatch_owner"
        /// The service and dispatcher commands: reads stock, appends decisions and events.
        case app = "bloodmatch_app"
        /// The import jobs: loads snapshots, appends import runs and rejected rows.
        case importer = "bloodmatch_import"
    }

    /// Server endpoint.
    public var endpoint: Endpoint
    /// Login user.
    public var username: String
    /// Password, if the server asks for one.
    public var password: String?
    /// Database name.
    public var database: String
    /// When set, every connection runs as this role (`SET ROLE` at startup): used when one login
    /// (from `DATABASE_URL`) is a member of the BloodMatch roles.
    public var setRole: String?
    /// Whether TCP connections require TLS.
    public var requireTLS: Bool
    /// Upper bound on pooled connections.
    public var maximumConnections: Int
    /// How long to wait for a connection before reporting the database unavailable.
    public var connectTimeout: Duration

    /// Creates a configuration.
    public init(
        endpoint: Endpoint, username: String, password: String? = nil, database: String,
        setRole: String? = nil, requireTLS: Bool = false, maximumConnections: Int = 8,
        connectTimeout: Duration = .seconds(5)
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.setRole = setRole
        self.requireTLS = requireTLS
        self.maximumConnections = maximumConnections
        self.connectTimeout = connectTimeout
    }

    /// Why a database URL could not be used.
    public struct URLError: Error, Sendable, CustomStringConvertible {
        /// The URL with any password masked.
        public var maskedURL: String
        /// What is wrong with it.
        public var reason: String
        public var description: String { "DATABASE_URL '\(maskedURL)' is not usable: \(reason)" }
    }

    /// Parses `postgres://user:password@host:port/database[?sslmode=require]`; a `host` query
    /// parameter naming a directory selects its unix socket, as libpq does.
    public static func parse(url text: String, role: Role) throws(URLError) -> DatabaseConfiguration {
        let masked = text.replacingOccurrences(of: #"://([^:@/]*):[^@/]*@"#, with: "://$1:***@", options: .regularExpression)
        guard let components = URLComponents(string: text),
              let scheme = components.scheme, scheme == "postgres" || scheme == "postgresql"
        else { throw URLError(maskedURL: masked, reason: "expected postgres://user:password@host:port/database") }
        guard let user = components.user, !user.isEmpty else {
            throw URLError(maskedURL: masked, reason: "no user name")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw URLError(maskedURL: masked, reason: "no database name") }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let port = components.port ?? 5432
        let endpoint: Endpoint
        if let socketDir = query["host"], socketDir.hasPrefix("/") {
            endpoint = .socket(path: "\(socketDir)/.s.PGSQL.\(port)")
        } else if let host = components.host, !host.isEmpty {
            endpoint = .tcp(host: host, port: port)
        } else {
            throw URLError(maskedURL: masked, reason: "no host")
        }
        let sslmode = query["sslmode"] ?? "prefer"
        return DatabaseConfiguration(
            endpoint: endpoint, username: user, password: components.password?.removingPercentEncoding,
            database: database, setRole: user == role.rawValue ? nil : role.rawValue,
            requireTLS: ["require", "verify-ca", "verify-full"].contains(sslmode))
    }

    /// The embedded default cluster started by `Jobs/db.sh`: socket login as the role itself.
    public static func embedded(socketPath: String, database: String = "bloodmatch", role: Role) -> DatabaseConfiguration {
        DatabaseConfiguration(endpoint: .socket(path: socketPath), username: role.rawValue, database: database)
    }

    /// A short description for logs and errors, never including the password.
    public var displayName: String {
        switch endpoint {
        case .socket(let path): "\(username)@\(database) via \(path)"
        case .tcp(let host, let port): "\(username)@\(host):\(port)/\(database)"
        }
    }
}
