import ArgumentParser
import BloodMatchIngest
import BloodMatchStore
import Foundation

/// `bloodmatch sites …`: the list of distribution centres and hospitals.
struct SitesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sites", abstract: "Manage distribution centres and hospitals.",
        subcommands: [Import.self])

    /// `bloodmatch sites import FILE`.
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Insert or update sites from a CSV file (site_id,name,kind,latitude,longitude,region,address); all or nothing.")

        @Argument(help: "The site list CSV.") var file: String

        func run() async throws {
            let logger = makeLogger("bloodmatch.sites")
            try await runReportingFailures(logger: logger) {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw ValidationFailure("\(file): cannot read the file")
                }
                let sites: [BloodMatchCore.Site]
                do {
                    sites = try SiteListDecoder.decode(data, fileName: URL(fileURLWithPath: file).lastPathComponent)
                } catch let error as SiteListError {
                    logger.error("site list refused", metadata: ["file": "\(file)", "error": "\(error.description)"])
                    print("refused: \(error.description)")
                    throw ExitStatus.rejected.exitCode
                }
                let config = try Environment.current.database(role: .importer)
                let (inserted, updated) = try await Database.with(config, logger: logger) { db in
                    try await PostgresSiteStore(database: db).upsert(sites, source: file)
                }
                logger.info("sites imported", metadata: ["file": "\(file)", "inserted": "\(inserted)", "updated": "\(updated)"])
                print("sites: \(inserted) inserted, \(updated) updated from \(file)")
            }
        }
    }
}

import BloodMatchCore
