import BloodMatchCore
import Foundation
import Logging
import PostgresNIO

/// What the dispatcher console shows besides the stock in the index: sites, pending orders, recent
/// issues (for days of supply) and the last batch run's shipments. Read in one transaction so the
/// parts agree with each other.
public struct ConsoleFacts: Sendable {
    /// One shipment of a batch run, centre to hospital.
    public struct Shipment: Sendable, Hashable {
        /// Sending centre.
        public var centre: String
        /// Receiving hospital.
        public var hospital: String
        /// Units in it.
        public var units: Int
        /// Minutes on the road, as planned.
        public var etaMinutes: Double
    }

    /// Every site, hospitals and centres.
    public var sites: [Site]
    /// Pending orders by hospital, then urgency (`emergency`, `urgent`, `routine`).
    public var pendingOrders: [String: [String: Int]]
    /// Units issued by each centre, by component code, over `issueWindowDays`.
    public var issued: [String: [String: Int]]
    /// The window of `issued`, in days.
    public var issueWindowDays: Int
    /// The last batch run: id, finish time (seconds since 1970) and shipments.
    public var lastRun: (id: UUID, finishedAt: Double, shipments: [Shipment])?
    /// The database's clock when read (seconds since 1970).
    public var databaseTime: Double
}

/// The console's reads and its audit records.
public struct PostgresConsoleStore: Sendable {
    /// The pool: an operator's own for `record`, any for `facts`.
    public let database: Database

    /// Creates the store.
    public init(database: Database) { self.database = database }

    /// Appends a `console.*` event as the login of this pool (migration 0016's `bm.console_record`):
    /// the database stamps the actor from the login, so an operator is recorded as themself.
    public func record(action: String, subject: String, requestID: String, payloadJSON: String) async throws {
        let logger = database.logger
        try await database.observe("console.record") {
            _ = try await database.client.query(
                "SELECT bm.console_record(\(action), \(subject), \(requestID), \(payloadJSON)::jsonb)", logger: logger).collect()
        }
    }

    /// Sites, pending orders, issues of the last `issueWindowDays` days and the last batch run.
    public func facts(issueWindowDays: Int = 28) async throws -> ConsoleFacts {
        let logger = database.logger
        return try await database.observe("console.facts") {
            try await database.client.withConnection { conn in try await database.transaction(on: conn, readOnlySnapshot: true) { conn in
                let sites = try await PostgresSiteStore.all(on: conn, logger: logger)
                var pending: [String: [String: Int]] = [:]
                for try await (hospital, urgency, n) in try await conn.query(
                    "SELECT hospital, urgency, count(*)::int FROM orders WHERE status = 'pending' GROUP BY 1, 2",
                    logger: logger).decode((String, String, Int).self) {
                    pending[hospital, default: [:]][urgency] = n
                }
                var issued: [String: [String: Int]] = [:]
                for try await (centre, component, n) in try await conn.query(
                    """
                    SELECT centre, component, count(*)::int FROM distributions
                    WHERE issued_at > now() - \(issueWindowDays) * interval '1 day' AND corrects IS NULL GROUP BY 1, 2
                    """, logger: logger).decode((String, String, Int).self) {
                    issued[centre, default: [:]][component] = n
                }
                var lastRun: (UUID, Double, [ConsoleFacts.Shipment])?
                for try await (id, finished) in try await conn.query(
                    "SELECT run_id, extract(epoch FROM finished_at)::float8 FROM batch_runs ORDER BY finished_at DESC LIMIT 1",
                    logger: logger).decode((UUID, Double).self) {
                    lastRun = (id, finished, [])
                }
                if let run = lastRun {
                    var shipments: [ConsoleFacts.Shipment] = []
                    for try await (centre, hospital, units, eta) in try await conn.query(
                        "SELECT centre, hospital, units, eta_minutes FROM batch_shipments WHERE run_id = \(run.0) ORDER BY shipment_no",
                        logger: logger).decode((String, String, Int, Double).self) {
                        shipments.append(.init(centre: centre, hospital: hospital, units: units, etaMinutes: eta))
                    }
                    lastRun = (run.0, run.1, shipments)
                }
                var now = 0.0
                for try await (t,) in try await conn.query("SELECT extract(epoch FROM now())::float8", logger: logger).decode((Double,).self) {
                    now = t
                }
                return ConsoleFacts(sites: sites, pendingOrders: pending, issued: issued, issueWindowDays: issueWindowDays,
                                    lastRun: lastRun.map { (id: $0.0, finishedAt: $0.1, shipments: $0.2) }, databaseTime: now)
            } }
        }
    }
}
