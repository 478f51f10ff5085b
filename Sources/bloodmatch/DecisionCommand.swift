import ArgumentParser
import BloodMatchService
import BloodMatchStore
import Foundation

/// `bloodmatch decision show ID`: replays a stored decision exactly as recorded.
struct DecisionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decision", abstract: "Read recorded decisions.", subcommands: [Show.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a recorded decision and its rationale.")
        @Argument(help: "Decision id (UUID) or request id.") var id: String
        @Flag(help: "Print the full decision as JSON.") var json = false

        func run() async throws {
            let logger = makeLogger("bloodmatch.decision")
            try await runReportingFailures(logger: logger) {
                let config = try Environment.current.database(role: .app)
                let key = id
                let stored = try await Database.with(config, logger: logger) { db in
                    let store = PostgresDecisionStore(database: db)
                    if let uuid = UUID(uuidString: key), let found = try await store.find(decisionID: uuid) { return Optional(found) }
                    return try await store.find(requestID: key)
                }
                guard let stored else {
                    print("no decision with id or request id '\(id)'")
                    throw ExitStatus.usage.exitCode
                }
                let decision = try DecisionEngine.decode(stored)
                if json {
                    let encoder = DecisionEngine.makeEncoder()
                    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                    print(String(decoding: try encoder.encode(decision), as: UTF8.self))
                } else {
                    print(DecisionPrinter.render(decision, recorded: true, isNew: true, retryOf: stored.retryOf))
                    print("Recorded \(stored.recordedAt.map { SnapshotWriter.timestamp($0) } ?? "?") by \(stored.requestedBy)")
                }
            }
        }
    }
}
