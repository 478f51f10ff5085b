import BloodMatchStore
import Foundation
import HTTPTypes
import Testing

/// Reservations through the hospital API: a decision's units are held all or none, once per key,
/// only by the hospital the decision was for; a held unit leaves the next match; release frees it.
@Suite("Hospital API reservations")
struct ReservationAPITests {
    static func key(_ k: String) -> HTTPFields { [.init("Idempotency-Key")!: k] }

    @Test("reserve, replay, conflict, another hospital, read, release, reserve again")
    func lifecycle() async throws {
        try await APITestHarness.run { client, h in
            let match = try await client.send("/v1/matches", .post, token: h.token, headers: Self.key("m-1"), body: HTTPAPITests.matchBody)
            #expect(match.status == .created, "\(match.text)")
            let decision = try #require(match.object["decision_id"] as? String)
            let units = try #require(match.object["units"] as? [[String: Any]]).compactMap { $0["din"] as? String }
            #expect(units.count == 2)

            let body = #"{"decision_id":"\#(decision)","hold_minutes":30}"#
            let held = try await client.send("/v1/reservations", .post, token: h.token, headers: Self.key("r-1"), body: body)
            #expect(held.status == .created, "\(held.text)")
            let id = try #require(held.object["reservation_id"] as? String)
            #expect(held.headers[.location] == "/v1/reservations/\(id)")
            #expect(((held.object["units"] as? [[String: Any]]) ?? []).compactMap { $0["din"] as? String }.sorted() == units.sorted())

            let replay = try await client.send("/v1/reservations", .post, token: h.token, headers: Self.key("r-1"), body: body)
            #expect(replay.status == .ok)
            #expect(replay.object["reservation_id"] as? String == id)
            #expect(replay.headers[.init("Idempotent-Replayed")!] == "true")

            let reused = try await client.send("/v1/reservations", .post, token: h.token, headers: Self.key("r-1"),
                                               body: #"{"decision_id":"\#(decision)","units":["\#(units[0])"]}"#)
            #expect(reused.status == .conflict)
            #expect(reused.errorCode == "idempotency_key_reused")

            let taken = try await client.send("/v1/reservations", .post, token: h.token, headers: Self.key("r-2"), body: body)
            #expect(taken.status == .conflict)
            #expect(taken.errorCode == "units_unavailable")
            #expect((taken.error["message"] as? String)?.contains("held by another reservation") == true)

            let foreign = try await client.send("/v1/reservations", .post, token: h.otherToken, headers: Self.key("r-3"), body: body)
            #expect(foreign.status == .forbidden)
            #expect(try await client.send("/v1/reservations/\(id)", token: h.otherToken).status == .forbidden)
            #expect(try await client.send("/v1/reservations/\(id)", .delete, token: h.otherToken).status == .forbidden)

            let missingKey = try await client.send("/v1/reservations", .post, token: h.token, body: body)
            #expect(missingKey.status == .badRequest)
            #expect(missingKey.error["field"] as? String == "Idempotency-Key")
            let stranger = try await client.send("/v1/reservations", .post, token: h.token, headers: Self.key("r-4"),
                                                 body: #"{"decision_id":"\#(decision)","units":["T000126999999"]}"#)
            #expect(stranger.status == .badRequest)
            #expect(stranger.error["field"] as? String == "units")
            let unknownField = try await client.send("/v1/reservations", .post, token: h.token, headers: Self.key("r-5"),
                                                     body: #"{"decision_id":"\#(decision)","patient":"x"}"#)
            #expect(unknownField.errorCode == "unknown_field")

            // While held, the next match for the same hospital takes other units.
            let next = try await client.send("/v1/matches", .post, token: h.token, headers: Self.key("m-2"), body: HTTPAPITests.matchBody)
            let nextUnits = ((next.object["units"] as? [[String: Any]]) ?? []).compactMap { $0["din"] as? String }
            #expect(Set(nextUnits).isDisjoint(with: units), "\(nextUnits) overlaps the held \(units)")

            let read = try await client.send("/v1/reservations/\(id)", token: h.token)
            #expect(read.status == .ok)
            #expect(((read.object["units"] as? [[String: Any]]) ?? []).allSatisfy { $0["state"] as? String == "active" })
            let released = try await client.send("/v1/reservations/\(id)", .delete, token: h.token)
            #expect(released.status == .ok)
            #expect(((released.object["units"] as? [[String: Any]]) ?? []).allSatisfy { $0["state"] as? String == "released" })
            #expect(try await client.send("/v1/reservations/\(id)", .delete, token: h.token).status == .ok)
            let gone = try await client.send("/v1/reservations/\(id)", token: h.token)
            #expect(gone.status == .gone)
            #expect(gone.errorCode == "released")

            let again = try await client.send("/v1/reservations", .post, token: h.token, headers: Self.key("r-6"), body: body)
            #expect(again.status == .created, "\(again.text)")

            // One reservation.made event per hold, with the hospital's key as the actor.
            let made = try await h.test.with(.app) { db in
                try await PostgresAuditLog(database: db).events(subjects: [ "reservation:\(id)" ]).map(\.action)
            }
            #expect(made == ["reservation.made", "reservation.released"])
        }
    }
}
