import BloodMatchIngest
import BloodMatchCore
import BloodMatchStore
import Foundation
import Hummingbird
import Tracing

/// The reservation routes: `POST /v1/reservations`, `GET` and `DELETE /v1/reservations/{id}`.
extension APIHandlers {
    // MARK: POST /v1/reservations

    /// Fields `POST /v1/reservations` accepts.
    static let reservationFields: Set<String> = ["decision_id", "units", "hold_minutes"]

    func createReservation(_ request: Request, context: APIRequestContext, caller: AuthenticatedCaller) async throws -> Response {
        try Self.requireJSONContentType(request)
        guard let key = try Self.idempotencyKey(request) else {
            throw APIError.invalid("Idempotency-Key", "is required: a retry with the same key returns the original reservation")
        }
        let body = try await jsonBody(request)
        guard case .object(let fields) = body else { throw APIError.invalid("body", "the body must be a JSON object") }
        if let unknown = fields.keys.filter({ !Self.reservationFields.contains($0) }).sorted().first {
            throw APIError(.badRequest, code: "unknown_field", message: "unknown field '\(unknown)'", field: unknown)
        }
        guard case .string(let idText) = fields["decision_id"] ?? .null, let decisionID = UUID(uuidString: idText) else {
            throw APIError.invalid("decision_id", "is required: the id (UUID) of one of this hospital's decisions")
        }
        var wanted: [JSONValue]?
        if let units = fields["units"] {
            guard case .array(let items) = units, (1...MatchRequest.maximumQuantity).contains(items.count) else {
                throw APIError.invalid("units", "must be an array of 1…\(MatchRequest.maximumQuantity) units from the decision")
            }
            wanted = items
        }
        let hold: Result<Int?, APIError> = Result { () throws(APIError) in
            try APIInput.optionalInt(fields, "hold_minutes", range: 1...4320)
        }
        let holdMinutes = try hold.get() ?? 240
        let stored: StoredDecision?
        do {
            stored = try await answerWithin(.seconds(3)) { [database = services.lookupDatabase] in
                try await PostgresDecisionStore(database: database).find(decisionID: decisionID)
            }
        } catch {
            throw APIError.unableToVerify(affected: ["decisions", "reservations"], since: Date(), reason: "decisions could not be read: \(DataGuard.describe(error))")
        }
        guard let stored else { throw APIError(.notFound, code: "not_found", message: "no decision \(idText.lowercased())", field: "decision_id") }
        guard stored.hospital == caller.hospital else {
            throw APIError(.forbidden, code: "forbidden", message: "decision \(idText.lowercased()) belongs to another hospital", field: "decision_id")
        }
        let chosen = stored.units.filter(\.chosen).map(\.key)
        guard ["fulfilled", "partial", "late"].contains(stored.outcome), !chosen.isEmpty else {
            throw APIError(.conflict, code: "decision_not_reservable", message: "decision outcome \(stored.outcome) chose no units to hold", field: "decision_id")
        }
        let units = try wanted.map { try Self.units($0, among: chosen, what: "chosen by decision \(idText.lowercased())") } ?? chosen
        let reservationRequest = ReservationRequest(
            idempotencyKey: "api:\(caller.hospital):\(key)", source: .decision, decisionID: decisionID, hospital: caller.hospital,
            reservedBy: "api:\(caller.hospital):key:\(caller.keyID)", units: units, holdSeconds: holdMinutes * 60,
            requestID: context.requestID ?? key, traceID: context.traceID, clientAddress: context.clientAddress)
        let outcome: ReservationOutcome
        do {
            outcome = try await answerWithin(services.configuration.requestDeadline) { [database = services.database] in
                try await PostgresReservationStore(database: database).reserve(reservationRequest)
            }
        } catch let error as IdempotencyKeyReuseError {
            throw APIError(.conflict, code: "idempotency_key_reused", message: "this Idempotency-Key was used for a different operation (\(error.usedFor))", field: "Idempotency-Key")
        } catch let error as WhatIfDecisionError {
            throw APIError(.conflict, code: "what_if_decision", message: error.description, field: "decision_id")
        } catch {
            throw APIError.unableToVerify(affected: ["reservations"], since: Date(),
                                          reason: "\(DataGuard.describe(error)); a retry with the same Idempotency-Key returns the reservation if it was made")
        }
        await services.engine.heldUnitsChanged()
        services.heldUnits.changed()
        switch outcome {
        case .conflict(let conflicts):
            throw APIError(.conflict, code: "units_unavailable",
                           message: "nothing was held; " + conflicts.map(\.description).joined(separator: "; "), field: "units")
        case .reserved(let reservation, let isNew):
            var response = json(Self.render(reservation), status: isNew ? .created : .ok)
            response.headers[.location] = "/v1/reservations/\(reservation.reservationID.uuidString.lowercased())"
            if !isNew { response.headers[.init("Idempotent-Replayed")!] = "true" }
            return response
        }
    }

    // MARK: GET and DELETE /v1/reservations/{id}

    func reservation(_ context: APIRequestContext, caller: AuthenticatedCaller, release: Bool) async throws -> Response {
        let text = try context.parameters.require("id")
        guard let id = UUID(uuidString: text) else { throw APIError.invalid("id", "must be a reservation id (UUID)") }
        let store = PostgresReservationStore(database: services.database)
        let found: Reservation?
        do {
            found = try await answerWithin(.seconds(3)) { try await store.find(reservationID: id) }
        } catch {
            throw APIError.unableToVerify(affected: ["reservations"], since: Date(), reason: "reservations could not be read: \(DataGuard.describe(error))")
        }
        guard let found else { throw APIError(.notFound, code: "not_found", message: "no reservation \(id.uuidString.lowercased())", field: "id") }
        guard found.hospital == caller.hospital else {
            throw APIError(.forbidden, code: "forbidden", message: "reservation \(id.uuidString.lowercased()) belongs to another hospital", field: "id")
        }
        guard release else {
            // A hold the hospital released no longer exists for it (as after any DELETE); its
            // record stays in the audit trail.
            if !found.units.isEmpty, found.units.allSatisfy({ $0.state == "released" }) {
                throw APIError(.gone, code: "released", message: "reservation \(id.uuidString.lowercased()) was released", field: "id")
            }
            return json(Self.render(found))
        }
        let released: Reservation
        do {
            released = try await answerWithin(services.configuration.requestDeadline) {
                try await store.release(id, by: "api:\(caller.hospital):key:\(caller.keyID)", reason: "released by the hospital through the API",
                                        requestID: context.requestID, traceID: context.traceID, clientAddress: context.clientAddress)
            }
        } catch {
            throw APIError.unableToVerify(affected: ["reservations"], since: Date(),
                                          reason: "\(DataGuard.describe(error)); releasing again is safe")
        }
        await services.engine.heldUnitsChanged()
        services.heldUnits.changed()
        return json(Self.render(released))
    }

    /// A hold as the hospital sees it.
    static func render(_ r: Reservation) -> JSONValue {
        var out: [String: JSONValue] = [
            "reservation_id": .string(r.reservationID.uuidString.lowercased()), "hospital_id": .string(r.hospital),
            "held_until": .string(iso(r.heldUntil)), "created_at": .string(iso(r.createdAt)),
            "units": .array(r.units.map { u -> JSONValue in
                ["din": .string(u.din), "product_code": .string(u.productCode), "centre_id": .string(u.centre),
                 "component": .string(u.component), "abo": .string(u.abo), "rhd": .string(u.rhd), "expires_at": .string(iso(u.expiresAt)),
                 "state": .string(u.shownState), "blocked_reason": .nullable(u.blocked)]
            }),
        ]
        if let d = r.decisionID { out["decision_id"] = .string(d.uuidString.lowercased()) }
        return .object(out)
    }
}
