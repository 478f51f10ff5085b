import ArgumentParser
import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import Foundation
import Hummingbird
import ServiceLifecycle

/// `bloodmatch serve`: the hospital HTTP API (see Data/openapi.json and Jobs/RUNBOOK.md).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the hospital lookup API: availability, matches, health, readiness and metrics.",
        discussion: """
        Stateless: several instances may run against one database. SIGTERM or SIGINT stops accepting
        connections, lets requests in flight finish, writes the last access records, then exits 0.
        Starts even when the database is down (answers 503 "unable to verify" until it is back).
        Example: bloodmatch serve --port 8443 --tls-cert server.pem --tls-key server.key
        """)

    @Option(help: "Listen address.") var host: String = "127.0.0.1"
    @Option(help: "Listen port.") var port: Int = 8443
    @Option(help: "PEM certificate chain file (TLS on when given with --tls-key).") var tlsCert: String?
    @Option(help: "PEM private key file.") var tlsKey: String?
    @Option(help: "Sustained requests per second per hospital.") var rateLimit: Double = 20
    @Option(help: "Burst per hospital.") var rateBurst: Double = 40
    @Option(help: "Requests doing work at once (all hospitals).") var maxConcurrent: Int = 64
    @Option(help: "Requests doing work at once for one hospital (default: a quarter of --max-concurrent); past it 429.")
    var maxConcurrentPerHospital: Int?
    @Option(help: "Seconds a request body may take to arrive whole; past it 408 and the connection is closed.") var bodyDeadline: Int = 10
    @Option(help: "Refused keys (missing, malformed, unknown) per second allowed from one client address before its requests are refused 429.")
    var failedAuthRate: Double = 5
    @Option(help: "Burst of refused keys from one client address.") var failedAuthBurst: Double = 20
    @Option(help: "Seconds before an idle connection is closed.") var idleTimeout: Int = 30
    @Option(help: "Database connections in the pool of writes (decisions, holds, access records).") var poolSize: Int = 8
    @Option(help: "Database connections in the pool of lookups (keys, held units, index checks, reads), which writes cannot take.")
    var lookupPoolSize: Int = 4
    @Option(help: "Most decisions written in one statement and commit (group commit of concurrent requests; 1 writes each alone).")
    var decisionGroupSize: Int = 64
    @Option(help: "OpenAPI document served at /openapi.json.") var openapi: String = "Data/openapi.json"
    @Option(help: "Index file to start from (rebuilt from the database when out of date).") var index: String = IndexCommand.defaultPath
    @Option(help: "Transfusion policy file.") var policy: String?

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port \(port) is not 1…65535") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("give --tls-cert and --tls-key together") }
        guard rateLimit > 0, rateBurst >= 1, maxConcurrent >= 1, idleTimeout >= 1, poolSize >= 1, lookupPoolSize >= 1, bodyDeadline >= 1,
              failedAuthRate > 0, failedAuthBurst >= 1, (maxConcurrentPerHospital ?? 1) >= 1 else {
            throw ValidationError("--rate-limit, --rate-burst, --max-concurrent, --max-concurrent-per-hospital, --idle-timeout, --pool-size, --lookup-pool-size, --body-deadline, --failed-auth-rate and --failed-auth-burst must be positive")
        }
    }

    func run() async throws {
        let logger = makeLogger("bloodmatch.serve")
        try await runReportingFailures(logger: logger) {
            // Before anything starts a span; exports only when an OTLP endpoint is configured.
            let exporter = try bootstrapTracing(logger: logger)
            let telemetry = ServiceGroup(configuration: .init(services: [.init(service: exporter)], gracefulShutdownSignals: [], logger: logger))
            let planner = MatchPlanner(rules: try loadMatchRules(path: policy), settings: try loadMatchingSettings(),
                                       travelTimes: try loadTravelTimes())
            var config = APIConfiguration()
            config.host = host
            config.port = port
            config.tlsCertificatePath = tlsCert
            config.tlsKeyPath = tlsKey
            config.rateLimitPerSecond = rateLimit
            config.rateLimitBurst = rateBurst
            config.maximumConcurrentRequests = maxConcurrent
            config.maximumConcurrentPerHospital = maxConcurrentPerHospital
            config.bodyDeadline = .seconds(bodyDeadline)
            config.failedAuthenticationRate = failedAuthRate
            config.failedAuthenticationBurst = failedAuthBurst
            config.idleTimeout = .seconds(idleTimeout)
            do {
                config.openAPIDocument = try Data(contentsOf: URL(fileURLWithPath: openapi))
            } catch {
                throw ValidationError("--openapi \(openapi): \(error.localizedDescription)")
            }
            // The service is its own identity (it speaks for the hospitals whose keys it checks),
            // never an operator's, whatever BLOODMATCH_OPERATOR says.
            var dbConfig = try Environment.current.database(role: .app, actAsOperator: false)
            dbConfig.maximumConnections = poolSize
            let metrics = ServiceMetrics(registry: ServiceMetrics.bootstrapPrometheus())
            // Pool metrics go through the process-wide MetricsSystem, bootstrapped just above.
            let database = Database(configuration: dbConfig, logger: logger)
            var lookupConfig = dbConfig
            lookupConfig.maximumConnections = lookupPoolSize
            let lookupDatabase = Database(configuration: lookupConfig, logger: logger, pool: "lookup")
            // The files this service decides with must be the ones in force: a changed file is
            // refused by the database until a supervisor records it, and the service does not start.
            let policyPath = RulesCommandSupport.policyPath(policy)
            try await Database.with(dbConfig, logger: logger) { db in
                try await recordConfiguration(db, policyPath: policyPath, policyVersion: (planner.rules as? CompatibilityPolicy)?.version, actor: "service")
            }
            let preloaded = try? IndexLoader.load(path: index)
            // Decisions reuse an index check, a clock-skew reading and the held-unit set for up to
            // a second; every chosen unit is still re-checked against the database.
            let engine = DecisionEngine(database: database, readDatabase: lookupDatabase, planner: planner, index: preloaded, logger: logger,
                                        reuseInterval: .seconds(1), groupSize: max(1, decisionGroupSize))
            let services = APIServices(configuration: config, database: database, lookupDatabase: lookupDatabase, engine: engine, planner: planner,
                                       metrics: metrics, logger: logger)
            let app = try buildApplication(services: services)
            logger.info("serving", metadata: ["address": "\(tlsCert == nil ? "http" : "https")://\(host):\(port)",
                                              "index_preloaded": "\(preloaded != nil)",
                                              "otlp_export": "\(Environment.current.tracing.exports)"])
            // The pool outlives the application, so the last access records can still be written;
            // the span exporter outlives both, so the last spans are sent.
            let exporting = Task { try await telemetry.run() }
            let served: Result<Void, any Error>
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await database.run() }
                    group.addTask { await lookupDatabase.run() }
                    group.addTask { await AuditSealer(database: database).run() }
                    defer { group.cancelAll() }
                    // Each request sets its own request id; none is inherited from the command.
                    try await AuditContext.$requestID.withValue(nil) { try await app.runService() }
                }
                served = .success(())
            } catch {
                served = .failure(error)
            }
            await telemetry.triggerGracefulShutdown()
            _ = await exporting.result
            try served.get()
            logger.info("stopped", metadata: ["access_records_written": "\(services.recorder.writtenCount)"])
        }
    }
}
