import ArgumentParser
import BloodMatchConsole
import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import Foundation
import Hummingbird
import ServiceLifecycle
import UnixSignals

/// `bloodmatch console`: the dispatcher console in the browser (Data/README.md, "The console").
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Serve the dispatcher console: a map of centres, stock and staleness; match, hold and issue; orders.",
        discussion: """
        Operators log in with their own database login (`bloodmatch operator add NAME --role dispatcher|supervisor|viewer`); \
        the database checks the password and every action runs as that login, so its grants decide what each may do and \
        its stamps record who did it. Open http://HOST:PORT/console. Sessions are kept in this process: after a restart \
        operators log in again. SIGTERM stops accepting connections and exits 0.
        Example: bloodmatch console --port 8444 --tls-cert server.pem --tls-key server.key
        """)

    @Option(help: "Listen address.") var host: String = "127.0.0.1"
    @Option(help: "Listen port.") var port: Int = 8444
    @Option(help: "PEM certificate chain file (TLS on when given with --tls-key).") var tlsCert: String?
    @Option(help: "PEM private key file.") var tlsKey: String?
    @Option(help: "Minutes without a request before a session ends.") var idleMinutes: Int = 15
    @Option(help: "Hours after log-in when a session ends, however busy.") var sessionHours: Int = 12
    @Option(help: "Database connections of the console's own reads.") var poolSize: Int = 4
    @Option(help: "Country outlines for the map (GeoJSON).") var outlines: String = "Data/map/countries-110m.geojson"
    @Option(help: "Index file to start from (rebuilt from the database when out of date).") var index: String = IndexCommand.defaultPath
    @Option(help: "Transfusion policy file.") var policy: String?

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port \(port) is not 1…65535") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("give --tls-cert and --tls-key together") }
        // The session cookie is Secure: browsers keep it over plain HTTP only from this machine
        // (localhost), so anywhere else the console must speak TLS.
        let loopback = ["127.0.0.1", "localhost", "::1"].contains(host)
        guard loopback || tlsCert != nil else {
            throw ValidationError("--host \(host) reaches beyond this machine: give --tls-cert and --tls-key (operators' passwords and session cookies never travel in clear)")
        }
        guard (1...240).contains(idleMinutes), (1...24).contains(sessionHours), poolSize >= 1 else {
            throw ValidationError("--idle-minutes must be 1…240, --session-hours 1…24 and --pool-size positive")
        }
    }

    func run() async throws {
        let logger = makeLogger("bloodmatch.console")
        try await runReportingFailures(logger: logger) {
            let settings = try loadMatchingSettings()
            let planner = MatchPlanner(rules: try loadMatchRules(path: policy), settings: settings, travelTimes: try loadTravelTimes())
            // The console's own reads run as the service role, never as an operator named in the
            // environment; operators act through their own logins, per session.
            var dbConfig = try Environment.current.database(role: .app, actAsOperator: false)
            dbConfig.maximumConnections = poolSize
            var config = ConsoleConfiguration(operatorDatabase: dbConfig)
            config.host = host
            config.port = port
            config.tlsCertificatePath = tlsCert
            config.tlsKeyPath = tlsKey
            config.idleTimeout = .seconds(idleMinutes * 60)
            config.sessionLifetime = .seconds(sessionHours * 3600)
            do {
                config.outlines = try Data(contentsOf: URL(fileURLWithPath: outlines))
            } catch {
                throw ValidationError("--outlines \(outlines): \(error.localizedDescription)")
            }
            let database = Database(configuration: dbConfig, logger: logger, pool: "console")
            let policyPath = RulesCommandSupport.policyPath(policy)
            try await Database.with(dbConfig, logger: logger) { db in
                try await recordConfiguration(db, policyPath: policyPath, policyVersion: (planner.rules as? CompatibilityPolicy)?.version, actor: "service")
            }
            let engine = DecisionEngine(database: database, planner: planner, index: try? IndexLoader.load(path: index), logger: logger,
                                        reuseInterval: .seconds(1))
            let services = ConsoleServices(configuration: config, database: database, engine: engine, planner: planner,
                                           minimumRemainingSeconds: settings.minimumRemainingSecondsByComponent, logger: logger)
            let app = try buildConsoleApplication(services: services)
            logger.info("console serving", metadata: ["address": "\(tlsCert == nil ? "http" : "https")://\(host):\(port)/console"])
            // The server drains on SIGTERM; the pages' live streams are told first, so open pages do
            // not hold the drain for a stream's whole lifetime.
            let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.run() }
                group.addTask {
                    for await _ in signals {
                        services.beginStopping()
                        break
                    }
                }
                defer { group.cancelAll() }
                try await app.runService()
            }
            logger.info("console stopped")
        }
    }
}
