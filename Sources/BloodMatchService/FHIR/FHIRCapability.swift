import BloodMatchIngest
import Foundation

/// The CapabilityStatement served at `/fhir/metadata`: exactly the interactions and search
/// parameters the router and the handlers implement (`FHIRAPITests` checks both directions).
public enum FHIRCapability {
    /// One resource type's interactions and search parameters.
    public struct Resource: Sendable {
        /// Resource type.
        public var type: String
        /// Interactions (`read`, `search-type`, `create`, `update`, `delete`).
        public var interactions: [String]
        /// Search parameters: name, type, documentation.
        public var searchParameters: [(name: String, type: String, documentation: String)]
        /// Notes for integrators.
        public var documentation: String
    }

    /// What is supported.
    public static let resources: [Resource] = [
        Resource(type: "BiologicallyDerivedProduct", interactions: ["read", "search-type"], searchParameters: [
            ("code", "token", "ISBT 128 product description code (5 characters) or whole product code (8)"),
            ("abo-rhd", "token", "ISBT 128 ABO/RhD code (\(FHIRSystem.aboRhD)), as the unit's ABORhD property"),
            ("component", "token", "RBC, PLT, PLASMA, CRYO or WB (\(FHIRSystem.component))"),
            ("attribute", "token", "special attribute the unit must have (\(FHIRSystem.requirement)); repeat for several"),
            ("biological-source-event", "token", "ISBT 128 DIN"),
            ("identifier", "token", "DIN/PRODUCTCODE (\(FHIRSystem.unitKey))"),
            ("centre", "token", "distribution centre site id (\(FHIRSystem.site))"),
            ("product-status", "token", "available only: units held for or issued to you are BiologicallyDerivedProductDispense"),
            ("expiration-date", "date", "with ge, gt, le or lt; a date is a whole UTC day"),
            ("_count", "number", "page size 0…\(FHIRProductSearch.maximumCount), default 20"),
            ("_offset", "number", "entries skipped, 0…\(FHIRProductSearch.maximumOffset)"),
        ], documentation: "Available stock, earliest expiry first (then DIN): units in a centre's stock in force, unexpired, neither held nor issued. Read returns also units held for or issued to the caller. No donor data."),
        Resource(type: "SupplyRequest", interactions: ["read", "search-type", "create", "delete"], searchParameters: [
            ("identifier", "token", "the hospital's identifier of the request (system|value), or the order id"),
            ("status", "token", "active, completed or cancelled"),
            ("_count", "number", "at most 100, default 50"),
        ], documentation: "A hospital's order. priority routine or urgent: decided by the next batch run (every 30 minutes), which allocates across all hospitals' orders; asap or stat: matched at once by the same engine as POST /v1/matches and the units held. Conditional create with If-None-Exist (identifier=system|value) or Idempotency-Key. DELETE cancels an order no run or match has decided."),
        Resource(type: "BiologicallyDerivedProductDispense", interactions: ["read", "search-type", "update"], searchParameters: [
            ("supply-request", "reference", "SupplyRequest/ID: the units held against one order"),
            ("status", "token", "allocated, issued, returned or unfulfilled"),
            ("_count", "number", "at most 100, default 50"),
        ], documentation: "One unit held against an order and what became of it. An update adds the received extension (receipt) or the unit-fate extension (transfused, returned or discarded, with its reason); the server records it with its own time."),
    ]

    /// The CapabilityStatement.
    public static func statement(now: Date) -> JSONValue {
        [
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": .string(iso(now)),
            "kind": "instance",
            "software": ["name": "BloodMatch"],
            "implementation": ["description": "BloodMatch blood-product matching: stock, orders and dispenses"],
            "fhirVersion": .string(FHIRResponse.fhirVersion),
            "format": ["json"],
            "rest": [[
                "mode": "server",
                "documentation": "Authenticate with the hospital's API key (Authorization: Bearer). Errors are OperationOutcome; when the data cannot be verified the answer is 503 with an OperationOutcome saying so, never an empty result.",
                "security": ["description": "Bearer API keys, one per hospital; every request is recorded in the tamper-evident audit log."],
                "resource": .array(resources.map { r in
                    [
                        "type": .string(r.type),
                        "documentation": .string(r.documentation),
                        "interaction": .array(r.interactions.map { ["code": .string($0)] }),
                        "searchParam": .array(r.searchParameters.map { ["name": .string($0.name), "type": .string($0.type), "documentation": .string($0.documentation)] }),
                    ]
                }),
            ]],
        ]
    }
}
