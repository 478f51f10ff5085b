import BloodMatchCore
import BloodMatchService
import BloodMatchStore
import Foundation
import HTTPTypes
import PostgresNIO
import Testing

/// Access records through the hospital API: the request's id and address reach every row it writes.
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
                SELECT actor, subject, payload::text, request_id, client_addr FROM bm.event_log WHERE action = 'api.request' ORDER BY seq
                """, logger: db.logger).decode((String, String, String, String?, String?).self) {
                rows.append(Row(actor: actor, subject: subject, payloadText: payload, requestID: request, clientAddress: address))
            }
            return rows
        }
    }

    static func requestID(_ id: String) -> HTTPFields { [.init("X-Request-ID")!: id] }
    @Test("a match, a hold, a receipt and a release write the request's own id and client address on their events", .timeLimit(.minutes(2)))
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
            let outcome = try await h.test.with(.app) { db in
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
                    SELECT action, request_id, client_addr FROM bm.event_log
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
