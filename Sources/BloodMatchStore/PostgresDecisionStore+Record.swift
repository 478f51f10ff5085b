import Foundation
import PostgresNIO

/// A decision waiting to be recorded, with the HTTP request it answers.
public struct PendingDecision: Sendable {
    /// The decision.
    public var decision: StoredDecision
    /// The request id for its `decision.made` event (the decision's own when nil).
    public var requestID: String?
    /// The HTTP client's address, for the event.
    public var clientAddress: String?

    /// Creates one.
    public init(_ decision: StoredDecision, requestID: String? = nil, clientAddress: String? = nil) {
        self.decision = decision
        self.requestID = requestID
        self.clientAddress = clientAddress
    }

    /// The request id its events carry.
    var eventRequestID: String { requestID ?? decision.requestID }
}

/// A decision was neither inserted nor found under its request id afterwards.
public struct DecisionNotRecordedError: Error, Sendable, CustomStringConvertible {
    /// The request id.
    public var requestID: String
    public var description: String { "decision for request '\(requestID)' was not inserted and no decision holds its request id" }
}

/// `body`'s value or error, as a `Result`.
func capture<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}

/// Decisions, their units and their `decision.made` events in one statement (atomic on its own,
/// one round trip, one commit), returning each inserted decision's id, the database's
/// `recorded_at` and the unverified attempt it follows (`retry_of`). A decision whose request id
/// already has a final decision (one that chose or refused units) is skipped (`ON CONFLICT DO
/// NOTHING` on the final decisions' unique index; an unverified one by `NOT EXISTS`) together with
/// its units and event; the caller reads the original. An `unable_to_verify` decision is never
/// final: a retry of its request id is recorded as a new decision naming it in `retry_of`.
/// Parameter types are stated, so the plan is made once per connection.
///
/// The record events the tables' triggers write cover the whole statement, so they carry the
/// request ids of every decision in it (space-separated) as their request id.
struct RecordDecisionsStatement: PostgresPreparedStatement {
    static let sql = """
        WITH s AS (
          INSERT INTO decision_data_states (digest, centres)
          SELECT x.digest, x.centres::jsonb FROM unnest($1::text[], $2::text[]) AS x(digest, centres)
          ON CONFLICT (digest) DO NOTHING
        ), d AS (
          INSERT INTO decisions (decision_id, request_id, hospital, requested_by, outcome, request, rationale,
            policy_version, index_version, evaluated_at, trace_id, data_state, retry_of)
          SELECT x.id, x.rid, NULLIF(x.h, ''), x.by, x.o, x.req::jsonb, x.rat::jsonb, x.pv, NULLIF(x.iv, ''), x.at,
                 NULLIF(x.tr, ''), NULLIF(x.ds, ''),
                 (SELECT p.decision_id FROM decisions p WHERE p.request_id = x.rid AND p.outcome = 'unable_to_verify'
                  ORDER BY p.recorded_at DESC LIMIT 1)
          FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                      $11::text[], $12::timestamptz[], $13::text[], $14::text[])
               AS x(id, rid, h, by, o, req, rat, pv, iv, at, tr, ds)
          WHERE NOT EXISTS (SELECT 1 FROM decisions f WHERE f.request_id = x.rid AND f.outcome <> 'unable_to_verify')
          ON CONFLICT (request_id) WHERE outcome <> 'unable_to_verify' DO NOTHING
          -- The request ids of the statement's transaction, for the record events its triggers write.
          RETURNING decision_id, recorded_at, retry_of, set_config('bm.request_id', $15, true) AS request_setting
        ), units AS (
          INSERT INTO decision_units (decision_id, rank, din, centre, chosen, reason, product_code)
          SELECT x.* FROM unnest($16::uuid[], $17::int[], $18::text[], $19::text[], $20::bool[], $21::text[], $22::text[])
               AS x(id, rank, din, centre, chosen, reason, code)
          WHERE x.id IN (SELECT decision_id FROM d)
        ), event AS (
          INSERT INTO event_log (actor, action, subject, payload, request_id, trace_id, peer_addr)
          SELECT x.by, 'decision.made', 'decision:' || x.id,
                 CASE WHEN d.retry_of IS NULL THEN x.p::jsonb ELSE x.p::jsonb || jsonb_build_object('retry_of', d.retry_of) END,
                 x.rid, NULLIF(x.tr, ''), NULLIF(x.peer, '')
          FROM unnest($3::uuid[], $6::text[], $23::text[], $24::text[], $13::text[], $25::text[]) WITH ORDINALITY
               AS x(id, by, p, rid, tr, peer, ord)
          JOIN d ON d.decision_id = x.id
          ORDER BY x.ord
        )
        SELECT decision_id, recorded_at, retry_of FROM d
        """
    static let bindingDataTypes: [PostgresDataType] = [
        .textArray, .textArray,
        .uuidArray, .textArray, .textArray, .textArray, .textArray, .textArray, .textArray, .textArray,
        .textArray, .timestamptzArray, .textArray, .textArray, .text,
        .uuidArray, .int8Array, .textArray, .textArray, .boolArray, .textArray, .textArray,
        .textArray, .textArray, .textArray,
    ]
    typealias Row = (UUID, Date, UUID?)

    let pending: [PendingDecision]
    let dataStates: [String: String]
    init(_ pending: [PendingDecision], dataStates: [String: String]) {
        self.pending = pending
        self.dataStates = dataStates
    }

    func makeBindings() throws -> PostgresBindings {
        let ds = pending.map(\.decision)
        let units = ds.flatMap { d in d.units.map { (d.decisionID, $0) } }
        var b = PostgresBindings(capacity: 25)
        let states = dataStates.sorted { $0.key < $1.key }
        b.append(states.map(\.key))
        b.append(states.map(\.value))
        b.append(ds.map(\.decisionID))
        b.append(ds.map(\.requestID))
        b.append(ds.map { $0.hospital ?? "" })
        b.append(ds.map(\.requestedBy))
        b.append(ds.map(\.outcome))
        b.append(ds.map(\.requestJSON))
        b.append(ds.map(\.rationaleJSON))
        b.append(ds.map(\.policyVersion))
        b.append(ds.map { $0.indexVersion ?? "" })
        b.append(ds.map(\.evaluatedAt))
        b.append(ds.map { $0.traceID ?? "" })
        b.append(ds.map { $0.dataStateDigest ?? "" })
        var seen = Set<String>()
        b.append(pending.map(\.eventRequestID).filter { seen.insert($0).inserted }.joined(separator: " "))
        b.append(units.map(\.0))
        b.append(units.map(\.1.rank))
        b.append(units.map(\.1.din))
        b.append(units.map(\.1.centre))
        b.append(units.map(\.1.chosen))
        b.append(units.map(\.1.reason))
        b.append(units.map(\.1.productCode))
        b.append(ds.map { d in
            #"{"request_id":\#(jsonString(d.requestID)),"outcome":"\#(d.outcome)","units":\#(d.units.filter(\.chosen).count)}"#
        })
        b.append(pending.map(\.eventRequestID))
        b.append(pending.map { $0.clientAddress ?? "" })
        return b
    }

    func decodeRow(_ row: PostgresRow) throws -> (UUID, Date, UUID?) { try row.decode((UUID, Date, UUID?).self) }
}
