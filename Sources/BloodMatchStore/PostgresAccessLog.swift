import Foundation
import PostgresNIO

/// One HTTP request as recorded in `bm.event_log` (action `api.request`).
public struct AccessRecord: Sendable, Hashable {
    /// The hospital (or `anonymous` before authentication).
    public var actor: String
    /// The route template (`/v1/matches/{id}`) or `unmatched`.
    public var subject: String
    /// `{key_id, method, parameters, status, outcome, latency_ms, requested_at, …}` as JSON text.
    public var payloadJSON: String
    /// The request id (`X-Request-ID`, or generated).
    public var requestID: String
    /// The trace id, when the caller sent a `traceparent`.
    public var traceID: String?
    /// The peer address.
    public var clientAddress: String?
    /// When the request arrived, by this host's clock: the payload's `requested_at`. The row's
    /// `occurred_at` is when its batch was written, which after a database outage can be much later.
    public var requestedAt: Date

    /// Creates a record.
    public init(actor: String, subject: String, payloadJSON: String, requestID: String, traceID: String?, clientAddress: String?,
                requestedAt: Date) {
        self.actor = actor
        self.subject = subject
        self.payloadJSON = payloadJSON
        self.requestID = requestID
        self.traceID = traceID
        self.clientAddress = clientAddress
        self.requestedAt = requestedAt
    }
}

/// Appends access records in batches: one multi-row INSERT (arrays through `unnest`) per batch,
/// so recording costs no round trip per request.
public struct PostgresAccessLog: Sendable {
    /// The pool.
    public let database: Database

    /// Creates the writer.
    public init(database: Database) { self.database = database }

    /// Appends `records` in one statement (all or nothing).
    public func append(_ records: [AccessRecord]) async throws {
        try await database.observe("access_log.append") {
            guard !records.isEmpty else { return }
            // The same actor form as every other event the service writes (the database accepts
            // nothing else from the service's login).
            let actors = records.map { $0.actor == "anonymous" || $0.actor.hasPrefix("hospital:") ? $0.actor : "hospital:" + $0.actor }
            let subjects = records.map(\.subject)
            let payloads = records.map(\.payloadJSON)
            let requestIDs = records.map(\.requestID)
            let traceIDs = records.map { $0.traceID ?? "" }
            let addresses = records.map { $0.clientAddress ?? "" }
            try await database.client.query("""
                INSERT INTO event_log (actor, action, subject, payload, request_id, trace_id, peer_addr)
                SELECT a, 'api.request', s, p::jsonb, r, NULLIF(t, ''), NULLIF(c, '')
                FROM unnest(\(actors)::text[], \(subjects)::text[], \(payloads)::text[], \(requestIDs)::text[],
                            \(traceIDs)::text[], \(addresses)::text[]) AS x(a, s, p, r, t, c)
                """, logger: database.logger)
        }
    }
}
