import ArgumentParser
import BloodMatchCore
import BloodMatchStore
import Foundation

/// `bloodmatch index …`: the spatial index file the matcher and the service load.
struct IndexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index", abstract: "Build or inspect the spatial index of current stock.",
        subcommands: [Build.self, Show.self])

    static let defaultPath = "var/index/inventory.bmidx"

    /// `bloodmatch index build`.
    struct Build: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "build", abstract: "Build the index from the snapshots in force and write it atomically.")
        @Option(help: "Index file to write.") var out: String = IndexCommand.defaultPath

        func run() async throws {
            let logger = makeLogger("bloodmatch.index")
            try await runReportingFailures(logger: logger) {
                let started = ContinuousClock.now
                let config = try Environment.current.database(role: .app)
                let index = try await Database.with(config, logger: logger) { db in
                    try await PostgresInventoryReader(database: db).buildIndex(now: Date())
                }
                let built = ContinuousClock.now - started
                let bytes = index.serialized()
                let url = URL(fileURLWithPath: out)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try SnapshotWriter.atomicWrite(Data(bytes), to: url)
                logger.info("index built", metadata: [
                    "index_version": "\(index.version)", "centres": "\(index.centres.count)", "units": "\(index.unitCount)",
                    "bytes": "\(bytes.count)", "build_ms": "\(built.milliseconds)", "file": "\(out)",
                ])
                print("index \(index.version): \(index.centres.count) centres, \(index.unitCount) available units, \(bytes.count) bytes, built in \(built.milliseconds) ms → \(out)")
            }
        }
    }

    /// `bloodmatch index show`.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Describe an index file and compare it with the snapshots in force.")
        @Option(help: "Index file to read.") var file: String = IndexCommand.defaultPath

        func run() async throws {
            let logger = makeLogger("bloodmatch.index")
            try await runReportingFailures(logger: logger) {
                let index = try IndexLoader.load(path: file)
                let config = try Environment.current.database(role: .app)
                let current = try await Database.with(config, logger: logger) { db in
                    try await PostgresInventoryReader(database: db).snapshotsInForce()
                }
                let check = IndexCurrency.compare(index: index, current: current.centres, withoutData: current.withoutData)
                print("index \(index.version) built \(SnapshotWriter.timestamp(Date(timeIntervalSince1970: Double(index.builtAt)))): \(index.centres.count) centres, \(index.unitCount) units")
                if !index.centresWithoutData.isEmpty {
                    print("no data — stock unknown, confirm by phone: \(index.centresWithoutData.map(\.siteID).joined(separator: ", "))")
                }
                print(check.isCurrent ? "current: every centre's snapshot matches the database" : "OUT OF DATE: \(check.summary)")
            }
        }
    }
}

/// Loads an index file, timing it.
enum IndexLoader {
    static func load(path: String) throws -> InventoryIndex {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IndexFileError(reason: "\(path) does not exist or cannot be read; run `bloodmatch index build`")
        }
        // Copy the bytes in one block; `[UInt8](data)` would go byte by byte through Sequence.
        let bytes = data.withUnsafeBytes { [UInt8]($0) }
        return try InventoryIndex(serialized: bytes)
    }
}

/// Whether an index names exactly the snapshots in force.
struct IndexCurrency {
    var isCurrent: Bool
    var changed: [String]
    var missing: [String]
    var extra: [String]
    /// Whether the centres without data differ from the database's.
    var withoutDataChanged = false

    var summary: String {
        var parts: [String] = []
        if !changed.isEmpty { parts.append("newer snapshots for \(changed.joined(separator: ", "))") }
        if !missing.isEmpty { parts.append("centres not in the index: \(missing.joined(separator: ", "))") }
        if !extra.isEmpty { parts.append("centres no longer in force: \(extra.joined(separator: ", "))") }
        if withoutDataChanged { parts.append("the centres without data have changed") }
        return parts.joined(separator: "; ")
    }

    static func compare(index: InventoryIndex, current: [CentreFreshness], withoutData: [String]) -> IndexCurrency {
        let indexed = Dictionary(uniqueKeysWithValues: index.centres.map { ($0.siteID, $0.mark) })
        let now = Dictionary(uniqueKeysWithValues: current.map { ($0.centreID, $0.mark) })
        let changed = now.compactMap { centre, snapshot in
            indexed[centre].flatMap { $0 != snapshot ? centre : nil }
        }.sorted()
        let missing = now.keys.filter { indexed[$0] == nil }.sorted()
        let extra = indexed.keys.filter { now[$0] == nil }.sorted()
        let withoutDataChanged = Set(index.centresWithoutData.map(\.siteID)) != Set(withoutData)
        return IndexCurrency(isCurrent: changed.isEmpty && missing.isEmpty && extra.isEmpty && !withoutDataChanged, changed: changed,
                             missing: missing, extra: extra, withoutDataChanged: withoutDataChanged)
    }
}

extension Duration {
    var milliseconds: Int { Int(components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000) }
}
