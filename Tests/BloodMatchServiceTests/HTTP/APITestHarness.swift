import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import Prometheus

/// A seeded throwaway database, keys for two hospitals (plus an expired and a revoked one), and
/// the real application built by `buildApplication`, driven in process.
struct APITestHarness: Sendable {
    let test: TestDatabase
    let services: APIServices
    /// Key of HWOL (the hospital most tests speak for).
    let token: String
    /// Key of HOTH, another hospital.
    let otherToken: String
    /// A key that has expired.
    let expiredToken: String
    /// A key that was revoked.
    let revokedToken: String

    static let hospital = "HWOL"
    static let other = "HOTH"

    /// Two centres (Sydney, Newcastle) with O-negative and A-positive red cells, two hospitals.
    static func seed(_ test: TestDatabase, now: Date) async throws {
        let sites = [
            Site(id: "DCSYD", name: "Sydney", kind: .distributionCentre, location: GeoPoint(latitude: -33.87, longitude: 151.21), region: "AU-02"),
            Site(id: "DCNEW", name: "Newcastle", kind: .distributionCentre, location: GeoPoint(latitude: -32.93, longitude: 151.78), region: "AU-02"),
            Site(id: hospital, name: "Wollongong Hospital", kind: .hospital, location: GeoPoint(latitude: -34.42, longitude: 150.89), region: "AU-02",
                 address: "Wollongong NSW, Australia"),
            Site(id: other, name: "Other Hospital", kind: .hospital, location: GeoPoint(latitude: -33.0, longitude: 151.5), region: "AU-02",
                 address: "Cessnock NSW, Australia"),
        ]
        let dir = StockFixture.temporaryDirectory()
        let collected = now.addingTimeInterval(-5 * 86_400)
        let expires = now.addingTimeInterval(30 * 86_400)
        let sydney = try (1...3).map { try StockFixture.unit(StockFixture.din(sequence: $0), .redCells, .oNegative, at: "DCSYD", collected: collected, expires: expires) }
            + [try StockFixture.unit(StockFixture.din(sequence: 4), .redCells, BloodGroup(.A, .positive), at: "DCSYD", collected: collected, expires: expires,
                                     attributes: AttributeSet([UnitAttribute.irradiated]))]
        let newcastle = try (11...13).map { try StockFixture.unit(StockFixture.din(sequence: $0), .redCells, .oNegative, at: "DCNEW", collected: collected, expires: expires) }
        try StockFixture.write(sydney, centre: "DCSYD", asOf: now.addingTimeInterval(-60), name: "syd", in: dir)
        try StockFixture.write(newcastle, centre: "DCNEW", asOf: now.addingTimeInterval(-60), name: "new", in: dir)
        try await test.with(.importer) { db in
            _ = try await PostgresSiteStore(database: db).upsert(sites, source: "test")
            let importer = PostgresInventoryImporter(database: db)
            for name in ["syd", "new"] {
                _ = try await importer.importSnapshot(SnapshotSource(csvPath: dir.appendingPathComponent("\(name).csv").path), now: now)
            }
        }
    }

    static func defaultConfiguration() throws -> APIConfiguration {
        var config = APIConfiguration()
        config.openAPIDocument = try Data(contentsOf: StockFixture.repository.appendingPathComponent("Data/openapi.json"))
        config.rateLimitPerSecond = 1000
        config.rateLimitBurst = 1000
        config.indexVerificationInterval = .zero
        config.accessFlushInterval = .milliseconds(50)
        // Suites send many refused keys from one address on purpose; the throttle has its own test.
        config.failedAuthenticationBurst = 10_000
        return config
    }

    /// Runs `body` with the app on a fresh seeded database; `clock` is the services' wall clock, and
    /// `live` serves on a loopback socket (so requests have a client address) instead of in process.
    static func run(configure: @Sendable (inout APIConfiguration) -> Void = { _ in }, clock: @escaping @Sendable () -> Date = { Date() },
                    live: Bool = false,
                    _ body: @escaping @Sendable (any TestClientProtocol, APITestHarness) async throws -> Void) async throws {
        // At most two throwaway databases from these suites at once: creating and migrating more
        // in parallel with the other suites starves the test server on a 2-core machine.
        await gate.acquire()
        defer { Task { await gate.release() } }
        do {
            try await runUnwrapped(configure: configure, clock: clock, live: live, body)
        } catch let error as PSQLError {
            throw DatabaseUnavailableError(target: "test", underlying: String(reflecting: error))
        }
    }

    /// The process-wide tracer, as `serve` sets it up with no collector: W3C ids, no export.
    static func bootstrapTracing() { _ = tracing }
    private static let tracing: Void = {
        _ = try? TracingSystem.bootstrap(TracingSettings(), logger: Logger(label: "test.tracing"))
    }()

    static func runUnwrapped(configure: @Sendable (inout APIConfiguration) -> Void, clock: @escaping @Sendable () -> Date, live: Bool,
                             _ body: @escaping @Sendable (any TestClientProtocol, APITestHarness) async throws -> Void) async throws {
        bootstrapTracing()
        try await TestDatabase.withFresh { test in
            let now = Date()
            try await seed(test, now: now)
            let keys = try await test.with(.owner) { db in
                let store = PostgresAPIKeyStore(database: db)
                let (_, a) = try await store.create(hospital: hospital, label: "test", expiresAt: now.addingTimeInterval(3600), createdBy: "test")
                let (_, b) = try await store.create(hospital: other, label: "test", expiresAt: now.addingTimeInterval(3600), createdBy: "test")
                let (_, expired) = try await store.create(hospital: hospital, label: "expiring", expiresAt: Date().addingTimeInterval(3), createdBy: "test")
                let (revokedRecord, revoked) = try await store.create(hospital: hospital, label: "revoked", expiresAt: now.addingTimeInterval(3600), createdBy: "test")
                _ = try await store.revoke(keyID: revokedRecord.keyID, revokedBy: "test", reason: "test")
                return [a.text, b.text, expired.text, revoked.text]
            }
            // Until the expiring key has expired.
            try await Task.sleep(for: .milliseconds(3100))
            var config = try defaultConfiguration()
            if live { config.port = 0 }
            configure(&config)
            let configuration = config
            try await test.with(.app) { db in
                let planner = MatchPlanner(rules: try CompatibilityPolicy(jsonData: StockFixture.policyData()), settings: .standard)
                let engine = DecisionEngine(database: db, planner: planner, index: nil, logger: db.logger)
                let services = APIServices(configuration: configuration, database: db, engine: engine, planner: planner,
                                           metrics: ServiceMetrics(registry: PrometheusCollectorRegistry()), logger: db.logger, now: clock)
                let app = try buildApplication(services: services, refreshIndex: false)
                let harness = APITestHarness(test: test, services: services, token: keys[0], otherToken: keys[1],
                                             expiredToken: keys[2], revokedToken: keys[3])
                try await app.test(live ? .live : .router) { client in try await body(client, harness) }
            }
        }
    }
}

/// A counting semaphore for async code.
actor AsyncGate {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { available = limit }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty { available += 1 } else { waiters.removeFirst().resume() }
    }
}

extension APITestHarness {
    static let gate = AsyncGate(limit: 2)
}

/// A response read into memory.
struct Reply: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    var object: [String: Any] { ((try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]) ?? [:] }
    /// The error: `/v1`'s `error` object, or a FHIR OperationOutcome's first issue read the same
    /// way (`code` from `details.coding`, `message` from `diagnostics`, `field` from `expression`).
    var error: [String: Any] {
        if let error = object["error"] as? [String: Any] { return error }
        guard object["resourceType"] as? String == "OperationOutcome", let issue = (object["issue"] as? [[String: Any]])?.first else { return [:] }
        var out: [String: Any] = ["message": issue["diagnostics"] ?? ""]
        if let coding = ((issue["details"] as? [String: Any])?["coding"] as? [[String: Any]])?.first { out["code"] = coding["code"] }
        if let field = (issue["expression"] as? [String])?.first { out["field"] = field }
        return out
    }
    var errorCode: String? { error["code"] as? String }
}

extension TestClientProtocol {
    /// Sends one request and reads the whole response.
    func send(_ uri: String, _ method: HTTPRequest.Method = .get, token: String? = nil, headers: HTTPFields = [:],
              body: String? = nil, contentType: String? = "application/json") async throws -> Reply {
        var fields = headers
        if let token { fields[.authorization] = "Bearer \(token)" }
        if body != nil, let contentType, fields[.contentType] == nil { fields[.contentType] = contentType }
        return try await execute(uri: uri, method: method, headers: fields, body: body.map { ByteBuffer(string: $0) }) { response in
            Reply(status: response.status, headers: response.headers, body: Array(response.body.readableBytesView))
        }
    }
}
