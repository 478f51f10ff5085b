import BloodMatchFeeds
import BloodMatchService
import BloodMatchStore
import Foundation
import Logging
import ServiceLifecycle
import Tracing

/// Everything the commands read from the environment, read once at start-up.
///
/// | key | meaning | default |
/// |---|---|---|
/// | `DATABASE_URL` | a PostgreSQL server to use instead of the embedded cluster | unset |
/// | `BLOODMATCH_DB_SOCKET` | the embedded cluster's socket file | `.pgdata/socket-path` as written by `Jobs/db.sh` |
/// | `BLOODMATCH_DB_NAME` | the embedded cluster's database name | `bloodmatch` |
/// | `BLOODMATCH_POLICY` | the transfusion policy file | `Data/policy.json` |
/// | `BLOODMATCH_LOG_LEVEL` | `trace` … `critical` | `info` |
/// | `BLOODMATCH_OPERATOR` | the operator or job login to act as (`bloodmatch operator add`); the database authenticates it and records it on every event | unset: the shared service role, recorded as `role:bloodmatch_app` |
/// | `BLOODMATCH_OPERATOR_PASSWORD_FILE` | that login's password file | `~/.config/bloodmatch/operators/<login>` |
/// | `BLOODMATCH_REQUEST_ID` | the request id recorded on every event of this command | generated per command |
/// | `BLOODMATCH_HOLD_MINUTES` | default length of a reservation hold (operational, 1–4320) | `240` |
/// | `BLOODMATCH_FAULT` | test-only fault injection, e.g. `kill-after-commit:reserve` | unset |
/// | `OTEL_EXPORTER_OTLP_ENDPOINT` | OTLP/HTTP collector base URL: spans of `serve` and `batch run` are exported to `<it>/v1/traces` | unset: W3C ids only, nothing exported |
/// | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | the traces URL itself (wins over the base URL) | unset |
/// | `OTEL_SERVICE_NAME` | `service.name` of exported spans | `bloodmatch` |
/// | `BLOODMATCH_FEED_CA_FILE` | an extra trusted CA for HTTPS feeds | the system roots |
/// | `BLOODMATCH_FEED_DEADLINE` | seconds for one feed snapshot's whole fetch (`import --fetch-deadline`) | `120` |
/// | `BLOODMATCH_FEED_TOKEN_FILE` | bearer token file for feeds (`import --bearer-token-file`) | unset |
/// | `BLOODMATCH_FEED_CLIENT_CERT`, `BLOODMATCH_FEED_CLIENT_KEY` | client certificate and key for feeds (mutual TLS) | unset |
/// | `BLOODMATCH_SPOOL_ORPHAN_GRACE_MINUTES` | minutes a spool CSV may wait for its control record before it is reported | `10` |
struct Environment: Sendable {
    var databaseURL: String?
    var socketPath: String
    var databaseName: String
    var logLevel: Logger.Level
    var operatorName: String = "unknown"
    /// The operator login (`BLOODMATCH_OPERATOR`), if any.
    var operatorLogin: String?
    /// Its password file.
    var operatorPasswordFile: String?
    /// The request id given for this command, if any.
    var requestID: String?
    var holdMinutes: String?
    var fault: String?
    var tracing = TracingSettings()
    /// Feed settings (`FeedSettings.resolve` checks them).
    var feedCAFile: String?
    var feedDeadline: String?
    var feedTokenFile: String?
    var feedClientCertificate: String?
    var feedClientKey: String?
    /// Minutes before a spool CSV without its control record is reported.
    var spoolOrphanGraceMinutes: String?

    /// The feed variables, for `FeedSettings.resolve`.
    var feeds: FeedSettings.Environment {
        .init(caFile: feedCAFile, deadline: feedDeadline, tokenFile: feedTokenFile,
              clientCertificate: feedClientCertificate, clientKey: feedClientKey)
    }

    static let current: Environment = {
        let env = ProcessInfo.processInfo.environment
        func nonEmpty(_ key: String) -> String? { env[key].flatMap { $0.isEmpty ? nil : $0 } }
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
            logLevel: env["BLOODMATCH_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info,
            operatorName: env["BLOODMATCH_OPERATOR"].flatMap { $0.isEmpty ? nil : "operator:" + $0 } ?? "role:bloodmatch_app",
            operatorLogin: env["BLOODMATCH_OPERATOR"].flatMap { $0.isEmpty ? nil : $0 },
            operatorPasswordFile: env["BLOODMATCH_OPERATOR_PASSWORD_FILE"].flatMap { $0.isEmpty ? nil : $0 },
            requestID: env["BLOODMATCH_REQUEST_ID"].flatMap { $0.isEmpty ? nil : String($0.prefix(128)) },
            holdMinutes: env["BLOODMATCH_HOLD_MINUTES"].flatMap { $0.isEmpty ? nil : $0 },
            fault: env["BLOODMATCH_FAULT"].flatMap { $0.isEmpty ? nil : $0 },
            tracing: TracingSettings(environment: env),
            feedCAFile: nonEmpty("BLOODMATCH_FEED_CA_FILE"),
            feedDeadline: nonEmpty("BLOODMATCH_FEED_DEADLINE"),
            feedTokenFile: nonEmpty("BLOODMATCH_FEED_TOKEN_FILE"),
            feedClientCertificate: nonEmpty("BLOODMATCH_FEED_CLIENT_CERT"),
            feedClientKey: nonEmpty("BLOODMATCH_FEED_CLIENT_KEY"),
            spoolOrphanGraceMinutes: nonEmpty("BLOODMATCH_SPOOL_ORPHAN_GRACE_MINUTES"))
    }()

    /// The database configuration for one role. With an operator login, the application role's
    /// work is done as that login (authenticated by the server with its password, or by peer or
    /// certificate where the server is set up so); the schema owner's and the import role's are not.
    func database(role: DatabaseConfiguration.Role, actAsOperator: Bool = true) throws -> DatabaseConfiguration {
        var config: DatabaseConfiguration
        if let url = databaseURL {
            config = try DatabaseConfiguration.parse(url: url, role: role)
        } else {
            config = .embedded(socketPath: socketPath, database: databaseName, role: role)
        }
        if role == .app, actAsOperator, let login = operatorLogin {
            config.username = login
            config.setRole = nil
            let file = operatorPasswordFile ?? Environment.defaultPasswordFile(for: login)
            if let text = try? String(contentsOfFile: file, encoding: .utf8) {
                config.password = text.trimmingCharacters(in: .whitespacesAndNewlines)
            } else if operatorPasswordFile != nil {
                throw OperatorLoginError(login: login, file: file)
            }
        }
        return config
    }

    /// Where `operator add` writes a login's password by default.
    static func defaultPasswordFile(for login: String) -> String {
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.config/bloodmatch/operators/" + login
    }
}

/// The operator's password file named by `BLOODMATCH_OPERATOR_PASSWORD_FILE` cannot be read.
struct OperatorLoginError: Error, CustomStringConvertible {
    var login: String
    var file: String
    var description: String { "cannot read the password of operator '\(login)' from \(file) (BLOODMATCH_OPERATOR_PASSWORD_FILE)" }
}


/// Sets up JSON logging once per process; returns the logger for a command.
func makeLogger(_ label: String) -> Logger {
    LoggingBootstrap.once
    return Logger(label: label)
}

private enum LoggingBootstrap {
    static let once: Void = {
        let level = Environment.current.logLevel
        LoggingSystem.bootstrap({ JSONLogHandler(label: $0, level: level, metadataProvider: $1) },
                                metadataProvider: TracingSystem.loggingMetadataProvider)
    }()
}

/// Bootstraps tracing once per process (see `TracingSystem`) and returns the span exporter's
/// service, to run beside the command's work.
func bootstrapTracing(logger: Logger) throws -> any Service {
    try TracingSystem.bootstrap(Environment.current.tracing, logger: logger)
}

/// Runs `body` in a root span named `operation` with tracing bootstrapped; finished spans are
/// flushed to the collector (when one is configured) before returning.
func withTracing<T: Sendable>(_ operation: String, logger: Logger, _ body: () async throws -> T) async throws -> T {
    let exporter = try bootstrapTracing(logger: logger)
    let group = ServiceGroup(configuration: .init(services: [.init(service: exporter)], gracefulShutdownSignals: [], logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let result: Result<T, any Error>
        do {
            result = .success(try await withSpan(operation, context: .topLevel) { _ in try await body() })
        } catch {
            result = .failure(error)
        }
        // The exporter sends what is queued on graceful shutdown (bounded by its export timeout).
        await group.triggerGracefulShutdown()
        try? await tasks.waitForAll()
        return try result.get()
    }
}

/// Test-only fault injection: when `BLOODMATCH_FAULT` is `kill-after-commit:<point>`, the process
/// kills itself with SIGKILL at that point, after the database committed and before any reply, so
/// the crash drill can check that a retry with the same key returns the same outcome.
func injectFault(at point: String) {
    guard Environment.current.fault == "kill-after-commit:" + point else { return }
    kill(getpid(), SIGKILL)
}
