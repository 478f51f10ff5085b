import BloodMatchStore
import Foundation
import Logging

/// Everything the commands read from the environment, read once at start-up.
///
/// | key | meaning | default |
/// |---|---|---|
/// | `DATABASE_URL` | a PostgreSQL server to use instead of the embedded cluster | unset |
/// | `BLOODMATCH_DB_SOCKET` | the embedded cluster's socket file | `.pgdata/socket-path` as written by `Jobs/db.sh` |
/// | `BLOODMATCH_DB_NAME` | the embedded cluster's database name | `bloodmatch` |
/// | `BLOODMATCH_POLICY` | the transfusion policy file | `Data/policy.json` |
/// | `BLOODMATCH_LOG_LEVEL` | `trace` … `critical` | `info` |
struct Environment: Sendable {
    var databaseURL: String?
    var socketPath: String
    var databaseName: String
    var logLevel: Logger.Level

    static let current: Environment = {
        let env = ProcessInfo.processInfo.environment
        let socketPath: String
        if let s = env["BLOODMATCH_DB_SOCKET"], !s.isEmpty {
            socketPath = s
        } else if let s = try? String(contentsOfFile: ".pgdata/socket-path", encoding: .utf8) {
            socketPath = s.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            socketPath = ".pgdata/sock/.s.PGSQL.54329"
        }
        return Environment(
            databaseURL: env["DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 },
            socketPath: socketPath,
            databaseName: env["BLOODMATCH_DB_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "bloodmatch",
            logLevel: env["BLOODMATCH_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info)
    }()

    /// The database configuration for one role.
    func database(role: DatabaseConfiguration.Role) throws -> DatabaseConfiguration {
        if let url = databaseURL {
            return try DatabaseConfiguration.parse(url: url, role: role)
        }
        return .embedded(socketPath: socketPath, database: databaseName, role: role)
    }
}

/// Sets up JSON logging once per process; returns the logger for a command.
func makeLogger(_ label: String) -> Logger {
    LoggingBootstrap.once
    return Logger(label: label)
}

private enum LoggingBootstrap {
    static let once: Void = {
        let level = Environment.current.logLevel
        LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: level) }
    }()
}
