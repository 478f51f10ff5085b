import BloodMatchCore
import BloodMatchStore
import Foundation
import PostgresNIO
import Testing

/// Reservations against a real PostgreSQL: the database decides who holds a unit, so concurrent
/// clients racing for the last units get exactly min(N, k) winners; retries with a key never hold
/// twice; released, expired and issued units move as recorded, each change an audit event.
@Suite("Reservations against PostgreSQL", .serialized)
struct ReservationTests {
    static let sites = [
        Site(id: "DCA", name: "Centre A", kind: .distributionCentre, location: GeoPoint(latitude: -33.87, longitude: 151.21), region: "AU-02"),
        Site(id: "DCB", name: "Centre B", kind: .distributionCentre, location: GeoPoint(latitude: -32.93, longitude: 151.78), region: "AU-02"),
        Site(id: "HOS", name: "A Hospital", kind: .hospital, location: GeoPoint(latitude: -34.42, longitude: 150.89), region: "AU-02",
             address: "Wollongong NSW, Australia"),
        Site(id: "HOT", name: "Another Hospital", kind: .hospital, location: GeoPoint(latitude: -33.42, longitude: 151.30), region: "AU-02"),
    ]

    /// A fresh database with `count` available O NEG red cells at centre A (DINs `T000126000001`…),
    /// unit 1 quarantined and unit 2 already expired when `withOddUnits` is set.
    static func withStock<T: Sendable>(count: Int, withOddUnits: Bool = false,
                                       _ body: @Sendable (TestDatabase, [UnitKey]) async throws -> T) async throws -> T {
        try await TestDatabase.withFresh { test in
            let now = Date()
            let dins = (1...count).map { StockFixture.din(sequence: $0) }
            let units = try dins.enumerated().map { i, din in
                let odd = withOddUnits && i < 2
                return try StockFixture.unit(din, .redCells, BloodGroup(.O, .negative), at: "DCA",
                                             collected: now.addingTimeInterval(odd && i == 1 ? -41 * 86_400 : -3 * 86_400),
                                             expires: now.addingTimeInterval(odd && i == 1 ? -3_600 : 30 * 86_400),
                                             status: odd && i == 0 ? .quarantined : .available)
            }
            let directory = StockFixture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = try StockFixture.write(units, centre: "DCA", asOf: now.addingTimeInterval(-60), name: "dca", in: directory)
            try await test.with(.importer) { db in
                _ = try await PostgresSiteStore(database: db).upsert(sites, source: "test")
                let report = try await PostgresInventoryImporter(database: db).importSnapshot(SnapshotSource(csvPath: path), now: now)
                #expect(report.outcome == .loaded, "\(report.message)")
            }
            return try await body(test, dins.map { StockFixture.key($0) })
        }
    }

    static func request(_ key: String, _ units: [UnitKey], hospital: String = "HOS", hold: Int = 3600) -> ReservationRequest {
        ReservationRequest(idempotencyKey: key, source: .manual, hospital: hospital, reservedBy: "test:\(key)", units: units, holdSeconds: hold)
    }

    static func count(_ db: Database, _ sql: String) async throws -> Int {
        var n = 0
        for try await (c,) in try await db.client.query(PostgresQuery(unsafeSQL: sql), logger: db.logger).decode((Int,).self) { n = c }
        return n
    }

    // MARK: - Races

    /// N clients each want one of k units. Like a dispatcher after a conflict, a client asks which
    /// units are still offered and tries one of those at random, until it holds one or none is left.
    @Test("N concurrent clients for k units: exactly min(N, k) winners, one event per winner",
          arguments: [(2, 1), (10, 1), (50, 1), (200, 1), (10, 3), (50, 5), (200, 20)])
    func race(clients: Int, units: Int) async throws {
        let rounds = clients >= 200 ? 3 : 5
        try await Self.withStock(count: units * rounds) { test, dins in
            var config = test.configuration(role: .app)
            config.maximumConnections = 20
            try await Database.with(config, logger: test.logger) { db in
                let store = PostgresReservationStore(database: db)
                for round in 0..<rounds {
                    let pool = Array(dins[(round * units)..<((round + 1) * units)])
                    let outcomes = try await withThrowingTaskGroup(of: (won: UnitKey?, conflicts: Int).self) { group in
                        for client in 0..<clients {
                            group.addTask {
                                var rng = SplitMix64(seed: UInt64(round * 1_000 + client))
                                let reader = PostgresInventoryReader(database: db)
                                var conflicts = 0
                                while true {
                                    let taken = try await reader.unavailable(units: pool)
                                    guard let din = pool.filter({ !taken.contains($0) }).randomElement(using: &rng) else { break }
                                    switch try await store.reserve(Self.request("r\(round)-c\(client)-\(conflicts)", [din])) {
                                    case .reserved(let r, let isNew):
                                        #expect(isNew)
                                        #expect(r.units.map(\.key) == [din])
                                        return (din, conflicts)
                                    case .conflict(let c):
                                        #expect(c.map(\.unit) == [din])
                                        #expect(c[0].reason.hasPrefix("held by another reservation"), "\(c[0].reason)")
                                        conflicts += 1
                                    }
                                }
                                return (nil, conflicts)
                            }
                        }
                        var all: [(won: UnitKey?, conflicts: Int)] = []
                        for try await o in group { all.append(o) }
                        return all
                    }
                    let winners = outcomes.compactMap(\.won)
                    #expect(winners.count == min(clients, units), "round \(round): \(winners.count) winners")
                    #expect(Set(winners).count == winners.count, "a unit was won twice in round \(round)")
                    #expect(outcomes.filter { $0.won == nil }.count == max(0, clients - units))
                }
                #expect(try await Self.count(db, """
                    SELECT count(*)::int FROM (SELECT din FROM reservation_units WHERE state = 'active' GROUP BY din HAVING count(*) > 1) x
                    """) == 0)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM reservation_units WHERE state = 'active'") == min(clients, units) * rounds)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM event_log WHERE action = 'reservation.made'") == min(clients, units) * rounds)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM reservations") == min(clients, units) * rounds)
            }
            let report = try await test.with(.app) { try await PostgresAuditLog(database: $0).verify() }
            #expect(report.isIntact, "\(report.problem?.description ?? "")")
        }
    }

    // MARK: - Idempotency

    @Test("A retry with the same key returns the original hold; a key reused for other units is refused")
    func idempotency() async throws {
        try await Self.withStock(count: 4) { test, dins in
            try await test.with(.app) { db in
                let store = PostgresReservationStore(database: db)
                guard case .reserved(let first, true) = try await store.reserve(Self.request("k1", [dins[0], dins[1]])) else {
                    Issue.record("first request was not held"); return
                }
                guard case .reserved(let again, false) = try await store.reserve(Self.request("k1", [dins[1], dins[0]])) else {
                    Issue.record("retry did not return the original"); return
                }
                #expect(again.reservationID == first.reservationID)
                await #expect(throws: IdempotencyKeyReuseError.self) {
                    _ = try await store.reserve(Self.request("k1", [dins[2]]))
                }
                // Ten concurrent retries of one new request: one hold, one event, one id.
                let ids = try await withThrowingTaskGroup(of: UUID?.self) { group in
                    for _ in 0..<10 {
                        group.addTask {
                            if case .reserved(let r, _) = try await store.reserve(Self.request("k2", [dins[3]])) { return r.reservationID }
                            return nil
                        }
                    }
                    var out: [UUID?] = []
                    for try await id in group { out.append(id) }
                    return out
                }
                #expect(Set(ids.compactMap { $0 }).count == 1)
                #expect(ids.allSatisfy { $0 != nil })
                #expect(try await Self.count(db, "SELECT count(*)::int FROM event_log WHERE action = 'reservation.made'") == 2)
            }
        }
    }

    // MARK: - Lifecycle

    @Test("Held units leave the offer at once; release, expiry and issue are recorded and final")
    func lifecycle() async throws {
        try await Self.withStock(count: 4) { test, dins in
            try await test.withOperator(.dispatcher) { db in
                let store = PostgresReservationStore(database: db)
                let reader = PostgresInventoryReader(database: db)
                #expect(try await reader.unavailable(units: dins).isEmpty)
                guard case .reserved(let held, _) = try await store.reserve(Self.request("a", [dins[0], dins[1]])) else {
                    Issue.record("not held"); return
                }
                #expect(try await reader.unavailable(units: dins) == [dins[0], dins[1]])
                // All or nothing: one unit taken means nothing is held.
                guard case .conflict(let c) = try await store.reserve(Self.request("b", [dins[1], dins[2]], hospital: "HOT")) else {
                    Issue.record("overlapping request was held"); return
                }
                #expect(c.map(\.unit) == [dins[1]])
                #expect(c[0].heldBy == held.reservationID)
                #expect(try await reader.unavailable(units: [dins[2]]).isEmpty)

                // Release: the units are offered again; a second release records nothing more.
                let released = try await store.release(held.reservationID, by: "test", reason: "patient transferred")
                #expect(released.units.allSatisfy { $0.state == "released" })
                _ = try await store.release(held.reservationID, by: "test", reason: "again")
                #expect(try await Self.count(db, "SELECT count(*)::int FROM event_log WHERE action = 'reservation.released'") == 1)
                #expect(try await reader.unavailable(units: dins).isEmpty)

                // Expiry: a lapsed hold stops blocking, and its expiry is recorded.
                guard case .reserved(let short, _) = try await store.reserve(Self.request("c", [dins[2]], hold: 1)) else {
                    Issue.record("short hold not held"); return
                }
                try await Task.sleep(for: .milliseconds(1_300))
                #expect(try await reader.unavailable(units: [dins[2]]).isEmpty)
                guard case .reserved = try await store.reserve(Self.request("d", [dins[2]], hospital: "HOT")) else {
                    Issue.record("a lapsed hold still blocked the unit"); return
                }
                #expect(try await store.find(reservationID: short.reservationID)?.units.first?.state == "expired")
                #expect(try await Self.count(db, "SELECT count(*)::int FROM event_log WHERE action = 'reservation.expired'") == 1)

                // Issue: a distribution record with the 606.165 fields; never held or issued again.
                guard case .reserved(let toIssue, _) = try await store.reserve(Self.request("e", [dins[3]])) else {
                    Issue.record("not held"); return
                }
                guard case .issued(let records, true) = try await store.issue(toIssue.reservationID, units: nil, by: "test", idempotencyKey: "issue-1") else {
                    Issue.record("not issued"); return
                }
                #expect(records.count == 1)
                let d = try #require(records.first)
                #expect(d.key == dins[3] && d.consignee == "HOS" && d.consigneeName == "A Hospital" && d.consigneePlace == "AU-02")
                #expect(d.consigneeAddress == "Wollongong NSW, Australia" && d.productCode == StockFixture.productCode)
                #expect(d.productName == "Red cells (RBC) \(StockFixture.productCode)", "\(d.productName)")
                #expect(d.component == "RBC" && d.abo == "O" && d.rhd == "NEG" && d.quantity == 1 && d.centre == "DCA")
                guard case .issued(let retry, false) = try await store.issue(toIssue.reservationID, units: nil, by: "test", idempotencyKey: "issue-1") else {
                    Issue.record("retry not answered with the records"); return
                }
                #expect(retry == records)
                await #expect(throws: ReservationStateError.self) {
                    _ = try await store.issue(toIssue.reservationID, units: nil, by: "test", idempotencyKey: "issue-2")
                }
                guard case .conflict(let again) = try await store.reserve(Self.request("f", [dins[3]], hospital: "HOT")) else {
                    Issue.record("an issued unit was held again"); return
                }
                #expect(again[0].reason == "already issued")
                #expect(try await reader.unavailable(units: [dins[3]]) == [dins[3]])

                // Active holds cannot be turned back, nor rows removed, even by the application role.
                await #expect(throws: (any Error).self) {
                    try await db.client.query("UPDATE reservation_units SET state = 'active' WHERE din = \(dins[0].din)", logger: db.logger)
                }
                await #expect(throws: (any Error).self) {
                    try await db.client.query("DELETE FROM distributions", logger: db.logger)
                }

                // The trace names every step.
                let trace = try await PostgresUnitTrace(database: db).trace(din: dins[3].din)
                #expect(trace.movements.map(\.change) == ["appeared"])
                #expect(trace.holds.map(\.state) == ["issued"])
                #expect(trace.distributions.count == 1)
                #expect(trace.events.map(\.action).contains("reservation.made"))
                #expect(trace.events.map(\.action).contains("unit.issued"))
            }
            let report = try await test.with(.app) { try await PostgresAuditLog(database: $0).verify() }
            #expect(report.isIntact, "\(report.problem?.description ?? "")")
        }
    }

    @Test("Units that are quarantined, expired or unknown are refused with the reason")
    func unavailableUnits() async throws {
        try await Self.withStock(count: 3, withOddUnits: true) { test, dins in
            try await test.with(.app) { db in
                let store = PostgresReservationStore(database: db)
                let unknown = StockFixture.key("T000126999999")
                let otherProduct = StockFixture.key(dins[2].din, "E2555V00")
                guard case .conflict(let c) = try await store.reserve(Self.request("x", [dins[0], dins[1], dins[2], unknown, otherProduct])) else {
                    Issue.record("held despite unavailable units"); return
                }
                let reasons = Dictionary(uniqueKeysWithValues: c.map { ($0.unit, $0.reason) })
                #expect(reasons[dins[0]]?.hasPrefix("QUARANTINED at DCA (snapshot ") == true, "\(reasons[dins[0]] ?? "")")
                #expect(reasons[dins[1]]?.hasPrefix("expired") == true, "\(reasons[dins[1]] ?? "")")
                #expect(reasons[dins[2]] == nil)
                #expect(reasons[unknown] == "not in any centre's current stock")
                // The same DIN with another product code is another unit: not in stock.
                #expect(reasons[otherProduct] == "not in any centre's current stock")
                #expect(try await Self.count(db, "SELECT count(*)::int FROM reservations") == 0)
            }
        }
    }
}
