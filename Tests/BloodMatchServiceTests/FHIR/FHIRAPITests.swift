import BloodMatchIngest
import BloodMatchCore
@testable import BloodMatchService
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing

/// The FHIR face through the real application on a seeded database: what the CapabilityStatement
/// says is what is routed; stock search against the database; a stat order matched, held and
/// followed; access records; and the fail-safe answer as an OperationOutcome.
@Suite("FHIR API")
struct FHIRAPITests {
    static let fhir: HTTPFields = [.contentType: "application/fhir+json", .accept: "application/fhir+json"]

    static func supplyRequest(priority: String, quantity: Int = 1, hospital: String = APITestHarness.hospital) -> String {
        """
        {"resourceType":"SupplyRequest","status":"active","priority":"\(priority)",
         "item":{"concept":{"coding":[{"system":"\(FHIRSystem.component)","code":"RBC"}]}},
         "quantity":{"value":\(quantity)},"deliverTo":{"reference":"Organization/\(hospital)"},
         "parameter":[{"code":{"coding":[{"system":"\(FHIRSystem.orderParameter)","code":"recipient-group"}]},
                       "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"278148006"}]}}]}
        """
    }

    @Test("the CapabilityStatement lists exactly the FHIR routes served, and needs no key")
    func capabilityMatchesRoutes() async throws {
        try await APITestHarness.run { client, _ in
            let reply = try await client.send("/fhir/metadata")
            #expect(reply.status == .ok)
            #expect(reply.headers[.contentType]?.hasPrefix("application/fhir+json") == true)
            let rest = try #require((reply.object["rest"] as? [[String: Any]])?.first)
            var declared = Set<String>()
            for resource in rest["resource"] as? [[String: Any]] ?? [] {
                let type = resource["type"] as? String ?? ""
                for interaction in resource["interaction"] as? [[String: Any]] ?? [] {
                    switch interaction["code"] as? String {
                    case "read": declared.insert("GET /fhir/\(type)/{id}")
                    case "search-type": declared.insert("GET /fhir/\(type)")
                    case "create": declared.insert("POST /fhir/\(type)")
                    case "update": declared.insert("PUT /fhir/\(type)/{id}")
                    case "delete": declared.insert("DELETE /fhir/\(type)/{id}")
                    default: Issue.record("unexpected interaction \(interaction)")
                    }
                }
            }
            let routed = Set(APIRoute.allCases.filter { $0.path.hasPrefix("/fhir/") && $0 != .fhirMetadata }.map { "\($0.method.rawValue) \($0.path)" })
            #expect(declared == routed, "declared only: \(declared.subtracting(routed)); routed only: \(routed.subtracting(declared))")
        }
    }

    @Test("stock search: the database's available units, held ones out, total and page, errors as OperationOutcome")
    func stockSearch() async throws {
        try await APITestHarness.run { client, h in
            let all = try await client.send("/fhir/BiologicallyDerivedProduct?component=RBC&abo-rhd=95", token: h.token, headers: Self.fhir)
            #expect(all.status == .ok, "\(all.text)")
            #expect(all.object["total"] as? Int == 6, "six O RhD negative red cells are seeded: \(all.text.prefix(300))")
            let page = try await client.send("/fhir/BiologicallyDerivedProduct?component=RBC&_count=2", token: h.token, headers: Self.fhir)
            #expect(page.object["total"] as? Int == 7 && (page.object["entry"] as? [Any])?.count == 2)
            let links = page.object["link"] as? [[String: Any]] ?? []
            #expect(links.contains { $0["relation"] as? String == "next" && ($0["url"] as? String)?.contains("_offset=2") == true })
            let irradiated = try await client.send("/fhir/BiologicallyDerivedProduct?attribute=IRRADIATED", token: h.token, headers: Self.fhir)
            #expect(irradiated.object["total"] as? Int == 1, "\(irradiated.text.prefix(300))")
            let refused = try await client.send("/fhir/BiologicallyDerivedProduct?colour=red", token: h.token, headers: Self.fhir)
            #expect(refused.status == .badRequest && refused.object["resourceType"] as? String == "OperationOutcome")
            #expect(refused.error["field"] as? String == "colour")
            let anonymous = try await client.send("/fhir/BiologicallyDerivedProduct")
            #expect(anonymous.status == .unauthorized && anonymous.object["resourceType"] as? String == "OperationOutcome")
        }
    }

    @Test("a stat SupplyRequest is matched at once, its units held and listed as dispenses; a replay finds it; others cannot see it",
          .timeLimit(.minutes(3)))
    func statOrder() async throws {
        try await APITestHarness.run { client, h in
            var headers = Self.fhir
            headers[.init("Idempotency-Key")!] = "stat-1"
            let created = try await client.send("/fhir/SupplyRequest", .post, token: h.token, headers: headers, body: Self.supplyRequest(priority: "stat", quantity: 2))
            #expect(created.status == .created, "\(created.text)")
            let id = try #require(created.object["id"] as? String)
            #expect(created.object["status"] as? String == "completed")
            let dispenses = try await client.send("/fhir/BiologicallyDerivedProductDispense?supply-request=SupplyRequest/\(id)", token: h.token, headers: Self.fhir)
            let entries = dispenses.object["entry"] as? [[String: Any]] ?? []
            #expect(entries.count == 2, "\(dispenses.text.prefix(400))")
            #expect(entries.allSatisfy { ($0["resource"] as? [String: Any])?["status"] as? String == "allocated" })
            // The held units are no longer listed as available stock.
            let stock = try await client.send("/fhir/BiologicallyDerivedProduct?component=RBC&abo-rhd=95", token: h.token, headers: Self.fhir)
            #expect(stock.object["total"] as? Int == 4, "\(stock.text.prefix(200))")
            let replay = try await client.send("/fhir/SupplyRequest", .post, token: h.token, headers: headers, body: Self.supplyRequest(priority: "stat", quantity: 2))
            #expect(replay.status == .ok && replay.object["id"] as? String == id)
            let other = try await client.send("/fhir/SupplyRequest/\(id)", token: h.otherToken, headers: Self.fhir)
            #expect(other.status == .forbidden)
            let otherDispenses = try await client.send("/fhir/BiologicallyDerivedProductDispense", token: h.otherToken, headers: Self.fhir)
            #expect(otherDispenses.object["total"] as? Int == 0)
            // The order and its decision are in the database, linked by the decision's request id.
            let linked = try await h.test.with(.owner) { db in
                try await db.client.query("""
                    SELECT count(*)::int FROM bm.orders o JOIN bm.decisions d ON d.request_id = 'order:' || o.order_id
                    WHERE o.order_id = \(id) AND o.status = 'allocated' AND o.routing = 'immediate' AND o.source = 'fhir'
                    """, logger: db.logger).decode(Int.self).reduce(0, +)
            }
            #expect(linked == 1)
            // Each FHIR request left an access record naming its route.
            #expect(await h.services.recorder.flush())
            let rows = try await AccessRecordAPITests.accessRows(h)
            #expect(rows.contains { $0.subject == "/fhir/SupplyRequest" && $0.actor.hasSuffix(APITestHarness.hospital) }, "\(rows.map { ($0.actor, $0.subject) })")
        }
    }

    @Test("the units of a match retried after a race (decision order:ID#2) are the order's dispenses too", .timeLimit(.minutes(3)))
    func retriedMatchDispenses() async throws {
        try await APITestHarness.run { client, h in
            var order = OrderRecord(orderID: "fhir-retry1", hospitalID: APITestHarness.hospital, component: .redCells, group: .oNegative,
                                    context: RecipientContext(), quantity: 1, requirements: [], maximumUnitAgeDays: nil, urgency: .emergency,
                                    neededBy: nil, placedBy: "test", source: "fhir")
            order.immediate = true
            try await PostgresOrderStore(database: h.services.database).add([order], actor: "test")
            let location = GeoPoint(latitude: -34.42, longitude: 150.89)
            let match = MatchRequest(requestID: "order:fhir-retry1#2", hospitalID: APITestHarness.hospital, destination: location, component: .redCells,
                                     recipient: Recipient(group: .oNegative), quantity: 1, requirements: [], urgency: .emergency)
            let answer = try await h.services.engine.decide(match, requestedBy: "test", traceID: nil, now: Date())
            let unit = try #require(answer.decision.chosen.first?.key)
            let hold = ReservationRequest(idempotencyKey: "order:fhir-retry1#2", source: .decision, decisionID: answer.decision.decisionID,
                                          hospital: APITestHarness.hospital, reservedBy: "test", units: [unit], holdSeconds: 3600)
            _ = try await PostgresReservationStore(database: h.services.database).reserve(hold)
            let reply = try await client.send("/fhir/BiologicallyDerivedProductDispense?supply-request=SupplyRequest/fhir-retry1", token: h.token, headers: Self.fhir)
            let entries = reply.object["entry"] as? [[String: Any]] ?? []
            #expect(entries.count == 1, "\(reply.text.prefix(400))")
            #expect(reply.text.contains("\"reference\":\"SupplyRequest/fhir-retry1\""), "\(reply.text.prefix(600))")
        }
    }

    @Test("database stopped: FHIR answers 503 with an OperationOutcome saying unable to verify, never an empty Bundle", .timeLimit(.minutes(3)))
    func failSafe() async throws {
        try await APITestHarness.run { client, h in
            let ok = try await client.send("/fhir/BiologicallyDerivedProduct?component=RBC", token: h.token, headers: Self.fhir)
            #expect(ok.status == .ok)
            let name = h.test.name
            try await Database.with(h.test.admin, logger: h.test.logger) { admin in
                try await admin.client.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(name) ALLOW_CONNECTIONS false"), logger: admin.logger)
                try await admin.client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(name)", logger: admin.logger)
            }
            for (uri, method, body) in [("/fhir/BiologicallyDerivedProduct?component=RBC", HTTPRequest.Method.get, nil as String?),
                                        ("/fhir/SupplyRequest", .post, Self.supplyRequest(priority: "stat"))] {
                let down = try await client.send(uri, method, token: h.token, headers: Self.fhir, body: body)
                #expect(down.status == .serviceUnavailable, "\(uri): \(down.text)")
                #expect(down.object["resourceType"] as? String == "OperationOutcome" && down.object["entry"] == nil)
                let issue = (down.object["issue"] as? [[String: Any]])?.first ?? [:]
                #expect(issue["severity"] as? String == "error" && issue["code"] as? String == "transient")
                #expect((issue["diagnostics"] as? String)?.contains(APIError.unableToVerifyMessage) == true, "\(down.text)")
            }
            try await Database.with(h.test.admin, logger: h.test.logger) { admin in
                try await admin.client.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(name) ALLOW_CONNECTIONS true"), logger: admin.logger)
            }
        }
    }
}
