import ArgumentParser
import Foundation
import BloodMatchStore
import Logging

/// `bloodmatch migrate`: applies pending schema migrations as the schema owner.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending schema migrations (idempotent; refuses if an applied file changed).")

    func run() async throws {
        let logger = makeLogger("bloodmatch.migrate")
        try await runReportingFailures(logger: logger) {
            let config = try Environment.current.database(role: .owner)
            let migrations = try Migration.bundled()
            let report = try await Database.with(config, logger: logger) { db in
                try await MigrationRunner(database: db, migrations: migrations).migrate()
            }
            logger.info("schema up to date", metadata: [
                "schema_version": "\(report.currentVersion)",
                "applied": .array(report.applied.map { "\($0)" }),
            ])
            print(report.applied.isEmpty
                  ? "schema at version \(report.currentVersion); nothing to apply"
                  : "applied migrations \(report.applied.map(String.init).joined(separator: ", ")); schema at version \(report.currentVersion)")
        }
    }
}

/// Runs a command body, logging any error as one JSON line and mapping it to an exit status.
func runReportingFailures(logger: Logger, _ body: () async throws -> Void) async throws {
    do {
        try await AuditContext.$requestID.withValue(commandRequestID) { try await body() }
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        let status = classify(error)
        logger.error("\(describe(error))", metadata: ["exit_code": "\(status.rawValue)"])
        if status == .databaseUnavailable {
            // Said on standard output too, where a person reads answers: an empty table must never
            // be the only sign that nothing could be checked.
            print("UNABLE TO VERIFY — manual review required: \(describe(error))")
        } else {
            // A person reads standard error too: the JSON log line is for machines.
            FileHandle.standardError.write(Data("error: \(describe(error))\n".utf8))
        }
        throw status.exitCode
    }
}

/// The request id of this command: `BLOODMATCH_REQUEST_ID`, else one generated for the process.
let commandRequestID: String = Environment.current.requestID ?? "cli-" + UUID().uuidString.lowercased()

/// The exit status for an error: database trouble is never reported as anything milder.
func classify(_ error: any Error) -> ExitStatus {
    if error is DatabaseUnavailableError { return .databaseUnavailable }
    if let classified = error as? any ClassifiedError { return classified.exitStatus }
    if isConnectionFailure(error) { return .databaseUnavailable }
    return .failure
}

/// An error that knows its exit status.
protocol ClassifiedError: Error {
    var exitStatus: ExitStatus { get }
}

/// Human text for an error: its `description`, or the driver's message.
func describe(_ error: any Error) -> String {
    // The server's own words (PSQLError's description hides them); a refused privilege says which
    // login would be allowed.
    let message = serverMessage(error)
    if sqlState(error) == "42501" {
        return message + " — this needs an operator login in the right group: BLOODMATCH_OPERATOR (`bloodmatch operator add NAME --role dispatcher|supervisor|job`; Data/POLICY.md, \"Who may do what\")"
    }
    return message
}
