import BloodMatchCore
import BloodMatchStore
import Foundation
import HTTPTypes
import Testing

/// Receipt and fate through the hospital API: only the consignee records them, in order, once each;
/// a key replays its own record and is refused for anything else; a returned unit is not offered.
@Suite("Hospital API receipt and fate")
struct UnitFateAPITests {
    static func key(_ k: String) -> HTTPFields { [.init("Idempotency-Key")!: k] }

    @Test("issued unit: receipt by the consignee only, replay, out of order refused, fate with a reason from the list")
    func receiptAndFate() async throws {
        try await APITestHarness.run { client, h in
            let match = try await client.send("/v1/matches", .post, token: h.token, headers: Self.key("m-1"), body: HTTPAPITests.matchBody)
            let decision = try #require(match.object["decision_id"] as? String)
            let chosen = try #require(match.object["units"] as? [[String: Any]])
            let din = try #require(chosen.first?["din"] as? String), code = try #require(chosen.first?["product_code"] as? String)
            let other = try #require(chosen.last?["din"] as? String)
            let held = try await client.send("/v1/reservations", .post, token: h.token, headers: Self.key("r-1"),
                                             body: #"{"decision_id":"\#(decision)","units":[{"din":"\#(din)","product_code":"\#(code)"},"\#(other)"]}"#)
            #expect(held.status == .created, "\(held.text)")
            let units = try #require(held.object["units"] as? [[String: Any]])
            #expect(units.allSatisfy { $0["state"] as? String == "active" && $0["product_code"] as? String == code })
            let id = try #require(held.object["reservation_id"] as? String)
            let receipt = "/v1/units/\(din)/\(code)/receipt", fate = "/v1/units/\(din)/\(code)/fate"

            // Not issued yet.
            let early = try await client.send(receipt, .post, token: h.token, headers: Self.key("f-0"), body: "{}")
            #expect(early.status == .conflict && early.errorCode == "not_issued", "\(early.text)")

            // The dispatcher issues it (CLI / store), then the hospital confirms receipt.
            let outcome = try await h.test.withOperator(.dispatcher) { db in
                try await PostgresReservationStore(database: db).issue(try #require(UUID(uuidString: id)), units: [UnitKey(din: din, productCode: code)],
                                                                       by: "dispatcher", idempotencyKey: "issue-1")
            }
            guard case .issued(let records, true) = outcome else { Issue.record("not issued: \(outcome)"); return }
            #expect(records.first?.consigneeAddress == "Wollongong NSW, Australia")

            #expect(try await client.send(receipt, .post, token: h.token, body: "{}").status == .badRequest)
            let foreign = try await client.send(receipt, .post, token: h.otherToken, headers: Self.key("f-1"), body: "{}")
            #expect(foreign.status == .forbidden, "\(foreign.text)")
            let badFate = try await client.send(fate, .post, token: h.token, headers: Self.key("f-2"), body: #"{"fate":"transfused"}"#)
            #expect(badFate.status == .conflict && badFate.errorCode == "out_of_order", "\(badFate.text)")

            let got = try await client.send(receipt, .post, token: h.token, headers: Self.key("f-3"), body: #"{"note":"blood bank fridge 2"}"#)
            #expect(got.status == .created, "\(got.text)")
            #expect(got.object["event"] as? String == "received" && got.object["hospital_id"] as? String == APITestHarness.hospital)
            let replay = try await client.send(receipt, .post, token: h.token, headers: Self.key("f-3"), body: #"{"note":"blood bank fridge 2"}"#)
            #expect(replay.status == .ok && replay.headers[.init("Idempotent-Replayed")!] == "true")
            let twice = try await client.send(receipt, .post, token: h.token, headers: Self.key("f-4"), body: "{}")
            #expect(twice.status == .conflict && twice.errorCode == "out_of_order")
            let reused = try await client.send(fate, .post, token: h.token, headers: Self.key("f-3"), body: #"{"fate":"transfused"}"#)
            #expect(reused.status == .conflict && reused.errorCode == "idempotency_key_reused", "\(reused.text)")

            let noReason = try await client.send(fate, .post, token: h.token, headers: Self.key("f-5"), body: #"{"fate":"discarded"}"#)
            #expect(noReason.status == .badRequest && noReason.error["field"] as? String == "reason", "\(noReason.text)")
            let wrongReason = try await client.send(fate, .post, token: h.token, headers: Self.key("f-6"),
                                                    body: #"{"fate":"returned","reason":"temperature_excursion"}"#)
            #expect(wrongReason.status == .badRequest, "\(wrongReason.text)")
            let unknown = try await client.send(fate, .post, token: h.token, headers: Self.key("f-7"), body: #"{"fate":"lost"}"#)
            #expect(unknown.status == .badRequest && unknown.error["field"] as? String == "fate")
            let returned = try await client.send(fate, .post, token: h.token, headers: Self.key("f-8"),
                                                 body: #"{"fate":"returned","reason":"no_longer_required"}"#)
            #expect(returned.status == .created, "\(returned.text)")
            #expect(returned.object["reason"] as? String == "no_longer_required")
            let after = try await client.send(fate, .post, token: h.token, headers: Self.key("f-9"), body: #"{"fate":"transfused"}"#)
            #expect(after.status == .conflict && after.errorCode == "not_issued", "\(after.text)")

            // The returned unit waits for its centre's feed: the next match does not propose it.
            let next = try await client.send("/v1/matches", .post, token: h.token, headers: Self.key("m-2"), body: HTTPAPITests.matchBody)
            let proposed = ((next.object["units"] as? [[String: Any]]) ?? []).compactMap { $0["din"] as? String }
            #expect(!proposed.contains(din), "\(next.text)")

            let hold = try await client.send("/v1/reservations/\(id)", token: h.token)
            let states = ((hold.object["units"] as? [[String: Any]]) ?? []).compactMap { $0["state"] as? String }.sorted()
            #expect(states == ["active", "returned"], "\(hold.text)")
        }
    }
}
