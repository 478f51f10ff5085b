import BloodMatchCore
import BloodMatchIngest
import BloodMatchService
import BloodMatchStore
import Foundation
import HTTPTypes
import Hummingbird

/// Match, hold, release and issue from the console: the same engine, stores, re-checks and
/// idempotency as the CLI and the API, on the operator's own login (so the database's grants
/// decide, and its stamps record who acted). Each change needs an `Idempotency-Key` (the page
/// makes one per form submission): a retry returns what the first attempt did.
extension ConsoleHandlers {
    // MARK: POST /console/api/match

    func match(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let session = try allowed(.match, context)
        let key = try idempotencyKey(request)
        let body = try await jsonBody(request)
        guard case .object(let fields) = body, case .string(let hospital)? = fields["hospital_id"], !hospital.isEmpty else {
            throw ConsoleError.invalid("hospital_id", "choose the hospital the units are for")
        }
        let parsed: Result<MatchRequest, APIError> = Result { () throws(APIError) in
            try APIInput.matchRequest(body, requestID: "console:\(session.operatorName):\(key)", hospital: hospital)
        }
        let matchRequest: MatchRequest
        switch parsed {
        case .success(let r): matchRequest = r
        case .failure(let error): throw ConsoleError(.badRequest, code: "invalid", message: error.message, field: error.field)
        }
        let now = services.now()
        _ = try await verifiedIndex(now: now)
        let engine = await services.engine(for: session)
        let answer: EngineAnswer
        do {
            answer = try await withDeadline(services.configuration.requestDeadline) {
                try await engine.decide(matchRequest, requestedBy: "operator:\(session.operatorName)", traceID: nil,
                                        requestID: context.requestID, clientAddress: context.clientAddress, now: now)
            }
        } catch let error as MatchRequestError {
            throw ConsoleError.invalid(error.field, error.reason)
        } catch {
            try refusedByDatabase(error, doing: "match")
            throw ConsoleError.unableToVerify("\(ConsoleError.reason(error)); submitting the same form again returns the decision if it was recorded")
        }
        let decision = answer.decision
        if decision.outcome == .unableToVerify {
            throw ConsoleError.unableToVerify(decision.unableToVerifyReason ?? "the data could not be verified")
        }
        var response = jsonResponse(Self.render(decision, replayed: !answer.isNew), status: answer.isNew ? .created : .ok)
        response.headers[HTTPField.Name("BloodMatch-Outcome")!] = decision.outcome.rawValue
        return response
    }

    // MARK: POST /console/api/reservations

    func reserve(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let session = try allowed(.reserve, context)
        let key = try idempotencyKey(request)
        guard case .object(let fields) = try await jsonBody(request) else { throw ConsoleError.invalid("body", "must be a JSON object") }
        guard case .string(let idText)? = fields["decision_id"], let decisionID = UUID(uuidString: idText) else {
            throw ConsoleError.invalid("decision_id", "the id (UUID) of the decision whose units to hold")
        }
        var holdMinutes = 240
        if let value = fields["hold_minutes"] {
            guard case .number(let text) = value, let n = Int(text), (1...4320).contains(n) else {
                throw ConsoleError.invalid("hold_minutes", "whole minutes, 1…4320")
            }
            holdMinutes = n
        }
        let stored: StoredDecision?
        do {
            let database = services.database
            stored = try await withDeadline(.seconds(3)) { try await PostgresDecisionStore(database: database).find(decisionID: decisionID) }
        } catch {
            throw ConsoleError.unableToVerify("decisions could not be read: \(ConsoleError.reason(error))")
        }
        guard let stored else { throw ConsoleError(.notFound, code: "not_found", message: "no decision \(idText.lowercased())", field: "decision_id") }
        let chosen = stored.units.filter(\.chosen).map(\.key)
        guard ["fulfilled", "partial", "late"].contains(stored.outcome), !chosen.isEmpty, let hospital = stored.hospital else {
            throw ConsoleError(.conflict, code: "decision_not_reservable", message: "decision outcome \(stored.outcome) chose no units to hold", field: "decision_id")
        }
        let hold = ReservationRequest(idempotencyKey: "console:\(session.operatorName):\(key)", source: .decision, decisionID: decisionID,
                                      hospital: hospital, reservedBy: "operator:\(session.operatorName)", units: chosen,
                                      holdSeconds: holdMinutes * 60, requestID: context.requestID, clientAddress: context.clientAddress)
        let outcome: ReservationOutcome
        do {
            let database = session.database
            outcome = try await withDeadline(services.configuration.requestDeadline) { try await PostgresReservationStore(database: database).reserve(hold) }
        } catch let error as WhatIfDecisionError {
            throw ConsoleError(.conflict, code: "what_if_decision", message: error.description, field: "decision_id")
        } catch {
            try refusedByDatabase(error, doing: "hold units")
            throw ConsoleError.unableToVerify("\(ConsoleError.reason(error)); nothing was held unless a retry of this form says so")
        }
        services.heldUnits.changed()
        switch outcome {
        case .reserved(let reservation, let isNew):
            return jsonResponse(Self.render(reservation, replayed: !isNew), status: isNew ? .created : .ok)
        case .conflict(let conflicts):
            return jsonResponse(["error": "not_held", "message": "nothing was held: these units cannot be",
                                 "units": .array(conflicts.map { ["din": .string($0.unit.din), "product_code": .string($0.unit.productCode),
                                                                  "reason": .string($0.reason)] })], status: .conflict)
        }
    }

    // MARK: POST /console/api/reservations/{id}/release

    func release(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let session = try allowed(.release, context)
        let id = try reservationID(context)
        do {
            let (database, name, requestID) = (session.database, session.operatorName, context.requestID)
            let released = try await withDeadline(services.configuration.requestDeadline) {
                try await PostgresReservationStore(database: database).release(id, by: "operator:\(name)", reason: "released from the console",
                                                                               requestID: requestID)
            }
            services.heldUnits.changed()
            return jsonResponse(Self.render(released, replayed: false))
        } catch let error as ReservationNotFoundError {
            throw ConsoleError(.notFound, code: "not_found", message: "\(error)")
        } catch {
            try refusedByDatabase(error, doing: "release holds")
            throw ConsoleError.unableToVerify(ConsoleError.reason(error))
        }
    }

    // MARK: POST /console/api/reservations/{id}/issue

    func issue(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let session = try allowed(.issue, context)
        let id = try reservationID(context)
        let key = try idempotencyKey(request)
        var note: String?
        if case .object(let fields) = try await jsonBody(request, optional: true), case .string(let text)? = fields["note"] {
            guard text.count <= 200 else { throw ConsoleError.invalid("note", "at most 200 characters") }
            note = text.isEmpty ? nil : text
        }
        let outcome: IssueOutcome
        do {
            let (database, name, requestID, minimum, note) = (session.database, session.operatorName, context.requestID,
                                                               services.minimumRemainingSeconds, note)
            outcome = try await withDeadline(services.configuration.requestDeadline) {
                try await PostgresReservationStore(database: database).issue(id, units: nil, by: "operator:\(name)",
                                                                             idempotencyKey: "console:\(name):\(key)",
                                                                             minimumRemainingSeconds: minimum, note: note, requestID: requestID)
            }
        } catch {
            try refusedByDatabase(error, doing: "issue units")
            if let reuse = error as? IdempotencyKeyReuseError {
                throw ConsoleError(.conflict, code: "idempotency_key_reused", message: reuse.description)
            }
            throw ConsoleError.unableToVerify("\(ConsoleError.reason(error)); nothing was issued unless a retry of this form says so")
        }
        services.heldUnits.changed()
        switch outcome {
        case .issued(let records, let isNew):
            return jsonResponse([
                "replayed": .bool(!isNew),
                "issued": .array(records.map { d in
                    ["distribution_id": .string(d.distributionID.uuidString.lowercased()), "din": .string(d.din),
                     "product_code": .string(d.productCode), "product": .string(d.productName), "group": .string("\(d.abo) \(d.rhd)"),
                     "centre": .string(d.centre), "consignee": .string(d.consignee), "consignee_name": .string(d.consigneeName),
                     "expires_at": .string(isoUTC(seconds: Int64(d.expiresAt.timeIntervalSince1970))),
                     "issued_at": .string(isoUTC(seconds: Int64(d.issuedAt.timeIntervalSince1970))), "issued_by": .string(d.issuedBy)]
                }),
            ], status: isNew ? .created : .ok)
        case .blocked(let blocks):
            return jsonResponse(["error": "not_issued", "message": "nothing was issued: these units block the issue",
                                 "units": .array(blocks.map { ["din": .string($0.unit.din), "product_code": .string($0.unit.productCode),
                                                               "reason": .string($0.reason)] })], status: .conflict)
        }
    }

    // MARK: helpers

    /// The session, when its role may do `action` (the database checks again on the write).
    func allowed(_ action: ConsoleAction, _ context: ConsoleRequestContext) throws -> ConsoleSession {
        guard let session = context.session else { throw ConsoleError(.unauthorized, code: "not_logged_in", message: "log in first") }
        guard session.may(action) else {
            throw ConsoleError(.forbidden, code: "forbidden", message: "a \(session.role.rawValue) may not \(action.rawValue) (Data/POLICY.md, \"Who may do what\"); nothing was done")
        }
        return session
    }

    /// A refusal by the database's grants (SQLSTATE 42501) as a 403 naming the action.
    func refusedByDatabase(_ error: any Error, doing what: String) throws {
        if sqlState(error) == "42501" {
            throw ConsoleError(.forbidden, code: "forbidden", message: "the database refused: your login may not \(what) (\(ConsoleError.reason(error))); nothing was done")
        }
    }

    func idempotencyKey(_ request: Request) throws -> String {
        guard let key = request.headers[HTTPField.Name("Idempotency-Key")!], (8...64).contains(key.utf8.count),
              key.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D }) else {
            throw ConsoleError.invalid("Idempotency-Key", "is required: 8–64 letters, digits or '-' (the page sends one per form)")
        }
        return key
    }

    func reservationID(_ context: ConsoleRequestContext) throws -> UUID {
        guard let id = UUID(uuidString: try context.parameters.require("id")) else {
            throw ConsoleError.invalid("id", "must be a reservation id (UUID)")
        }
        return id
    }

    func jsonBody(_ request: Request, optional: Bool = false) async throws -> JSONValue {
        let buffer = try await request.body.collect(upTo: services.configuration.maximumBodyBytes)
        if buffer.readableBytes == 0, optional { return .object([:]) }
        let parsed: Result<JSONValue, JSONInputError> = Result { () throws(JSONInputError) in
            try StrictJSON().parse(Array(buffer.readableBytesView))
        }
        switch parsed {
        case .success(let value): return value
        case .failure(let error): throw ConsoleError.invalid("body", "is not acceptable JSON: \(error)")
        }
    }
}
