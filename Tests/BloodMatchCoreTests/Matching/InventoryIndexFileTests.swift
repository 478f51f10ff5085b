@testable import BloodMatchCore
import Foundation
import Testing

@Suite("Index files: versioned, checksummed, refused when damaged")
struct InventoryIndexFileTests {
    static let fixture = MatcherFixture.make(seed: 3, centres: 12, units: 2_000)
    static let index = InventoryIndex(centres: fixture.centres, units: fixture.units,
                                      builtAt: Date(timeIntervalSince1970: Double(fixture.now)))

    @Test func roundTripGivesTheSameAnswers() throws {
        let bytes = Self.index.serialized()
        let loaded = try InventoryIndex(serialized: bytes)
        #expect(loaded.version == Self.index.version)
        #expect(loaded.unitCount == Self.index.unitCount)
        #expect(loaded.centres == Self.index.centres)
        var rng = MatcherFixture.RNG(seed: 1)
        for _ in 0..<200 {
            let query = Self.fixture.randomQuery(&rng)
            let a = UnitMatcher(index: Self.index, settings: .standard).match(query, now: Self.fixture.now).chosen
            let b = UnitMatcher(index: loaded, settings: .standard).match(query, now: Self.fixture.now).chosen
            #expect(a == b)
        }
    }

    @Test("centres without data survive the file, change the version, and every decision names them as not checked")
    func centresWithoutDataAreCarried() throws {
        let unknown = [CentreWithoutData(siteID: "DCNODATA", location: Self.fixture.centres[0].location)]
        let index = InventoryIndex(centres: Self.fixture.centres, units: Self.fixture.units,
                                   builtAt: Date(timeIntervalSince1970: Double(Self.fixture.now)), centresWithoutData: unknown)
        #expect(index.version != Self.index.version)
        let loaded = try InventoryIndex(serialized: index.serialized())
        #expect(loaded.centresWithoutData == unknown)
        #expect(loaded.version == index.version)
        var rng = MatcherFixture.RNG(seed: 2)
        let query = Self.fixture.randomQuery(&rng)
        let planner = MatchPlanner(rules: try RulesFixture.loadPolicy(), settings: .standard)
        let request = MatchRequest(requestID: "r", hospitalID: nil, destination: query.destination, component: query.component,
                                   recipient: Recipient(group: .oNegative), quantity: 1, requirements: [], urgency: .routine)
        let match = UnitMatcher(index: loaded, settings: .standard).match(query, now: Self.fixture.now)
        let decision = planner.decision(id: UUID(), request: request, destination: query.destination, query: query, refused: [], notes: [],
                                        match: match, index: loaded, now: Date(timeIntervalSince1970: Double(Self.fixture.now)))
        #expect(decision.centresNotChecked?.map(\.centreID) == ["DCNODATA"])
        #expect(decision.summary.contains("1 centre(s) could not be checked (no data — stock unknown, confirm by phone): DCNODATA"))
        let plain = planner.decision(id: UUID(), request: request, destination: query.destination, query: query, refused: [], notes: [],
                                     match: match, index: Self.index, now: Date(timeIntervalSince1970: Double(Self.fixture.now)))
        #expect(plain.centresNotChecked == nil)
    }

    @Test("a flipped byte, a truncated file or a foreign file is refused", arguments: ["flip", "truncate", "foreign", "empty"])
    func damagedFilesAreRefused(damage: String) {
        var bytes = Self.index.serialized()
        switch damage {
        case "flip": bytes[bytes.count / 2] ^= 0x40
        case "truncate": bytes.removeLast(100)
        case "foreign": bytes = Array("din,product_code\n".utf8)
        default: bytes = []
        }
        #expect(throws: IndexFileError.self) { try InventoryIndex(serialized: bytes) }
    }

    @Test func versionNamesEverySnapshot() {
        var centres = Self.fixture.centres
        centres[0].snapshotID += 1
        let changed = InventoryIndex(centres: centres, units: Self.fixture.units, builtAt: Date())
        #expect(changed.version != Self.index.version)
    }
}

@Suite("Matching settings file")
struct MatchingSettingsFileTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test func committedFileEqualsTheDocumentedDefaults() throws {
        let data = try Data(contentsOf: Self.repository.appendingPathComponent("Data/matching.json"))
        #expect(try MatchingSettings(jsonData: data) == .standard)
    }

    @Test("values out of range or missing are refused", arguments: [
        #"{"circuityFactor":0.2,"speedKmh":70,"handlingMinutes":30,"minimumRemainingHoursAtArrival":{"RBC":48,"PLT":24,"PLASMA":24,"CRYO":24,"WB":48},"rankPenaltyMinutes":{"emergency":0,"urgent":60,"routine":480},"preferenceBandMinutes":{"emergency":10,"urgent":60,"routine":480},"surplusAttributePenaltyMinutes":20,"allowStaleCentres":true,"rejectedCandidatesKept":10}"#,
        #"{"circuityFactor":1.3,"speedKmh":70,"handlingMinutes":30,"minimumRemainingHoursAtArrival":{"RBC":48,"PLT":24},"rankPenaltyMinutes":{"emergency":0,"urgent":60,"routine":480},"preferenceBandMinutes":{"emergency":10,"urgent":60,"routine":480},"surplusAttributePenaltyMinutes":20,"allowStaleCentres":true,"rejectedCandidatesKept":10}"#,
        #"{"circuityFactor":1.3,"speedKmh":70,"handlingMinutes":30,"minimumRemainingHoursAtArrival":{"RBC":48,"PLT":24,"PLASMA":24,"CRYO":24,"WB":48},"rankPenaltyMinutes":{"emergency":0,"routine":480},"preferenceBandMinutes":{"emergency":10,"urgent":60,"routine":480},"surplusAttributePenaltyMinutes":20,"allowStaleCentres":true,"rejectedCandidatesKept":10}"#,
        #"{"speedKmh":70}"#,
        #"{"circuityFactor":1.3,"speedKmh":70,"handlingMinutes":30,"minimumRemainingHoursAtArrival":{"RBC":48,"PLT":24,"PLASMA":24,"CRYO":24,"WB":48},"rankPenaltyMinutes":{"emergency":0,"urgent":60,"routine":480},"surplusAttributePenaltyMinutes":20,"allowStaleCentres":true,"rejectedCandidatesKept":10}"#,
        #"{"circuityFactor":1.3,"speedKmh":70,"handlingMinutes":30,"minimumRemainingHoursAtArrival":{"RBC":48,"PLT":24,"PLASMA":24,"CRYO":24,"WB":48},"rankPenaltyMinutes":{"emergency":0,"urgent":60,"routine":480},"preferenceBandMinutes":{"emergency":10,"urgent":60,"routine":20000},"surplusAttributePenaltyMinutes":20,"allowStaleCentres":true,"rejectedCandidatesKept":10}"#,
    ])
    func refused(json: String) {
        #expect(throws: (any Error).self) { try MatchingSettings(jsonData: Data(json.utf8)) }
    }

    @Test("a settings file without preference bands is refused naming the field; settings recorded in older decisions still decode, with none")
    func preferenceBandsRequiredInFilesOnly() throws {
        let old = String(decoding: try JSONEncoder().encode(MatchingSettings.standard), as: UTF8.self)
            .replacingOccurrences(of: #""preferenceBandMinutes":{"#, with: #""unused":{"#)
        #expect(old.contains(#""unused""#))
        #expect { try MatchingSettings(jsonData: Data(old.utf8)) } throws: { "\($0)".contains("preferenceBandMinutes has no value") }
        let recorded = try JSONDecoder().decode(MatchingSettings.self, from: Data(old.utf8))
        #expect(recorded.preferenceBandMinutes.isEmpty && recorded.rankPenaltyMinutes == MatchingSettings.standard.rankPenaltyMinutes)
        let again = try JSONDecoder().decode(MatchingSettings.self, from: try JSONEncoder().encode(MatchingSettings.standard))
        #expect(again == .standard)
    }
}
