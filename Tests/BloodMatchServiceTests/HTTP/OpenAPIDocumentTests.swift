import BloodMatchService
import BloodMatchTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The committed OpenAPI document (what integrators read) cannot drift from the routes: the same
/// operations, the same authentication, and every status a route answers is documented.
@Suite("OpenAPI document")
struct OpenAPIDocumentTests {
    static func document() throws -> [String: Any] {
        let data = try Data(contentsOf: StockFixture.repository.appendingPathComponent("Data/openapi.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func operations(_ doc: [String: Any]) -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for (path, item) in doc["paths"] as? [String: Any] ?? [:] {
            for (method, operation) in item as? [String: Any] ?? [:] {
                out["\(method.uppercased()) \(path)"] = operation as? [String: Any]
            }
        }
        return out
    }

    @Test("the document is OpenAPI 3.1 and lists exactly the routes the router serves")
    func sameOperations() throws {
        let doc = try Self.document()
        #expect((doc["openapi"] as? String)?.hasPrefix("3.1") == true)
        let documented = Set(Self.operations(doc).keys)
        let routed = Set(APIRoute.allCases.map { "\($0.method.rawValue) \($0.path)" })
        #expect(documented == routed, "only documented: \(documented.subtracting(routed)); only routed: \(routed.subtracting(documented))")
    }

    @Test("operations that need a key are exactly those the document secures")
    func sameSecurity() throws {
        let operations = Self.operations(try Self.document())
        for route in APIRoute.allCases {
            let operation = operations["\(route.method.rawValue) \(route.path)"] ?? [:]
            let secured = !((operation["security"] as? [Any]) ?? []).isEmpty
            #expect(secured == route.requiresKey, "\(route.path)")
        }
    }

    @Test("every operation is served, and the statuses it answers are documented")
    func servedAndDocumented() async throws {
        let statuses = Self.operations(try Self.document()).mapValues { Set((($0["responses"] as? [String: Any]) ?? [:]).keys) }
        try await APITestHarness.run { client, h in
            for route in APIRoute.allCases {
                let documented = statuses["\(route.method.rawValue) \(route.path)"] ?? []
                let uri = route.path.replacingOccurrences(of: "{id}", with: UUID().uuidString.lowercased())
                    + (route == .availability ? "?component=RBC&abo=O&rhd=NEG" : "")
                let requests: [(String?, String?)] = [(h.token, route == .createMatch ? HTTPAPITests.matchBody : nil), (nil, nil)]
                for (token, body) in requests {
                    let reply = try await client.send(uri, route.method, token: token, body: body)
                    #expect(!(reply.status == .notFound && reply.error["field"] == nil), "\(route.path) is not routed")
                    #expect(reply.status != .methodNotAllowed, "\(route.path)")
                    #expect(documented.contains(String(reply.status.code)), "\(route.method) \(route.path) answered \(reply.status.code), not documented")
                }
            }
        }
    }
}
