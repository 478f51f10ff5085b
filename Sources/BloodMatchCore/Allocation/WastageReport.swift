import Foundation

/// Ordered units in a recent period, located where they were needed.
public struct DemandSample: Sendable, Hashable, Codable {
    /// Where the units were needed (the ordering hospital).
    public var destination: GeoPoint
    /// Component.
    public var component: Component
    /// Recipient group; nil when not determined (counted for no group).
    public var group: BloodGroup?
    /// Units ordered.
    public var quantity: Int

    /// Creates a sample.
    public init(destination: GeoPoint, component: Component, group: BloodGroup?, quantity: Int) {
        self.destination = destination
        self.component = component
        self.group = group
        self.quantity = quantity
    }
}

/// Short-dated stock of one group at one centre, against the demand the centre serves.
public struct WastageRow: Sendable, Hashable, Codable {
    /// The centre.
    public var centreID: String
    /// Component.
    public var component: Component
    /// Unit group.
    public var group: BloodGroup
    /// Available, unreserved units of this kind at the centre.
    public var stock: Int
    /// Units expiring within the horizon.
    public var shortDated: Int
    /// Of those, units that will expire before recent demand would use them (first-expiring first).
    public var atRisk: Int
    /// Units a day ordered recently by the hospitals nearest this centre, for recipients of this group.
    public var dailyDemand: Double
    /// Stock ÷ daily demand (nil when there was no demand).
    public var daysOfSupply: Double?
    /// DINs at risk, earliest expiry first.
    public var atRiskUnits: [UnitKey]
    /// Their expiries (seconds since 1970), in the same order.
    public var atRiskExpiries: [Int64] = []
}

/// A suggested move of short-dated units to a centre whose own recipients of the same group are
/// likely to use them before they expire.
public struct TransferSuggestion: Sendable, Hashable, Codable {
    /// From.
    public var fromCentreID: String
    /// To.
    public var toCentreID: String
    /// Component.
    public var component: Component
    /// Group: always the same group as the demand it meets.
    public var group: BloodGroup
    /// The units, by DIN and product code.
    public var units: [UnitKey]
    /// Why, in words.
    public var reason: String
}

/// How far a suggested transfer may go.
public enum TransferScope: String, Sendable, Hashable, Codable, CaseIterable {
    /// Only between centres of the same region (e.g. `AU-02`).
    case region
    /// Only between centres of the same country (the region code before `-`).
    case country
    /// Anywhere the unit still arrives in date.
    case any
}

/// Units at risk of expiring unused, and transfers that would put them where they are likely to
/// be used.
///
/// Demand is counted per recipient group, and a transfer only ever moves a unit to meet demand of
/// its own group: short-dated O RhD-negative stock is rotated to where O RhD-negative patients are,
/// never offered to non-O patients to avoid waste (LB-ONEG, "consider rotating close to expiry O
/// RhD negative stock to another laboratory in your network"; Data/SOURCES.md §S2).
public struct WastageReport: Sendable, Hashable, Codable {
    /// Rows with at least one short-dated unit, most units at risk first.
    public var rows: [WastageRow]
    /// Suggested transfers.
    public var transfers: [TransferSuggestion]
    /// Days of demand the figures are based on.
    public var demandDays: Double

    /// Builds the report. `held` are units reserved or allocated (not at risk: they have a use);
    /// `horizonHours` says what counts as short-dated per component. A transfer moves only units
    /// that reach the receiving centre (travel time by `settings`' model) with at least the
    /// component's minimum remaining life (`settings.minimumRemainingHoursAtArrival`), and only to
    /// a centre within `scope` of the sender (`regions`: centre id → region code; a centre with no
    /// known region is reached only with `.any`).
    public static func build(index: InventoryIndex, held: Set<UnitKey>, demand: [DemandSample], demandDays: Double,
                             horizonHours: [Component: Double], now: Date, settings: MatchingSettings = .standard,
                             regions: [String: String] = [:], scope: TransferScope = .country) -> WastageReport {
        let nowSeconds = Int64(now.timeIntervalSince1970)
        let days = max(demandDays, 1)
        // Each sample counts at its nearest centre.
        var daily: [String: Double] = [:]
        func key(_ centre: Int, _ component: Component, _ group: BloodGroup) -> String { "\(centre)|\(component.rawValue)|\(group)" }
        for sample in demand {
            guard let group = sample.group else { continue }
            var best = -1
            var bestKm = Double.infinity
            for (c, centre) in index.centres.enumerated() {
                let km = sample.destination.distanceKm(to: centre.location)
                if km < bestKm { bestKm = km; best = c }
            }
            if best >= 0 { daily[key(best, sample.component, group), default: 0] += Double(sample.quantity) / days }
        }
        var rows: [WastageRow] = []
        for (c, centre) in index.centres.enumerated() {
            for component in Component.allCases {
                let horizon = Int64((horizonHours[component] ?? 0) * 3600)
                guard horizon > 0 else { continue }
                for group in BloodGroup.all {
                    let range = index.bucket(centre: c, component: component, group: group)
                    if range.isEmpty { continue }
                    let rate = daily[key(c, component, group)] ?? 0
                    var stock = 0
                    var shortDated = 0
                    var atRisk: [UnitKey] = []
                    var atRiskExpiries: [Int64] = []
                    // Buckets are sorted by expiry: the k-th usable unit is used after k / rate days.
                    for p in range {
                        let unit = index.unitKey(at: p)
                        if held.contains(unit) || index.expiresAt[p] <= nowSeconds { continue }
                        let lifeSeconds = index.expiresAt[p] - nowSeconds
                        if lifeSeconds <= horizon {
                            shortDated += 1
                            let usedAfter = rate > 0 ? Double(stock + 1) / rate * 86_400 : Double.infinity
                            if usedAfter > Double(lifeSeconds) {
                                atRisk.append(unit)
                                atRiskExpiries.append(index.expiresAt[p])
                            }
                        }
                        stock += 1
                    }
                    guard shortDated > 0 else { continue }
                    rows.append(WastageRow(centreID: centre.siteID, component: component, group: group, stock: stock,
                                           shortDated: shortDated, atRisk: atRisk.count, dailyDemand: rate,
                                           daysOfSupply: rate > 0 ? Double(stock) / rate : nil, atRiskUnits: atRisk,
                                           atRiskExpiries: atRiskExpiries))
                }
            }
        }
        rows.sort { ($0.atRisk, $0.shortDated, $1.centreID) > ($1.atRisk, $1.shortDated, $0.centreID) }
        // Transfers: at-risk units go to the centre of the same component and group whose demand
        // would use the most of them within the horizon beyond its own stock, nearest first on ties.
        var transfers: [TransferSuggestion] = []
        var absorbed: [String: Int] = [:]
        let centreIndex = Dictionary(uniqueKeysWithValues: index.centres.enumerated().map { ($0.element.siteID, $0.offset) })
        func within(_ a: String, _ b: String) -> Bool {
            switch scope {
            case .any: return true
            case .region: return regions[a].map { $0 == regions[b] } ?? false
            case .country:
                let country = { (id: String) in regions[id].map { String($0.prefix { $0 != "-" }) } }
                return country(a).map { $0 == country(b) } ?? false
            }
        }
        for row in rows where row.atRisk > 0 {
            guard let from = centreIndex[row.centreID] else { continue }
            let horizonDays = (horizonHours[row.component] ?? 0) / 24
            let margin = Int64((settings.minimumRemainingHoursAtArrival[row.component] ?? 0) * 3600)
            var best: (centre: Int, units: [UnitKey], km: Double, arrival: Int64)?
            for (c, centre) in index.centres.enumerated() where c != from && within(row.centreID, centre.siteID) {
                let rate = daily[key(c, row.component, row.group)] ?? 0
                guard rate > 0 else { continue }
                let own = index.bucket(centre: c, component: row.component, group: row.group).count
                let k = "\(c)|\(row.component.rawValue)|\(row.group)"
                let capacity = Int((rate * horizonDays).rounded(.down)) - own - (absorbed[k] ?? 0)
                guard capacity > 0 else { continue }
                let km = index.centres[from].location.distanceKm(to: centre.location)
                // Only units that still have the minimum remaining life when they arrive.
                let arrival = nowSeconds + Int64((settings.travelMinutes(distanceKm: km) * 60).rounded(.up))
                let inDate = zip(row.atRiskUnits, row.atRiskExpiries).filter { $0.1 > arrival + margin }.map(\.0)
                let units = Array(inDate.prefix(capacity))
                guard !units.isEmpty else { continue }
                if best == nil || units.count > best!.units.count || units.count == best!.units.count && km < best!.km {
                    best = (c, units, km, arrival)
                }
            }
            guard let target = best else { continue }
            absorbed["\(target.centre)|\(row.component.rawValue)|\(row.group)", default: 0] += target.units.count
            let destination = index.centres[target.centre]
            let count: Int = target.units.count
            let ownDemand: String = String(format: "%.1f", row.dailyDemand)
            let theirDemand: String = String(format: "%.1f", daily[key(target.centre, row.component, row.group)] ?? 0)
            let within: String = String(format: "%.0f h, %.0f km away", horizonHours[row.component] ?? 0, target.km)
            let firstExpiry = zip(row.atRiskUnits, row.atRiskExpiries).first { $0.0 == target.units[0] }?.1 ?? target.arrival
            let life: String = String(format: "arriving in %.1f h with at least %.0f h of life left (minimum %.0f h)",
                                      Double(target.arrival - nowSeconds) / 3600, Double(firstExpiry - target.arrival) / 3600,
                                      settings.minimumRemainingHoursAtArrival[row.component] ?? 0)
            let reason: String = "\(count) \(row.group) \(row.component.rawValue) would expire unused at \(row.centreID) (\(ownDemand)/day demand); "
                + "\(destination.siteID) uses \(theirDemand)/day of \(row.group) and has room for them within \(within), \(life)"
            transfers.append(TransferSuggestion(
                fromCentreID: row.centreID, toCentreID: destination.siteID, component: row.component, group: row.group,
                units: target.units, reason: reason))
        }
        return WastageReport(rows: rows, transfers: transfers, demandDays: days)
    }
}
