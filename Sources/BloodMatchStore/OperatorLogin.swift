import Foundation
import Logging
import PostgresNIO

/// Why an operator's log-in was not accepted.
public enum OperatorLoginFailure: Error, Sendable, CustomStringConvertible {
    /// The database refused the name and password (unknown login, wrong password, disabled login);
    /// which of these is not told to the person logging in. `serverMessage` is for the log.
    case refused(serverMessage: String)
    /// The login is valid but in no group that may use the console (a job, or a role of the service).
    case notAnOperator(login: String)
    /// The database could not be asked: nothing is known about the name or password.
    case unavailable(reason: String)

    public var description: String {
        switch self {
        case .refused(let message): "the database refused the log-in: \(message)"
        case .notAnOperator(let login): "'\(login)' is not a dispatcher, supervisor or viewer"
        case .unavailable(let reason): "the log-in could not be checked: \(reason)"
        }
    }
}

/// Checks an operator's name and password the only way that proves them: one connection to the
/// database as that login (SCRAM-SHA-256; the password is sent to nothing else), which then reads
/// the login's group. The password is not kept.
public enum OperatorLogin {
    /// The operator `login` authenticated with `password` on the server `template` names
    /// (its endpoint and database; its user and password are replaced).
    public static func authenticate(login: String, password: String, template: DatabaseConfiguration, logger: Logger,
                                    deadline: Duration = .seconds(5)) async throws(OperatorLoginFailure) -> OperatorRecord {
        do {
            try PostgresOperatorStore.validate(name: login)
        } catch {
            // A name that cannot be an operator is refused like a wrong password: without asking.
            throw .refused(serverMessage: error.description)
        }
        let config: PostgresConnection.Configuration
        switch template.endpoint {
        case .socket(let path):
            config = .init(unixSocketPath: path, username: login, password: password, database: template.database)
        case .tcp(let host, let port):
            var tls = PostgresConnection.Configuration.TLS.disable
            if template.requireTLS {
                do {
                    tls = .require(try .init(configuration: .makeClientConfiguration()))
                } catch {
                    throw .unavailable(reason: "TLS to the database could not be set up: \(error)")
                }
            }
            config = .init(host: host, port: port, username: login, password: password, database: template.database, tls: tls)
        }
        let outcome: Result<OperatorRecord?, any Error>
        do {
            let record = try await withDeadline(deadline) { () -> OperatorRecord? in
                let conn = try await PostgresConnection.connect(configuration: config, id: 0, logger: logger)
                do {
                    let found = try await PostgresOperatorStore.find(login, on: conn, logger: logger)
                    try? await conn.close()
                    return found
                } catch {
                    try? await conn.close()
                    throw error
                }
            }
            outcome = .success(record)
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success(let record?) where record.role != .job:
            return record
        case .success:
            throw .notAnOperator(login: login)
        case .failure(let error as PSQLError):
            // 28P01 invalid_password, 28000 invalid_authorization_specification (no pg_hba entry,
            // not permitted to log in): the name and password were judged, and not accepted.
            if let code = error.serverInfo?[.sqlState], code == "28P01" || code == "28000" {
                throw .refused(serverMessage: error.serverInfo?[.message] ?? code)
            }
            throw .unavailable(reason: error.serverInfo?[.message] ?? String(describing: error.code))
        case .failure(let error):
            throw .unavailable(reason: String(describing: error))
        }
    }
}
