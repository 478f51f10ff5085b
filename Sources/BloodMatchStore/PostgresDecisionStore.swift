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

    /// Creates a record.
    public init(decisionID: UUID, requestID: String, hospital: String?, requestedBy: String, outcome: String,
                requestJSON: String, rationaleJSON: String, policyVersion: String, indexVersion: String?,
                evaluatedAt: Date, recordedAt: Date? = nil, traceID: String? = nil, units: [DecisionUnit],
                dataStateDigest: String? = nil, dataStateJSON: String? = nil) {
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
        try await database.observe("decision.record") {
            let logger = database.logger
            do {
                // One statement (atomic on its own): the decision, its units and its event in one round
                // trip, so the audit chain's lock is held for the statement only, not for a
                // BEGIN…COMMIT conversation. Prepared once per connection: planning it took longer
                // than running it.
                var recordedAt = Date()
                let stateKey = decision.dataStateDigest.map { database.configuration.displayName + "|" + $0 }
                let known = stateKey.map { key in Self.knownDataStates.withLock { $0.contains(key) } } ?? true
                do {
                    for try await recorded in try await database.client.execute(
                        RecordDecisionStatement(decision, eventRequestID: requestID ?? decision.requestID, clientAddress: clientAddress,
                                                sendDataState: !known), logger: logger) {
                        recordedAt = recorded
                    }
                } catch where known && sqlState(error) == "23503" {
                    // The data state this process wrote before is not in this database (restored, or another
                    // database): written now with the decision.
                    for try await recorded in try await database.client.execute(
                        RecordDecisionStatement(decision, eventRequestID: requestID ?? decision.requestID, clientAddress: clientAddress,
                                                sendDataState: true), logger: logger) {
                        recordedAt = recorded
                    }
                }
                if let stateKey {
                    Self.knownDataStates.withLock { set in
                        if set.count > 10_000 { set.removeAll() }
                        set.insert(stateKey)
                    }
                }
                var stored = decision
                stored.recordedAt = recordedAt
                return (stored, true)
            } catch where sqlState(error) == "23505" {
                guard let existing = try await find(requestID: decision.requestID) else { throw error }
                return (existing, false)
            }
        }
    }

    /// The decision recorded under a request id.
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
                   d.index_version, d.evaluated_at, d.recorded_at, d.trace_id, d.data_state, s.centres::text
            FROM decisions d LEFT JOIN decision_data_states s ON s.digest = d.data_state
            WHERE \(column == "request_id" ? "d.request_id = $1" : "d.decision_id = $1::uuid")
            """
        var binds = PostgresBindings()
        binds.append(value)
        var found: StoredDecision?
        for try await row in try await database.client.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            .decode((UUID, String, String?, String, String, String, String, String, String?, Date, Date, String?, String?, String?).self) {
            found = StoredDecision(decisionID: row.0, requestID: row.1, hospital: row.2, requestedBy: row.3, outcome: row.4,
                                   requestJSON: row.5, rationaleJSON: row.6, policyVersion: row.7, indexVersion: row.8,
                                   evaluatedAt: row.9, recordedAt: row.10, traceID: row.11, units: [],
                                   dataStateDigest: row.12, dataStateJSON: row.13)
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

/// The decision, its units and its `decision.made` event in one statement, returning the
/// database's `recorded_at`. Parameter types are stated, so the plan is made once per connection.
struct RecordDecisionStatement: PostgresPreparedStatement {
    static let sql = """
        WITH s AS (
          INSERT INTO decision_data_states (digest, centres) SELECT $22, $23::jsonb WHERE $23 IS NOT NULL
          ON CONFLICT (digest) DO NOTHING
        ), d AS (
          INSERT INTO decisions (decision_id, request_id, hospital, requested_by, outcome, request, rationale,
            policy_version, index_version, evaluated_at, trace_id, data_state)
          VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $11, $22)
          -- The request id of the statement's transaction, for the record events its triggers write.
          RETURNING decision_id, recorded_at, set_config('bm.request_id', $20, true) AS request_setting
        ), units AS (
          INSERT INTO decision_units (decision_id, rank, din, centre, chosen, reason, product_code)
          SELECT d.decision_id, x.* FROM d, unnest($12::int[], $13::text[], $14::text[], $15::bool[], $16::text[], $19::text[]) AS x
        ), event AS (
          INSERT INTO event_log (actor, action, subject, payload, request_id, trace_id, peer_addr)
          SELECT $4, 'decision.made', $17, $18::jsonb, $20, $11, $21 FROM d
        )
        SELECT recorded_at FROM d
        """
    static let bindingDataTypes: [PostgresDataType] = [
        .uuid, .text, .text, .text, .text, .text, .text, .text, .text, .timestamptz, .text,
        .int8Array, .textArray, .textArray, .boolArray, .textArray, .text, .text, .textArray, .text, .text, .text, .text,
    ]
    typealias Row = Date

    let decision: StoredDecision
    let eventRequestID: String
    let clientAddress: String?
    let sendDataState: Bool
    init(_ decision: StoredDecision, eventRequestID: String, clientAddress: String?, sendDataState: Bool) {
        self.decision = decision
        self.eventRequestID = eventRequestID
        self.clientAddress = clientAddress
        self.sendDataState = sendDataState
    }

    func makeBindings() throws -> PostgresBindings {
        let d = decision
        let u = d.units
        let payload = #"{"request_id":\#(jsonString(d.requestID)),"outcome":"\#(d.outcome)","units":\#(u.filter(\.chosen).count)}"#
        var b = PostgresBindings(capacity: 23)
        b.append(d.decisionID)
        b.append(d.requestID)
        b.append(d.hospital)
        b.append(d.requestedBy)
        b.append(d.outcome)
        b.append(d.requestJSON)
        b.append(d.rationaleJSON)
        b.append(d.policyVersion)
        b.append(d.indexVersion)
        b.append(d.evaluatedAt)
        b.append(d.traceID)
        b.append(u.map(\.rank))
        b.append(u.map(\.din))
        b.append(u.map(\.centre))
        b.append(u.map(\.chosen))
        b.append(u.map(\.reason))
        b.append("decision:" + d.decisionID.uuidString.lowercased())
        b.append(payload)
        b.append(u.map(\.productCode))
        b.append(eventRequestID)
        b.append(clientAddress)
        b.append(d.dataStateDigest)
        b.append(sendDataState ? d.dataStateJSON : nil)
        return b
    }

    func decodeRow(_ row: PostgresRow) throws -> Date { try row.decode(Date.self) }
}
