import Foundation

/// A deterministic synthetic batch: centres and hospitals in south-eastern Australia, stock and
/// pending orders drawn from a seed. Used by the invariant tests, the exact-optimum check
/// (`bloodmatch batch solve`) and the benchmark, so all three see the same kind of instance.
public struct BatchScenario: Sendable {
    /// The stock as an index.
    public var index: InventoryIndex
    /// Every unit (including non-available ones, which the index leaves out).
    public var units: [InventoryUnit]
    /// Hospitals with their locations.
    public var hospitals: [Site]
    /// Pending orders.
    public var orders: [BatchOrder]
    /// The planning instant.
    public var now: Date

    /// A valid 13-character DIN for a sequence number (facility `B` + 4 digits, year 26).
    public static func din(_ n: Int) -> String {
        "B" + String(format: "%04d", n / 1_000_000 % 10_000) + String(format: "26%06d", n % 1_000_000)
    }

    /// Generates a scenario.
    ///
    /// - Parameters: `staleEvery` makes every n-th centre's data two hours old (0: none);
    ///   `spreadKm` is the side of the square the sites are spread over.
    public static func generate(seed: UInt64, centres centreCount: Int, hospitals hospitalCount: Int, units unitCount: Int,
                                orders orderCount: Int, maximumQuantity: Int = 4, spreadKm: Double = 600,
                                staleEvery: Int = 0, now: Date = Date(timeIntervalSince1970: 1_800_000_000)) -> BatchScenario {
        var rng = SplitMix64(seed: seed)
        let nowSeconds = Int64(now.timeIntervalSince1970)
        let degrees = spreadKm / 111
        func place() -> GeoPoint {
            GeoPoint(latitude: -34 + (rng.unit() - 0.5) * degrees, longitude: 148 + (rng.unit() - 0.5) * degrees)
        }
        var centres: [IndexedCentre] = []
        for c in 0..<centreCount {
            let stale = staleEvery > 0 && c % staleEvery == staleEvery - 1
            centres.append(IndexedCentre(siteID: String(format: "DC%03d", c), location: place(), snapshotID: Int64(c + 1),
                                         asOf: nowSeconds - (stale ? 7200 : 300), expectedIntervalSeconds: 1800))
        }
        var hospitals: [Site] = []
        for h in 0..<hospitalCount {
            hospitals.append(Site(id: String(format: "H%04d", h), name: "Hospital \(h)", kind: .hospital, location: place(), region: "NSW"))
        }
        func group() -> BloodGroup { Self.pick(Self.groupWeights, rng.unit()) }
        func component() -> Component { Self.pick(Self.componentWeights, rng.unit()) }
        let shelfDays: [Component: Double] = [.redCells: 42, .platelets: 5, .plasma: 365, .cryoprecipitate: 365, .wholeBlood: 35]
        var units: [InventoryUnit] = []
        units.reserveCapacity(unitCount)
        for n in 0..<unitCount {
            let comp = component()
            let life = (shelfDays[comp] ?? 42) * 86_400
            let remaining = life * (0.03 + 0.97 * rng.unit())
            let expires = Double(nowSeconds) + remaining
            var attributes = AttributeSet()
            if rng.unit() < 0.25 { attributes.insert(.irradiated) }
            if rng.unit() < 0.15 { attributes.insert(.cmvNegative) }
            if comp == .redCells && rng.unit() < 0.08 { attributes.insert(.kNegative) }
            guard let din = try? DonationNumber(parsing: din(n)) else { continue }
            units.append(InventoryUnit(
                din: din, productCode: comp == .redCells ? "E0382V00" : comp == .platelets ? "E7975V00" : "E2555V00",
                component: comp, group: group(), collectedAt: Date(timeIntervalSince1970: expires - life),
                expiresAt: Date(timeIntervalSince1970: expires), siteID: centres[Int(rng.next() % UInt64(max(1, centreCount)))].siteID,
                status: rng.unit() < 0.03 ? .reserved : .available, attributes: attributes))
        }
        let index = InventoryIndex(centres: centres, units: units, builtAt: now)
        let orders = Self.orders(seed: seed &+ 1, count: orderCount, hospitals: hospitals, maximumQuantity: maximumQuantity, now: now)
        return BatchScenario(index: index, units: units, hospitals: hospitals, orders: orders, now: now)
    }

    /// Group frequencies roughly as in Australia: O+ 38 %, O− 7 %, A+ 31 %, A− 7 %, B+ 9 %, B− 2 %, AB+ 4 %, AB− 1 %.
    static let groupWeights: [(BloodGroup, Double)] = [
        (BloodGroup(.O, .positive), 38), (BloodGroup(.O, .negative), 7), (BloodGroup(.A, .positive), 31),
        (BloodGroup(.A, .negative), 7), (BloodGroup(.B, .positive), 9), (BloodGroup(.B, .negative), 2),
        (BloodGroup(.AB, .positive), 4), (BloodGroup(.AB, .negative), 1),
    ]
    /// Component mix of the generated stock and orders.
    static let componentWeights: [(Component, Double)] = [(.redCells, 70), (.platelets, 12), (.plasma, 14), (.cryoprecipitate, 4)]

    /// The item a uniform draw `u` in [0, 1) lands on, by weight.
    static func pick<T>(_ weights: [(T, Double)], _ u: Double) -> T {
        var x = u * weights.reduce(0) { $0 + $1.1 }
        for (item, w) in weights { if x < w { return item }; x -= w }
        return weights[0].0
    }

    /// Pending orders at the given hospitals: 5 % emergency, 20 % urgent, the rest routine; 3 %
    /// of recipients of unknown group; 10 % asking for irradiated units; 1…`maximumQuantity` units.
    public static func orders(seed: UInt64, count: Int, hospitals: [Site], maximumQuantity: Int, now: Date) -> [BatchOrder] {
        var rng = SplitMix64(seed: seed)
        func group() -> BloodGroup { Self.pick(Self.groupWeights, rng.unit()) }
        func component() -> Component { Self.pick(Self.componentWeights, rng.unit()) }
        var orders: [BatchOrder] = []
        guard !hospitals.isEmpty else { return [] }
        for o in 0..<count {
            let hospital = hospitals[Int(rng.next() % UInt64(hospitals.count))]
            let urgencyDraw = rng.unit()
            let urgency: Urgency = urgencyDraw < 0.05 ? .emergency : urgencyDraw < 0.25 ? .urgent : .routine
            let sexDraw = rng.unit()
            let context = RecipientContext(sex: sexDraw < 0.5 ? .female : sexDraw < 0.95 ? .male : .unknown,
                                           ageYears: sexDraw < 0.95 ? 1 + Int(rng.next() % 90) : nil)
            let known = rng.unit() < 0.97
            var requirements: [UnitAttribute] = []
            if rng.unit() < 0.1 { requirements.append(.irradiated) }
            let quantity = 1 + Int(rng.next() % UInt64(max(1, maximumQuantity)))
            let hours = [2.0, 6, 12, 24, 48][Int(rng.next() % 5)]
            orders.append(BatchOrder(
                orderID: String(format: "ORD-%05d", o), hospitalID: hospital.id, destination: hospital.location,
                component: component(), recipient: Recipient(group: known ? group() : nil, context: context), quantity: quantity,
                requirements: requirements, urgency: urgency, neededBy: now.addingTimeInterval(hours * 3600),
                placedAt: now.addingTimeInterval(-Double(rng.next() % 86_400))))
        }
        return orders
    }
}
