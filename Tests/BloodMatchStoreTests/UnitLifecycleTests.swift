import BloodMatchCore
import BloodMatchStore
import BloodMatchTestSupport
import Foundation
import PostgresNIO
import Testing

/// The unit's life against a real PostgreSQL: a unit is its DIN and product code; every step re-checks
/// the truth in the transaction that makes it (the snapshot in force, expiry, the hold's end, the
/// key's owner), and after issue the unit is received, then transfused, returned or discarded.
@Suite("Unit identity and lifecycle against PostgreSQL", .serialized)
struct UnitLifecycleTests {
    static let sites = [
        Site(id: "DCA", name: "Centre A", kind: .distributionCentre, location: GeoPoint(latitude: -33.87, longitude: 151.21), region: "AU-02",
             address: "Sydney NSW, Australia"),
        Site(id: "DCB", name: "Centre B", kind: .distributionCentre, location: GeoPoint(latitude: -32.93, longitude: 151.78), region: "AU-02",
             address: "Newcastle NSW, Australia"),
        Site(id: "HOS", name: "A Hospital", kind: .hospital, location: GeoPoint(latitude: -34.42, longitude: 150.89), region: "AU-02",
             address: "Wollongong NSW, Australia"),
        Site(id: "HOT", name: "Another Hospital", kind: .hospital, location: GeoPoint(latitude: -33.42, longitude: 151.30), region: "AU-02",
             address: "Gosford NSW, Australia"),
        Site(id: "HNA", name: "No Address Hospital", kind: .hospital, location: GeoPoint(latitude: -33.70, longitude: 151.10), region: "AU-02"),
    ]

    /// Three components of one donation (same DIN, same group, own product codes), then plain red cells.
    static func stock(_ now: Date, statuses: [Int: UnitStatus] = [:], expiries: [Int: Date] = [:], drop: Set<Int> = [], centre: String = "DCA") throws -> [InventoryUnit] {
        let donation = StockFixture.din(sequence: 1)
        let group = BloodGroup(.O, .negative)
        let collected = now.addingTimeInterval(-2 * 86_400)
        var units = [
            try StockFixture.unit(donation, .redCells, group, at: centre, collected: collected, expires: now.addingTimeInterval(30 * 86_400),
                                  productCode: "E0336V00"),
            try StockFixture.unit(donation, .plasma, group, at: centre, collected: collected, expires: now.addingTimeInterval(300 * 86_400),
                                  productCode: "E2555V00"),
            try StockFixture.unit(donation, .platelets, group, at: centre, collected: collected, expires: now.addingTimeInterval(3 * 86_400),
                                  productCode: "E3085V00"),
        ]
        for n in 2...5 {
            units.append(try StockFixture.unit(StockFixture.din(sequence: n), .redCells, group, at: centre, collected: collected,
                                               expires: now.addingTimeInterval(30 * 86_400)))
        }
        for (i, status) in statuses { units[i].status = status }
        for (i, expiry) in expiries { units[i].expiresAt = expiry }
        return units.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
    }

    /// Loads `units` as `centre`'s snapshot as of `asOf` through the real importer.
    static func load(_ test: TestDatabase, _ units: [InventoryUnit], centre: String = "DCA", asOf: Date, now: Date) async throws {
        let directory = StockFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try StockFixture.write(units, centre: centre, asOf: asOf, name: "\(centre.lowercased())-\(Int(asOf.timeIntervalSince1970))", in: directory)
        try await test.with(.importer) { db in
            let report = try await PostgresInventoryImporter(database: db).importSnapshot(SnapshotSource(csvPath: path), now: now)
            #expect(report.outcome == .loaded, "\(report.message)")
        }
    }

    static func withStock<T: Sendable>(_ body: @Sendable (TestDatabase, [UnitKey], Date) async throws -> T) async throws -> T {
        try await TestDatabase.withFresh { test in
            let now = Date()
            try await test.with(.importer) { db in _ = try await PostgresSiteStore(database: db).upsert(sites, source: "test") }
            let units = try stock(now)
            try await load(test, units, asOf: now.addingTimeInterval(-120), now: now)
            return try await body(test, units.map(\.key), now)
        }
    }

    static func hold(_ store: PostgresReservationStore, _ key: String, _ units: [UnitKey], hospital: String = "HOS",
                     seconds: Int = 3600) async throws -> Reservation {
        let outcome = try await store.reserve(ReservationRequest(idempotencyKey: key, source: .manual, hospital: hospital,
                                                                 reservedBy: "test", units: units, holdSeconds: seconds))
        guard case .reserved(let r, _) = outcome else { throw TestFailure("\(key) not held: \(outcome)") }
        return r
    }

    static func count(_ db: Database, _ sql: String) async throws -> Int {
        var n = 0
        for try await (c,) in try await db.client.query(PostgresQuery(unsafeSQL: sql), logger: db.logger).decode((Int,).self) { n = c }
        return n
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    @Test("One donation's RBC, plasma and platelets: each matched, held and issued on its own; trace and recall show all three")
    func componentsOfOneDonation() async throws {
        try await Self.withStock { test, units, now in
            try await test.withOperator(.dispatcher) { db in
                let (rbc, plasma, plt) = (units[0], units[1], units[2])
                #expect(Set([rbc.din, plasma.din, plt.din]).count == 1)
                let index = try await PostgresInventoryReader(database: db).buildIndex(now: now)
                #expect(index.unitCount == 7)
                let store = PostgresReservationStore(database: db)
                let a = try await Self.hold(store, "a", [rbc])
                // The other components of the donation are other units: still free.
                #expect(try await PostgresInventoryReader(database: db).unavailable(units: [rbc, plasma, plt]) == [rbc])
                let b = try await Self.hold(store, "b", [plasma], hospital: "HOT")
                let c = try await Self.hold(store, "c", [plt])
                for (r, key) in [(a, "ia"), (b, "ib"), (c, "ic")] {
                    guard case .issued(let records, true) = try await store.issue(r.reservationID, units: nil, by: "test", idempotencyKey: key) else {
                        Issue.record("\(key) not issued"); continue
                    }
                    #expect(records.count == 1 && records[0].key == r.units[0].key)
                }
                let trace = try await PostgresUnitTrace(database: db).trace(din: rbc.din)
                #expect(trace.productCodes == ["E0336V00", "E2555V00", "E3085V00"])
                #expect(trace.distributions.map(\.productCode).sorted() == ["E0336V00", "E2555V00", "E3085V00"])
                #expect(trace.distributions.first { $0.productCode == "E2555V00" }?.consignee == "HOT")
                let one = try await PostgresUnitTrace(database: db).trace(din: rbc.din, productCode: "E3085V00")
                #expect(one.productCodes == ["E3085V00"] && one.holds.count == 1 && one.distributions.count == 1)
                let recall = try await PostgresUnitLifecycleStore(database: db).recall(din: rbc.din)
                #expect(recall.map(\.productCode) == ["E0336V00", "E2555V00", "E3085V00"])
                #expect(recall.allSatisfy { $0.whereNow == "issued" })
                #expect(recall.map { $0.consignee ?? "" } == ["HOS", "HOT", "HOS"])
                #expect(recall.first?.consigneeAddress == "Wollongong NSW, Australia")
            }
        }
    }

    @Test("Quarantine drill: a newer snapshot quarantines one held unit and drops another; the hold is blocked and issue refused, nothing written",
          arguments: [false, true])
    func quarantineDrill(partial: Bool) async throws {
        try await Self.withStock { test, units, now in
            let held = try await test.with(.app) { db in
                try await Self.hold(PostgresReservationStore(database: db), "q", [units[3], units[4], units[5]])
            }
            // The centre quarantines unit 3 and no longer lists unit 4.
            let newer = try Self.stock(now, statuses: [3: .quarantined], drop: [4])
            try await Self.load(test, newer, asOf: now.addingTimeInterval(-60), now: now)
            try await test.withOperator(.dispatcher) { db in
                let store = PostgresReservationStore(database: db)
                let shown = try #require(try await store.find(reservationID: held.reservationID))
                let byKey = Dictionary(uniqueKeysWithValues: shown.units.map { ($0.key, $0) })
                #expect(byKey[units[3]]?.shownState == "blocked")
                #expect(byKey[units[3]]?.blocked?.hasPrefix("QUARANTINED at DCA") == true, "\(byKey[units[3]]?.blocked ?? "")")
                #expect(byKey[units[4]]?.blocked?.hasPrefix("no longer in the stock of DCA") == true, "\(byKey[units[4]]?.blocked ?? "")")
                #expect(byKey[units[5]]?.shownState == "active" && byKey[units[5]]?.blocked == nil)
                let trace = try await PostgresUnitTrace(database: db).trace(din: units[3].din)
                #expect(trace.holds.first?.blocked?.hasPrefix("QUARANTINED") == true)

                let wanted = partial ? [units[3], units[5]] : nil
                guard case .blocked(let blocks) = try await store.issue(held.reservationID, units: wanted, by: "test", idempotencyKey: "q-issue") else {
                    Issue.record("issued despite a quarantined unit"); return
                }
                let reasons = Dictionary(uniqueKeysWithValues: blocks.map { ($0.unit, $0.reason) })
                #expect(reasons[units[3]]?.hasPrefix("QUARANTINED at DCA") == true)
                #expect(reasons[units[5]] == nil)
                if !partial { #expect(reasons[units[4]]?.hasPrefix("no longer in the stock of DCA") == true) }
                #expect(try await Self.count(db, "SELECT count(*)::int FROM distributions") == 0)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM reservation_units WHERE state = 'active'") == 3)
                #expect(try await Self.count(db, "SELECT count(*)::int FROM event_log WHERE action = 'unit.issued'") == 0)
                // The unit that is still fine issues alone.
                guard case .issued(let records, true) = try await store.issue(held.reservationID, units: [units[5]], by: "test", idempotencyKey: "q-issue-2") else {
                    Issue.record("the available unit was not issued"); return
                }
                #expect(records.map(\.key) == [units[5]])
            }
        }
    }

    @Test("A unit moved to another centre blocks the issue, naming where it went")
    func movedUnit() async throws {
        try await Self.withStock { test, units, now in
            let held = try await test.with(.app) { try await Self.hold(PostgresReservationStore(database: $0), "m", [units[3]]) }
            try await Self.load(test, try Self.stock(now, drop: [3]), asOf: now.addingTimeInterval(-60), now: now)
            let moved = try Self.stock(now, centre: "DCB").enumerated().filter { $0.offset == 3 }.map(\.element)
            try await Self.load(test, moved, centre: "DCB", asOf: now.addingTimeInterval(-60), now: now)
            try await test.withOperator(.dispatcher) { db in
                guard case .blocked(let blocks) = try await PostgresReservationStore(database: db).issue(held.reservationID, units: nil, by: "test", idempotencyKey: "m1") else {
                    Issue.record("a moved unit was issued from its old centre"); return
                }
                #expect(blocks.first?.reason == "moved: no longer in the stock of DCA, now listed by DCB", "\(blocks.first?.reason ?? "")")
            }
        }
    }

    @Test("An expired unit, a unit below the minimum remaining life, and an overdue hold are refused at issue")
    func expiryAndOverdueHold() async throws {
        try await TestDatabase.withFresh { test in
            let now = Date()
            try await test.with(.importer) { db in _ = try await PostgresSiteStore(database: db).upsert(Self.sites, source: "test") }
            let units = try Self.stock(now, expiries: [3: now.addingTimeInterval(3), 4: now.addingTimeInterval(10 * 3600)])
            try await Self.load(test, units, asOf: now.addingTimeInterval(-60), now: now)
            try await test.withOperator(.dispatcher) { db in
                let store = PostgresReservationStore(database: db)
                let soon = try await Self.hold(store, "soon", [units[3].key])
                let short = try await Self.hold(store, "short", [units[4].key])
                let brief = try await Self.hold(store, "brief", [units[5].key], seconds: 1)
                try await Task.sleep(for: .milliseconds(3_500))
                guard case .blocked(let b1) = try await store.issue(soon.reservationID, units: nil, by: "test", idempotencyKey: "e1") else {
                    Issue.record("an expired unit was issued"); return
                }
                #expect(b1.first?.reason.hasPrefix("expired ") == true, "\(b1.first?.reason ?? "")")
                let minimum = MatchingSettings.standard.minimumRemainingSecondsByComponent
                guard case .blocked(let b2) = try await store.issue(short.reservationID, units: nil, by: "test", idempotencyKey: "e2",
                                                                    minimumRemainingSeconds: minimum) else {
                    Issue.record("a unit below the minimum remaining life was issued"); return
                }
                #expect(b2.first?.reason.contains("less than the 48 h minimum remaining life at arrival") == true, "\(b2.first?.reason ?? "")")
                // No expiry job has run: the issue itself sees the hold is over.
                guard case .blocked(let b3) = try await store.issue(brief.reservationID, units: nil, by: "test", idempotencyKey: "e3") else {
                    Issue.record("an overdue hold was issued"); return
                }
                #expect(b3.first?.reason.hasPrefix("hold expired at ") == true, "\(b3.first?.reason ?? "")")
                #expect(try await Self.count(db, "SELECT count(*)::int FROM distributions") == 0)
            }
        }
    }

    @Test("An issue key belongs to one reservation: reusing it for another is refused and the other's unit stays held")
    func issueKeyBelongsToOneReservation() async throws {
        try await Self.withStock { test, units, _ in
            try await test.withOperator(.dispatcher) { db in
                let store = PostgresReservationStore(database: db)
                let a = try await Self.hold(store, "ra", [units[3]])
                let b = try await Self.hold(store, "rb", [units[4]])
                guard case .issued = try await store.issue(a.reservationID, units: nil, by: "test", idempotencyKey: "K") else {
                    Issue.record("RA not issued"); return
                }
                await #expect(throws: IdempotencyKeyReuseError.self) {
                    _ = try await store.issue(b.reservationID, units: nil, by: "test", idempotencyKey: "K")
                }
                #expect(try await store.find(reservationID: b.reservationID)?.units.first?.state == "active")
                #expect(try await Self.count(db, "SELECT count(*)::int FROM distributions") == 1)
            }
        }
    }

    @Test("A consignee without an address cannot be issued to (21 CFR 606.165 names it)")
    func consigneeNeedsAddress() async throws {
        try await Self.withStock { test, units, _ in
            try await test.withOperator(.dispatcher) { db in
                let store = PostgresReservationStore(database: db)
                let r = try await Self.hold(store, "na", [units[3]], hospital: "HNA")
                guard case .blocked(let blocks) = try await store.issue(r.reservationID, units: nil, by: "test", idempotencyKey: "na1") else {
                    Issue.record("issued without a consignee address"); return
                }
                #expect(blocks.first?.reason.contains("has no address on file") == true)
            }
        }
    }

    @Test("Receipt, then one fate; out of order refused; a returned unit re-enters stock only when its centre lists it again")
    func receiptFateAndReturn() async throws {
        try await Self.withStock { test, units, now in
            let unit = units[3]
            try await test.withOperator(.dispatcher) { db in
                let store = PostgresReservationStore(database: db)
                let life = PostgresUnitLifecycleStore(database: db)
                await #expect(throws: UnitLifecycleError.self) {
                    _ = try await life.record(.received, unit: unit, reason: nil, note: nil, hospital: "HOS", by: "test", idempotencyKey: "f0")
                }
                let r = try await Self.hold(store, "h1", [unit])
                guard case .issued = try await store.issue(r.reservationID, units: nil, by: "test", idempotencyKey: "i1") else {
                    Issue.record("not issued"); return
                }
                // Before receipt, no fate; another hospital cannot receive it; a return needs a reason from the list.
                await #expect(throws: UnitLifecycleError.self) {
                    _ = try await life.record(.transfused, unit: unit, reason: nil, note: nil, hospital: "HOS", by: "test", idempotencyKey: "f1")
                }
                do {
                    _ = try await life.record(.received, unit: unit, reason: nil, note: nil, hospital: "HOT", by: "test", idempotencyKey: "f2")
                    Issue.record("another hospital received the unit")
                } catch let error as UnitLifecycleError { #expect(error.kind == .otherHospital) }
                let (receipt, isNew) = try await life.record(.received, unit: unit, reason: nil, note: "ward 4", hospital: "HOS", by: "lab", idempotencyKey: "f3")
                #expect(isNew && receipt.event == .received && receipt.hospital == "HOS")
                let (again, again2) = try await life.record(.received, unit: unit, reason: nil, note: "ward 4", hospital: "HOS", by: "lab", idempotencyKey: "f3")
                #expect(!again2 && again == receipt)
                await #expect(throws: UnitLifecycleError.self) {
                    _ = try await life.record(.received, unit: unit, reason: nil, note: nil, hospital: "HOS", by: "lab", idempotencyKey: "f4")
                }
                await #expect(throws: IdempotencyKeyReuseError.self) {
                    _ = try await life.record(.transfused, unit: unit, reason: nil, note: nil, hospital: "HOS", by: "lab", idempotencyKey: "f3")
                }
                do {
                    _ = try await life.record(.returned, unit: unit, reason: .expired, note: nil, hospital: "HOS", by: "lab", idempotencyKey: "f5")
                    Issue.record("a discard reason was accepted for a return")
                } catch let error as UnitLifecycleError { #expect(error.kind == .badReason) }
                let (returned, _) = try await life.record(.returned, unit: unit, reason: .noLongerRequired, note: nil, hospital: "HOS",
                                                          by: "lab", idempotencyKey: "f6")
                #expect(returned.event == .returned && returned.reason == .noLongerRequired)
                await #expect(throws: UnitLifecycleError.self) {
                    _ = try await life.record(.discarded, unit: unit, reason: .expired, note: nil, hospital: "HOS", by: "lab", idempotencyKey: "f7")
                }
                // The centre's snapshot in force predates the return: the unit is not offered, not holdable.
                #expect(try await PostgresInventoryReader(database: db).heldUnits().contains(unit))
                #expect(try await PostgresInventoryReader(database: db).unavailable(units: [unit]) == [unit])
                guard case .conflict(let c) = try await store.reserve(ReservationRequest(idempotencyKey: "h2", source: .manual, hospital: "HOT",
                                                                                        reservedBy: "test", units: [unit], holdSeconds: 60)) else {
                    Issue.record("a returned unit was held before its centre listed it again"); return
                }
                #expect(c.first?.reason.hasPrefix("returned ") == true, "\(c.first?.reason ?? "")")
                let recall = try await life.recall(din: unit.din)
                #expect(recall.first?.whereNow == "returned" && recall.first?.fate == "returned")
            }
            // The centre inspects it and lists it again in a newer snapshot: it can be held again.
            let later = Date()
            try await Self.load(test, try Self.stock(now), asOf: later.addingTimeInterval(1), now: later.addingTimeInterval(2))
            try await test.with(.app) { db in
                #expect(try await PostgresInventoryReader(database: db).unavailable(units: [unit]).isEmpty)
                let again = try await Self.hold(PostgresReservationStore(database: db), "h3", [unit], hospital: "HOT")
                #expect(again.units.first?.state == "active")
                let trace = try await PostgresUnitTrace(database: db).trace(din: unit.din, productCode: unit.productCode)
                #expect(trace.fates.map(\.event) == [.received, .returned])
                #expect(trace.holds.map(\.state) == ["returned", "active"])
                #expect(trace.events.map(\.action).contains("unit.returned"))
            }
            let report = try await test.with(.app) { try await PostgresAuditLog(database: $0).verify() }
            #expect(report.isIntact, "\(report.problem?.description ?? "")")
        }
    }

    @Test("The database refuses a fate out of order even from the application role")
    func databaseEnforcesOrder() async throws {
        try await Self.withStock { test, units, _ in
            try await test.withOperator(.dispatcher) { db in
                let store = PostgresReservationStore(database: db)
                let r = try await Self.hold(store, "d1", [units[3]])
                guard case .issued(let records, _) = try await store.issue(r.reservationID, units: nil, by: "test", idempotencyKey: "di") else {
                    Issue.record("not issued"); return
                }
                let d = try #require(records.first)
                await #expect(throws: (any Error).self) {
                    try await db.client.query("""
                        INSERT INTO unit_fates (fate_id, distribution_id, din, product_code, event, hospital, recorded_by, idempotency_key)
                        VALUES (\(UUID()), \(d.distributionID), \(d.din), \(d.productCode), 'transfused', 'HOS', 'x', 'raw-1')
                        """, logger: db.logger)
                }
                await #expect(throws: (any Error).self) {
                    try await db.client.query("UPDATE reservation_units SET state = 'returned' WHERE din = \(d.din) AND state = 'issued'", logger: db.logger)
                }
            }
        }
    }
}
