import BloodMatchIngest
import BloodMatchCore
import BloodMatchStore
import Foundation
import Hummingbird

extension APIHandlers {
    /// Units named in a body: each `{"din": …, "product_code": …}`, or a DIN string that names exactly
    /// one of `among` (a donation's components share a DIN, so a bare DIN is accepted only when it is
    /// unambiguous). Every unit must be among `among`.
    static func units(_ items: [JSONValue], among: [UnitKey], what: String) throws(APIError) -> [UnitKey] {
        var out: [UnitKey] = []
        for item in items {
            switch item {
            case .object(let fields):
                guard fields.keys.allSatisfy({ $0 == "din" || $0 == "product_code" }),
                      case .string(let din) = fields["din"] ?? .null, case .string(let code) = fields["product_code"] ?? .null,
                      let key = UnitKey(parsing: din + "/" + code) else {
                    throw APIError.invalid("units", "each unit is {\"din\": 13 characters, \"product_code\": 8 characters}")
                }
                guard among.contains(key) else { throw APIError.invalid("units", "\(key) was not \(what)") }
                out.append(key)
            case .string(let din) where din.utf8.count == 13:
                let matches = among.filter { $0.din == din }
                guard matches.count == 1 else {
                    throw APIError.invalid("units", matches.isEmpty ? "\(din) was not \(what)"
                        : "DIN \(din) names \(matches.count) units \(what); give {\"din\", \"product_code\"}")
                }
                out.append(matches[0])
            default:
                throw APIError.invalid("units", "each unit is {\"din\": …, \"product_code\": …} (or a DIN naming one unit)")
            }
        }
        return out
    }

    // MARK: POST /v1/units/{din}/{product_code}/receipt and …/fate

    /// Records the hospital's receipt of an issued unit, or its final fate (transfused, returned,
    /// discarded with a reason from the fixed list). The unit must have been issued to the caller's
    /// hospital; the order of the life (receipt before fate, each once) is enforced. A retry with the
    /// same `Idempotency-Key` returns the first record (200); the key used for anything else, 409.
    func recordFate(_ request: Request, context: APIRequestContext, caller: AuthenticatedCaller, receipt: Bool) async throws -> Response {
        try Self.requireJSONContentType(request)
        guard let key = try Self.idempotencyKey(request) else {
            throw APIError.invalid("Idempotency-Key", "is required: a retry with the same key returns the original record")
        }
        let din = try context.parameters.require("din"), code = try context.parameters.require("product_code")
        guard (try? DonationNumber(parsing: din)) != nil, din.utf8.count == 13 else {
            throw APIError.invalid("din", "must be a 13-character ISBT 128 DIN")
        }
        guard let unit = UnitKey(parsing: din + "/" + code) else { throw APIError.invalid("product_code", "must be an 8-character ISBT 128 product code") }
        let body = try await jsonBody(request)
        guard case .object(let fields) = body else { throw APIError.invalid("body", "the body must be a JSON object") }
        let allowed: Set<String> = receipt ? ["note"] : ["fate", "reason", "note"]
        if let unknown = fields.keys.filter({ !allowed.contains($0) }).sorted().first {
            throw APIError(.badRequest, code: "unknown_field", message: "unknown field '\(unknown)'", field: unknown)
        }
        var note: String?
        if let value = fields["note"] {
            guard case .string(let text) = value, text.count <= 500 else { throw APIError.invalid("note", "must be a string of at most 500 characters") }
            note = text
        }
        var event = UnitFateEvent.received
        var reason: UnitFateReason?
        if !receipt {
            guard case .string(let text) = fields["fate"] ?? .null, let fate = UnitFateEvent(rawValue: text), fate.isFinal else {
                throw APIError.invalid("fate", "must be one of transfused, returned, discarded")
            }
            event = fate
            if let value = fields["reason"] {
                guard case .string(let text) = value, let r = UnitFateReason(rawValue: text) else {
                    throw APIError.invalid("reason", "must be one of " + UnitFateReason.allCases.map(\.rawValue).joined(separator: ", "))
                }
                reason = r
            }
        }
        let store = PostgresUnitLifecycleStore(database: services.database)
        let result: (UnitFateRecord, isNew: Bool)
        do {
            result = try await answerWithin(services.configuration.requestDeadline) { [event, reason, note] in
                try await store.record(event, unit: unit, reason: reason, note: note, hospital: caller.hospital,
                                       by: "api:\(caller.hospital):key:\(caller.keyID)", idempotencyKey: "api:\(caller.hospital):\(key)",
                                       requestID: context.requestID ?? key, traceID: context.traceID,
                                       clientAddress: context.clientAddress)
            }
        } catch let error as UnitLifecycleError {
            switch error.kind {
            case .badReason: throw APIError.invalid("reason", error.detail)
            case .otherHospital: throw APIError(.forbidden, code: "forbidden", message: "\(unit) \(error.detail)", field: "din")
            case .notIssued: throw APIError(.conflict, code: "not_issued", message: "\(unit) \(error.detail)", field: "din")
            case .outOfOrder: throw APIError(.conflict, code: "out_of_order", message: "\(unit) \(error.detail)", field: receipt ? "din" : "fate")
            }
        } catch let error as IdempotencyKeyReuseError {
            throw APIError(.conflict, code: "idempotency_key_reused", message: "this Idempotency-Key was used for a different operation (\(error.usedFor))", field: "Idempotency-Key")
        } catch {
            throw APIError.unableToVerify(affected: ["units"], since: Date(),
                                          reason: "\(DataGuard.describe(error)); a retry with the same Idempotency-Key returns the record if it was made")
        }
        if result.0.event == .returned {
            await services.engine.heldUnitsChanged()
            services.heldUnits.changed()
        }
        var response = json(Self.render(result.0), status: result.isNew ? .created : .ok)
        if !result.isNew { response.headers[.init("Idempotent-Replayed")!] = "true" }
        return response
    }

    /// A receipt or fate as the hospital sees it.
    static func render(_ f: UnitFateRecord) -> JSONValue {
        [
            "din": .string(f.din), "product_code": .string(f.productCode), "event": .string(f.event.rawValue),
            "reason": .nullable(f.reason?.rawValue), "note": .nullable(f.note), "hospital_id": .string(f.hospital),
            "distribution_id": .string(f.distributionID.uuidString.lowercased()), "recorded_at": .string(iso(f.recordedAt)),
        ]
    }
}
