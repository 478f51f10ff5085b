import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import Foundation
import HTTPTypes
import PostgresNIO
import Synchronization
import Testing

/// Access records through the hospital API: each carries the time its request arrived; a refused
/// key that exists is recorded with its id, reason and hospital, while keys that name nothing are
/// counted per minute; no secret reaches the log; the request's id and address reach every row it
/// writes.
@Suite("Hospital API access records")
struct AccessRecordAPITests {
    /// One `api.request` row.
    struct Row: Sendable {
        var actor: String
        var subject: String
        var payloadText: String
        var requestID: String?
        var clientAddress: String?
        var payload: [String: Any] { ((try? JSONSerialization.jsonObject(with: Data(payloadText.utf8))) as? [String: Any]) ?? [:] }
    }

    static func accessRows(_ h: APITestHarness) async throws -> [Row] {
        try await h.test.with(.owner) { db in
            var rows: [Row] = []
            for try await (actor, subject, payload, request, address) in try await db.client.query("""
                SELECT actor, subject, payload::text, request_id, peer_addr FROM bm.event_log WHERE action = 'api.request' ORDER BY seq
                """, logger: db.logger).decode((String, String, String, String?, String?).self) {
                rows.append(Row(actor: actor, subject: subject, payloadText: payload, requestID: request, clientAddress: address))
            }
            return rows
        }
    }

    /// The real clock until it is held at an instant.
    final class HeldClock: Sendable {
        let held = Mutex<Date?>(nil)
        func now() -> Date { held.withLock { $0 } ?? Date() }
        func hold(at date: Date) { held.withLock { $0 = date } }
    }

    static func requestID(_ id: String) -> HTTPFields { [.init("X-Request-ID")!: id] }
    static let availability = "/v1/availability?component=RBC&abo=O&rhd=NEG"

    @Test("refused keys: an existing key's refusal is one row naming it; unknown and missing keys are counted per minute; no secret is kept")
    func refusedKeysAndSecrets() async throws {
        let clock = HeldClock()
        try await APITestHarness.run(clock: clock.now) { client, h in
            // The services' clock, held still at a half second just ahead of the real one, so every
            // request falls in one minute and its arrival time is known to the millisecond.
            let fixed = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down) + 1.5)
            clock.hold(at: fixed)
            let arrival = Date.ISO8601FormatStyle().format(fixed).dropLast() + ".500Z"
            let minute = Date.ISO8601FormatStyle().format(fixed).prefix(16) + "Z"
            let revokedKeyID = try #require(AuthenticationFailure.keyID(presentedIn: h.revokedToken))
            let validKeyID = try #require(AuthenticationFailure.keyID(presentedIn: h.token))
            let wrongSecret = "bmk_\(validKeyID).\(APIKeyToken.generate().secret)"
            #expect(try await client.send(Self.availability, token: h.revokedToken, headers: Self.requestID("revoked-1")).status == .unauthorized)
            #expect(try await client.send(Self.availability, token: wrongSecret, headers: Self.requestID("wrong-1")).status == .unauthorized)
            let expired = try await client.send(Self.availability, token: h.expiredToken, headers: Self.requestID("expired-1"))
            #expect(expired.status == .unauthorized && (expired.error["message"] as? String)?.contains("expired") == true)
            var strangers: [String] = []
            for i in 0..<20 {
                let stranger = APIKeyToken.generate()
                strangers.append(stranger.keyID)
                let reply = try await client.send(Self.availability, token: stranger.text, headers: Self.requestID("unknown-\(i)"))
                #expect(reply.status == .unauthorized && reply.error["message"] as? String == "unknown API key")
            }
            for i in 0..<5 { _ = try await client.send(Self.availability, headers: Self.requestID("missing-\(i)")) }
            // A key in the query string and in the path of an unmatched route.
            let inQuery = try await client.send(Self.availability + "&API_KEY=\(h.token)&note=\(h.otherToken)", token: h.token,
                                                headers: Self.requestID("query-1"))
            #expect(inQuery.status == .badRequest)
            let inPath = try await client.send("/v1/lookup/\(h.token)", token: h.token, headers: Self.requestID("path-1"))
            #expect(inPath.status == .notFound)

            #expect(await h.services.recorder.flush())
            let rows = try await Self.accessRows(h)
            #expect(rows.map(\.requestID) == ["revoked-1", "wrong-1", "expired-1", "query-1", "path-1"])
            let byID = Dictionary(uniqueKeysWithValues: rows.map { ($0.requestID ?? "", $0) })
            let revoked = try #require(byID["revoked-1"])
            #expect(revoked.actor == "anonymous")
            #expect(revoked.payload["key_id"] as? String == revokedKeyID)
            #expect(revoked.payload["key_hospital"] as? String == APITestHarness.hospital)
            #expect(revoked.payload["auth_failure"] as? [String: String] == ["reason": "revoked", "key_id": revokedKeyID])
            #expect(revoked.payload["requested_at"] as? String == String(arrival))
            #expect((byID["wrong-1"]?.payload["auth_failure"] as? [String: String])?["reason"] == "wrong_secret")
            #expect((byID["expired-1"]?.payload["auth_failure"] as? [String: String])?["reason"] == "expired")
            let query = (byID["query-1"]?.payload["parameters"] as? [String: String])?["query"]
            let otherKeyID = try #require(AuthenticationFailure.keyID(presentedIn: h.otherToken))
            #expect(query == "component=RBC&abo=O&rhd=NEG&API_KEY=[redacted]&note=bmk_\(otherKeyID).[redacted]")
            #expect(byID["path-1"]?.payload["path"] as? String == "/v1/lookup/bmk_\(validKeyID).[redacted]")
            for token in [h.token, h.otherToken, h.revokedToken, h.expiredToken, wrongSecret] {
                let secret = String(token.split(separator: ".")[1])
                #expect(!rows.contains { $0.payloadText.contains(secret) || ($0.requestID ?? "").contains(secret) })
            }

            // Shutdown closes the open minute: one record per reason, not one per request.
            #expect(await h.services.recorder.flush(includingOpenMinutes: true))
            let counted = try await Self.accessRows(h).dropFirst(rows.count)
            #expect(counted.count == 2)
            let unknown = try #require(counted.first { $0.payload["reason"] as? String == "unknown" })
            #expect(unknown.actor == "anonymous" && unknown.subject == "/v1/availability")
            #expect(unknown.payload["aggregate"] as? Bool == true && unknown.payload["count"] as? Int == 20)
            #expect(unknown.payload["minute"] as? String == String(minute))
            #expect(unknown.payload["first_request_id"] as? String == "unknown-0" && unknown.payload["last_request_id"] as? String == "unknown-19")
            #expect(unknown.payload["key_ids"] as? [String] == Array(strangers.prefix(5)))
            let missing = try #require(counted.first { $0.payload["reason"] as? String == "missing" })
            #expect(missing.payload["count"] as? Int == 5 && (missing.payload["key_ids"] as? [String])?.isEmpty == true)
        }
    }

    @Test("an address whose keys keep failing gets 429 before its next key is looked at, counted per minute; a real key from it still works")
    func failedAuthenticationsThrottledPerAddress() async throws {
        try await APITestHarness.run(configure: { $0.failedAuthenticationBurst = 5; $0.failedAuthenticationRate = 0.01 }) { client, h in
            let before = try await Self.accessRows(h).count
            var statuses: [Int] = []
            for i in 0..<12 {
                let reply = try await client.send(Self.availability, token: APIKeyToken.generate().text, headers: Self.requestID("flood-\(i)"))
                statuses.append(reply.status.code)
                if reply.status == .tooManyRequests {
                    #expect(reply.errorCode == "too_many_failed_authentications" && reply.headers[.retryAfter] != nil, "\(reply.text)")
                }
            }
            #expect(statuses == Array(repeating: 401, count: 5) + Array(repeating: 429, count: 7), "\(statuses)")
            // A hospital behind the same address, with a key that exists, is not locked out.
            let real = try await client.send(Self.availability, token: h.token, headers: Self.requestID("real-1"))
            #expect(real.status == .ok, "\(real.text)")
            #expect(await h.services.recorder.flush(includingOpenMinutes: true))
            let rows = try await Self.accessRows(h).dropFirst(before)
            // Twelve refusals became two records (unknown × 5, throttled × 7) and the real request one.
            let counts = rows.compactMap { row -> String? in
                guard let reason = row.payload["reason"] as? String, let count = row.payload["count"] as? Int else { return nil }
                return "\(reason)=\(count)"
            }.sorted()
            #expect(counts == ["throttled=7", "unknown=5"], "\(counts)")
            #expect(rows.count == 3, "\(rows.map(\.requestID))")
        }
    }

    // The limit catches a hang, not slowness: every HTTP test of the run starts at once, and on a
    // loaded 2-core machine each takes up to ~160 s of wall time (about 5 s alone).
    @Test("a match, a hold, a receipt and a release write the request's own id and client address on their events", .timeLimit(.minutes(5)))
    func requestIDsReachTheStores() async throws {
        try await APITestHarness.run(live: true) { client, h in
            func headers(_ id: String, key: String? = nil) -> HTTPFields {
                var fields = Self.requestID(id)
                if let key { fields[.init("Idempotency-Key")!] = key }
                return fields
            }
            let match = try await client.send("/v1/matches", .post, token: h.token, headers: headers("rid-match"), body: HTTPAPITests.matchBody)
            #expect(match.status == .created, "\(match.text)")
            let decision = try #require(match.object["decision_id"] as? String)
            let held = try await client.send("/v1/reservations", .post, token: h.token, headers: headers("rid-hold", key: "k-hold"),
                                             body: #"{"decision_id":"\#(decision)"}"#)
            #expect(held.status == .created, "\(held.text)")
            let reservation = try #require(held.object["reservation_id"] as? String)
            let unit = try #require((held.object["units"] as? [[String: Any]])?.first)
            let din = try #require(unit["din"] as? String), code = try #require(unit["product_code"] as? String)
            let outcome = try await h.test.withOperator(.dispatcher) { db in
                try await PostgresReservationStore(database: db).issue(try #require(UUID(uuidString: reservation)),
                                                                       units: [UnitKey(din: din, productCode: code)],
                                                                       by: "dispatcher", idempotencyKey: "issue-1")
            }
            guard case .issued = outcome else { Issue.record("not issued: \(outcome)"); return }
            let receipt = try await client.send("/v1/units/\(din)/\(code)/receipt", .post, token: h.token,
                                                headers: headers("rid-receipt", key: "k-receipt"), body: "{}")
            #expect(receipt.status == .created, "\(receipt.text)")
            let released = try await client.send("/v1/reservations/\(reservation)", .delete, token: h.token, headers: headers("rid-release"))
            #expect(released.status == .ok, "\(released.text)")

            let events = try await h.test.with(.owner) { db in
                var out: [String: (String?, String?)] = [:]
                for try await (action, request, address) in try await db.client.query("""
                    SELECT action, request_id, peer_addr FROM bm.event_log
                    WHERE action IN ('decision.made', 'reservation.made', 'unit.received', 'reservation.released')
                    """, logger: db.logger).decode((String, String?, String?).self) { out[action] = (request, address) }
                return out
            }
            #expect(await h.services.recorder.flush())
            let access = try await Self.accessRows(h)
            let address = try #require(access.first { $0.requestID == "rid-match" }?.clientAddress)
            #expect(address == "127.0.0.1")
            #expect(events["decision.made"]?.0 == "rid-match" && events["decision.made"]?.1 == address)
            #expect(events["reservation.made"]?.0 == "rid-hold" && events["reservation.made"]?.1 == address)
            #expect(events["unit.received"]?.0 == "rid-receipt" && events["unit.received"]?.1 == address)
            #expect(events["reservation.released"]?.0 == "rid-release" && events["reservation.released"]?.1 == address)
            // The decision keeps its own request id (its idempotency identity) on its row.
            let stored = try await h.test.with(.app) { db in
                try await PostgresDecisionStore(database: db).find(decisionID: try #require(UUID(uuidString: decision)))
            }
            #expect(stored?.requestID.hasPrefix("api:\(APITestHarness.hospital):") == true)
        }
    }
}
