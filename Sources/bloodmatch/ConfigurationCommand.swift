import ArgumentParser
import BloodMatchCore
import BloodMatchStore
import Foundation

/// `bloodmatch configuration record`: put the policy, matching-settings and travel-time files in
/// force. Every process records the files it loads; a file that differs from the one in force is
/// refused by the database unless a supervisor records it (Data/POLICY.md, "Who may do what").
struct ConfigurationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "configuration", abstract: "Record the configuration files in force (a change needs a supervisor).",
        subcommands: [Record.self])

    struct Record: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the policy, matching settings and travel times, then record them as in force.",
            discussion: "Run as a supervisor (BLOODMATCH_OPERATOR) after changing Data/policy.json, BLOODMATCH_MATCHING or BLOODMATCH_TRAVEL_TIMES; the files are refused as a whole if anything in them is wrong.")
        @Option(help: "Transfusion policy file.") var policy: String?

        func run() async throws {
            let logger = makeLogger("bloodmatch.configuration")
            try await runReportingFailures(logger: logger) {
                // Loaded first: a file the service would refuse is never put in force.
                let rules = try loadMatchRules(path: policy)
                _ = try loadMatchingSettings()
                _ = try loadTravelTimes()
                let (path, version) = (RulesCommandSupport.policyPath(policy), (rules as? CompatibilityPolicy)?.version)
                let config = try Environment.current.database(role: .app)
                try await Database.with(config, logger: logger) { db in
                    try await recordConfiguration(db, policyPath: path, policyVersion: version, actor: operatorName())
                }
                print("configuration in force: policy \(path)\(version.map { " (version \($0))" } ?? "")")
            }
        }
    }
}
