import BloodMatchService
import BloodMatchStore
import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import Testing
import Tracing

/// W3C trace context through the hospital API: the caller's trace id reaches the decision,
/// reservation and access rows; the response names the server's own span; a malformed
/// `traceparent` starts a new trace and never fails the request.
@Suite("Tracing through the hospital API")
struct TracingTests {
    static let parentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let parentSpan = "00f067aa0ba902b7"
    static let traceparent = "00-\(parentTrace)-\(parentSpan)-01"
    static let traceparentName = HTTPField.Name("traceparent")!

    static func headers(_ traceparent: String?, requestID: String, key: String? = nil) -> HTTPFields {
        var fields: HTTPFields = [.init("X-Request-ID")!: requestID]
        if let traceparent { fields[traceparentName] = traceparent }
        if let key { fields[.init("Idempotency-Key")!] = key }
        return fields
    }

    /// The trace id an access record carries, by request id.
    static func accessTraceIDs(_ h: APITestHarness) async throws -> [String: String?] {
        #expect(await h.services.recorder.flush())
        return try await h.test.with(.owner) { db in
            var out: [String: String?] = [:]
            for try await (request, trace) in try await db.client.query("""
                SELECT request_id, trace_id FROM bm.event_log WHERE action = 'api.request'
                """, logger: db.logger).decode((String, String?).self) { out[request] = trace }
            return out
        }
    }

    @Test("a request's traceparent reaches the decision, reservation and access rows; the response names a child span")
    func traceReachesRows() async throws {
        try await APITestHarness.run { client, h in
            let match = try await client.send("/v1/matches", .post, token: h.token,
                                              headers: Self.headers(Self.traceparent, requestID: "trace-match", key: "t-m-1"),
                                              body: HTTPAPITests.matchBody)
            #expect(match.status == .created, "\(match.text)")
            let echoed = TraceHeaders(traceparent: match.headers[Self.traceparentName])
            #expect(echoed.traceparent.map(TraceHeaders.isValid) == true, "\(String(describing: echoed.traceparent))")
            #expect(echoed.traceID == Self.parentTrace)
            #expect(echoed.spanID != nil && echoed.spanID != Self.parentSpan)
            let decisionID = try #require((match.object["decision_id"] as? String).flatMap(UUID.init(uuidString:)))

            // A second trace for the reservation, so each row is shown to carry its own request's id.
            let holdTrace = "0af7651916cd43dd8448eb211c80319c"
            let held = try await client.send("/v1/reservations", .post, token: h.token,
                                             headers: Self.headers("00-\(holdTrace)-b7ad6b7169203331-01", requestID: "trace-hold", key: "t-r-1"),
                                             body: #"{"decision_id":"\#(decisionID.uuidString.lowercased())"}"#)
            #expect(held.status == .created, "\(held.text)")
            let reservationID = try #require((held.object["reservation_id"] as? String).flatMap(UUID.init(uuidString:)))

            let (decision, reservation, events) = try await h.test.with(.owner) { db in
                let decision = try await PostgresDecisionStore(database: db).find(decisionID: decisionID)
                let reservation = try await PostgresReservationStore(database: db).find(reservationID: reservationID)
                var events: [String: String?] = [:]
                for try await (action, trace) in try await db.client.query("""
                    SELECT action, trace_id FROM bm.event_log WHERE action IN ('decision.made', 'reservation.made')
                    """, logger: db.logger).decode((String, String?).self) { events[action] = trace }
                return (decision, reservation, events)
            }
            #expect(decision?.traceID == Self.parentTrace)
            #expect(reservation?.traceID == holdTrace)
            #expect(events["decision.made"] == .some(Self.parentTrace))
            #expect(events["reservation.made"] == .some(holdTrace))
            let access = try await Self.accessTraceIDs(h)
            #expect(access["trace-match"] == .some(Self.parentTrace))
            #expect(access["trace-hold"] == .some(holdTrace))
        }
    }

    static let malformed = [
        "garbage",
        "00-\(String(repeating: "0", count: 32))-00f067aa0ba902b7-01",   // all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",      // all-zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",       // short trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",      // not hex
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",      // upper case
    ]

    @Test("a malformed traceparent is ignored: the request succeeds under a new trace")
    func malformedIsIgnored() async throws {
        try await APITestHarness.run { client, h in
            var fresh: [String: String] = [:]
            for (i, bad) in Self.malformed.enumerated() {
                let reply = try await client.send("/v1/availability?component=RBC&abo=O&rhd=NEG", token: h.token,
                                                  headers: Self.headers(bad, requestID: "bad-trace-\(i)"))
                #expect(reply.status == .ok, "\(bad): \(reply.text)")
                let echoed = TraceHeaders(traceparent: reply.headers[Self.traceparentName])
                #expect(TraceHeaders.isValid(echoed.traceparent ?? ""), "\(bad)")
                let id = try #require(echoed.traceID)
                #expect(!bad.lowercased().contains(id), "\(bad) was continued")
                fresh["bad-trace-\(i)"] = id
            }
            let access = try await Self.accessTraceIDs(h)
            for (request, id) in fresh { #expect(access[request] == .some(id), "\(request)") }
        }
    }

    @Test("without a traceparent each request gets its own trace id, on its row and in its response")
    func newTracePerRequest() async throws {
        try await APITestHarness.run { client, h in
            let a = try await client.send("/health", headers: Self.headers(nil, requestID: "plain-a"))
            let b = try await client.send("/health", headers: Self.headers(nil, requestID: "plain-b"))
            let ta = try #require(TraceHeaders(traceparent: a.headers[Self.traceparentName]).traceID)
            let tb = try #require(TraceHeaders(traceparent: b.headers[Self.traceparentName]).traceID)
            #expect(ta != tb)
            let access = try await Self.accessTraceIDs(h)
            #expect(access["plain-a"] == .some(ta))
            #expect(access["plain-b"] == .some(tb))
        }
    }

    @Test("log lines inside a span carry its trace id and span id")
    func logMetadata() throws {
        APITestHarness.bootstrapTracing()
        var parent = InstrumentationContext.topLevel
        TraceHeaders(traceparent: Self.traceparent).extract(into: &parent)
        let (metadata, own) = withSpan("test", context: parent) { span in
            (TracingSystem.loggingMetadataProvider.get(), TraceHeaders.of(span.context))
        }
        #expect(metadata["trace_id"].map { "\($0)" } == Self.parentTrace)
        #expect(metadata["span_id"].map { "\($0)" } == own.spanID)
        #expect(own.spanID != Self.parentSpan)
        #expect(TracingSystem.loggingMetadataProvider.get()["trace_id"] == nil)
    }

    @Test("traceparent validation follows W3C Trace Context")
    func validation() {
        #expect(TraceHeaders.isValid(Self.traceparent))
        #expect(!TraceHeaders.isValid(Self.traceparent.uppercased()))
        #expect(!TraceHeaders.isValid(""))
        #expect(!TraceHeaders.isValid("00-\(Self.parentTrace)-\(Self.parentSpan)-0"))
        #expect(TraceHeaders.received(traceparent: "nope", tracestate: "a=b") == TraceHeaders())
        let long = String(repeating: "k=v,", count: 200)
        #expect(TraceHeaders.received(traceparent: Self.traceparent, tracestate: long).tracestate == nil)
        #expect(TraceHeaders.received(traceparent: Self.traceparent, tracestate: "a=b").tracestate == "a=b")
    }
}
