import BloodMatchCore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// A match decision as stored: the searchable columns plus the full request and rationale as JSON.
public struct StoredDecision: Sendable, Hashable {
    /// Decision id.
    public var decisionID: UUID
    /// The client-supplied request id; a retry with the same id returns this decision.
    public var requestID: String
    /// The hospital the units are for, when known.
    public var hospital: String?
    /// Who asked (operator name, or `hospital:<id>` for the API).
    public var requestedBy: String
    /// `fulfilled`, `partial`, `none_compatible_available` or `unable_to_verify`.
    public var outcome: String
    /// The request, as JSON.
    public var requestJSON: String
    /// The rationale, as JSON.
    public var rationaleJSON: String
    /// Policy version used.
    public var policyVersion: String
    /// Index version used.
    public var indexVersion: String?
    /// Evaluation instant.
    public var evaluatedAt: Date
    /// When the database recorded it (database clock); nil before it is stored.
    public var recordedAt: Date?
    /// W3C trace id, when the request carried one.
    public var traceID: String?
    /// Units chosen or considered, in rank order.
    public var units: [DecisionUnit]
    /// SHA-256 (hex) of the centres' data state the decision was made on, stored once in
    /// `bm.decision_data_states`; nil for decisions that carry it in their rationale.
    public var dataStateDigest: String?
    /// That data state as JSON (written when the database may not have it yet; read back with the decision).
    public var dataStateJSON: String?
    /// The last `unable_to_verify` decision of the same request id that this one re-evaluates
    /// (set by the database when the decision is recorded); nil otherwise.
    public var retryOf: UUID?

    /// Creates a record.
    public init(decisionID: UUID, requestID: String, hospital: String?, requestedBy: String, outcome: String,
                requestJSON: String, rationaleJSON: String, policyVersion: String, indexVersion: String?,
                evaluatedAt: Date, recordedAt: Date? = nil, traceID: String? = nil, units: [DecisionUnit],
                dataStateDigest: String? = nil, dataStateJSON: String? = nil, retryOf: UUID? = nil) {
        self.decisionID = decisionID
        self.requestID = requestID
        self.hospital = hospital
        self.requestedBy = requestedBy
        self.outcome = outcome
        self.requestJSON = requestJSON
        self.rationaleJSON = rationaleJSON
        self.policyVersion = policyVersion
        self.indexVersion = indexVersion
        self.evaluatedAt = evaluatedAt
        self.recordedAt = recordedAt
        self.traceID = traceID
        self.units = units
        self.dataStateDigest = dataStateDigest
        self.dataStateJSON = dataStateJSON
        self.retryOf = retryOf
    }
}

/// One unit line of a decision.
public struct DecisionUnit: Sendable, Hashable {
    /// 1-based position.
    public var rank: Int
    /// DIN.
    public var din: String
    /// Product code: with the DIN, the unit's identity.
    public var productCode: String
    /// Centre.
    public var centre: String
    /// Chosen (true) or considered and rejected (false).
    public var chosen: Bool
    /// Why.
    public var reason: String

    /// Creates a line.
    public init(rank: Int, din: String, productCode: String, centre: String, chosen: Bool, reason: String) {
        self.rank = rank
        self.din = din
        self.productCode = productCode
        self.centre = centre
        self.chosen = chosen
        self.reason = reason
    }

    /// The unit's identity.
    public var key: UnitKey { UnitKey(din: din, productCode: productCode) }
}

/// Decisions in PostgreSQL: appended in one transaction with their units and an event, never changed.
public struct PostgresDecisionStore: Sendable {
    /// Data states this process has seen stored, per database (`displayName|digest`), so a decision
    /// names its data state without sending it again.
    static let knownDataStates = Mutex<Set<String>>([])

    /// The pool, as `bloodmatch_app`.
    public let database: Database

    /// Creates the store.
    public init(database: Database) { self.database = database }

    /// Records a decision, or returns the one already recorded under the same request id (the
    /// retry case); `isNew` says which. `requestID` and `clientAddress` (an HTTP request's) go on
    /// the `decision.made` event; without `requestID` the event carries the decision's own.
    public func record(_ decision: StoredDecision, requestID: String? = nil,
                       clientAddress: String? = nil) async throws -> (decision: StoredDecision, isNew: Bool) {
        try await record([PendingDecision(decision, requestID: requestID, clientAddress: clientAddress)])[0].get()
    }

    /// Records several decisions in one statement (one transaction, one commit: the group commit
    /// `DecisionWriter` makes of concurrent requests), each with its units and its `decision.made`
    /// event. Returns one result per decision, in order: the decision as stored and whether this
    /// call made it, or the original when its request id was answered before. A failure of the
    /// database fails them all; any other failure of the statement is retried one decision at a
    /// time, so that one bad decision fails alone.
    public func record(_ pending: [PendingDecision]) async throws -> [Result<(decision: StoredDecision, isNew: Bool), any Error>] {
        guard !pending.isEmpty else { return [] }
        return try await database.observe("decision.record") {
            do {
                let recorded = try await insert(pending)
                var results: [Result<(decision: StoredDecision, isNew: Bool), any Error>] = []
                results.reserveCapacity(pending.count)
                for item in pending {
                    if let (at, retryOf) = recorded[item.decision.decisionID] {
                        var stored = item.decision
                        stored.recordedAt = at
                        stored.retryOf = retryOf
                        results.append(.success((stored, true)))
                    } else {
                        // Its request id was answered before (or by an earlier decision of this group).
                        results.append(await capture { () async throws -> (decision: StoredDecision, isNew: Bool) in
                            guard let existing = try await find(requestID: item.decision.requestID) else {
                                throw DecisionNotRecordedError(requestID: item.decision.requestID)
                            }
                            return (existing, false)
                        })
                    }
                }
                return results
            } catch where pending.count > 1 && !isConnectionFailure(error) {
                var results: [Result<(decision: StoredDecision, isNew: Bool), any Error>] = []
                for item in pending {
                    results.append(await capture { try await record([item])[0].get() })
                }
                return results
            }
        }
    }

    /// The statement, with the data states this process has not seen stored; again with all of
    /// them when the database lacks one it was thought to have (restored, or another database).
    /// Returns `recorded_at` and `retry_of` per decision inserted.
    private func insert(_ pending: [PendingDecision]) async throws -> [UUID: (Date, UUID?)] {
        let logger = database.logger
        let prefix = database.configuration.displayName + "|"
        var states: [String: String] = [:]
        for item in pending {
            if let digest = item.decision.dataStateDigest, let json = item.decision.dataStateJSON { states[digest] = json }
        }
        let unknown = Self.knownDataStates.withLock { known in states.filter { !known.contains(prefix + $0.key) } }
        func run(_ send: [String: String]) async throws -> [UUID: (Date, UUID?)] {
            var recorded: [UUID: (Date, UUID?)] = [:]
            for try await (id, at, retryOf) in try await database.client.execute(
                RecordDecisionsStatement(pending, dataStates: send), logger: logger) {
                recorded[id] = (at, retryOf)
            }
            return recorded
        }
        let recorded: [UUID: (Date, UUID?)]
        do {
            recorded = try await run(unknown)
        } catch where unknown.count < states.count && sqlState(error) == "23503" {
            recorded = try await run(states)
        }
        Self.knownDataStates.withLock { known in
            if known.count > 10_000 { known.removeAll() }
            for digest in states.keys { known.insert(prefix + digest) }
        }
        return recorded
    }

    /// The decision a request id stands for: its final decision (one that chose or refused units),
    /// or, while it has none, its latest `unable_to_verify` attempt.
    public func find(requestID: String) async throws -> StoredDecision? {
        try await database.observe("decision.find") {
            try await fetch(where: "request_id", requestID)
        }
    }

    /// A decision by id.
    public func find(decisionID: UUID) async throws -> StoredDecision? {
        try await database.observe("decision.find") {
            try await fetch(where: "decision_id", decisionID.uuidString.lowercased())
        }
    }

    private func fetch(where column: String, _ value: String) async throws -> StoredDecision? {
        let logger = database.logger
        let sql = """
            SELECT d.decision_id, d.request_id, d.hospital, d.requested_by, d.outcome, d.request::text, d.rationale::text, d.policy_version,
                   d.index_version, d.evaluated_at, d.recorded_at, d.trace_id, d.data_state, s.centres::text, d.retry_of
            FROM decisions d LEFT JOIN decision_data_states s ON s.digest = d.data_state
            WHERE \(column == "request_id" ? "d.request_id = $1" : "d.decision_id = $1::uuid")
            ORDER BY d.outcome = 'unable_to_verify', d.recorded_at DESC LIMIT 1
            """
        var binds = PostgresBindings()
        binds.append(value)
        var found: StoredDecision?
        for try await row in try await database.client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            .decode((UUID, String, String?, String, String, String, String, String, String?, Date, Date, String?, String?, String?, UUID?).self) {
            found = StoredDecision(decisionID: row.0, requestID: row.1, hospital: row.2, requestedBy: row.3, outcome: row.4,
                                   requestJSON: row.5, rationaleJSON: row.6, policyVersion: row.7, indexVersion: row.8,
                                   evaluatedAt: row.9, recordedAt: row.10, traceID: row.11, units: [],
                                   dataStateDigest: row.12, dataStateJSON: row.13, retryOf: row.14)
        }
        guard var decision = found else { return nil }
        for try await (rank, din, code, centre, chosen, reason) in try await database.client.query(
            "SELECT rank, din, product_code, centre, chosen, reason FROM decision_units WHERE decision_id = \(decision.decisionID) ORDER BY rank",
            logger: logger).decode((Int, String, String, String, Bool, String).self) {
            decision.units.append(DecisionUnit(rank: rank, din: din, productCode: code, centre: centre, chosen: chosen, reason: reason))
        }
        return decision
    }
}

