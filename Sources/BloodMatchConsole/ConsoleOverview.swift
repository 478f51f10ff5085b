import BloodMatchCore
import BloodMatchIngest
import BloodMatchService
import BloodMatchStore
import Foundation

/// The map's data for one component and (optionally) one group: every distribution centre with its
/// usable units, days of supply and data age (stale and no-data centres included, never left out),
/// every hospital with its pending orders, and the last batch run's shipments. Pure: the index, the
/// facts, the held units and the instant are passed in.
public enum ConsoleOverview {
    /// The JSON the page draws.
    public static func render(index: VerifiedIndex, facts: ConsoleFacts, planner: MatchPlanner, held: [HeldUnit],
                              component: Component, group: BloodGroup?, now: Date) -> JSONValue {
        let sites = Dictionary(facts.sites.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let anchor = facts.sites.first?.location ?? GeoPoint(latitude: 0, longitude: 0)
        let request = MatchRequest(requestID: "console:overview", hospitalID: nil, destination: anchor, component: component,
                                   recipient: Recipient(group: group), quantity: 1, requirements: [], urgency: .routine)
        // Each group counted as a request of that same group would use it (held, expired and
        // below-minimum-life units left out), as /v1/availability does.
        let answer = Availability.answer(index: index.index, planner: planner, request: request, destination: anchor, held: held,
                                         now: now, anyGroup: true)
        let stockByCentre = Dictionary(answer.centres.map { ($0.centre.siteID, $0) }, uniquingKeysWith: { a, _ in a })
        let nowSeconds = Int64(now.timeIntervalSince1970)
        var centres: [JSONValue] = []
        var listed = Set<String>()
        for centre in index.index.centres {
            listed.insert(centre.siteID)
            let stock = stockByCentre[centre.siteID]
            let units = group.map { stock?.unitsByGroup[$0] ?? 0 } ?? (stock?.total ?? 0)
            let issued = facts.issued[centre.siteID]?[component.rawValue] ?? 0
            let perDay = Double(issued) / Double(max(1, facts.issueWindowDays))
            let stale = centre.isStale(now: nowSeconds)
            let age = max(0, centre.dataAgeSeconds(now: nowSeconds))
            centres.append([
                "id": .string(centre.siteID), "name": .string(sites[centre.siteID]?.name ?? centre.siteID),
                "lat": .double(centre.location.latitude), "lon": .double(centre.location.longitude),
                "state": .string(stale ? "stale" : "current"),
                "units": .int(units),
                "by_group": .object(Dictionary(uniqueKeysWithValues: BloodGroup.all.map { ($0.description, JSONValue.int(stock?.unitsByGroup[$0] ?? 0)) })),
                "issued_per_day": .double((perDay * 10).rounded() / 10),
                // Without issues in the window there is no rate to divide by: shown as "no issue history".
                "days_of_supply": perDay > 0 ? .double((Double(units) / perDay * 10).rounded() / 10) : .null,
                "data_age_minutes": .int(age / 60),
                "note": .string(stale ? "last known stock, \(age / 60) min old" : "current"),
            ])
        }
        for centre in index.index.centresWithoutData where !listed.contains(centre.siteID) {
            listed.insert(centre.siteID)
            centres.append(noData(id: centre.siteID, name: sites[centre.siteID]?.name, location: centre.location))
        }
        // A centre in the site list that the index does not know yet (added since it was built) is
        // shown too, as unknown.
        for site in facts.sites where site.kind == .distributionCentre && !listed.contains(site.id) {
            centres.append(noData(id: site.id, name: site.name, location: site.location))
        }
        let hospitals: [JSONValue] = facts.sites.filter { $0.kind == .hospital }.map { site in
            let pending = facts.pendingOrders[site.id] ?? [:]
            return [
                "id": .string(site.id), "name": .string(site.name), "lat": .double(site.location.latitude),
                "lon": .double(site.location.longitude),
                "pending_orders": .object(pending.mapValues { .int($0) }),
                "pending_total": .int(pending.values.reduce(0, +)),
            ]
        }
        var run: JSONValue = .null
        if let last = facts.lastRun {
            run = [
                "run_id": .string(last.id.uuidString.lowercased()),
                "finished_at": .string(isoUTC(seconds: Int64(last.finishedAt))),
                "shipments": .array(last.shipments.compactMap { s -> JSONValue? in
                    guard let from = sites[s.centre], let to = sites[s.hospital] else { return nil }
                    return ["centre": .string(s.centre), "hospital": .string(s.hospital), "units": .int(s.units),
                            "eta_minutes": .double((s.etaMinutes * 10).rounded() / 10),
                            "from": [.double(from.location.longitude), .double(from.location.latitude)],
                            "to": [.double(to.location.longitude), .double(to.location.latitude)]]
                }),
            ]
        }
        return [
            "verified": true,
            "index_version": .string(index.version),
            "verified_at": .string(isoUTC(seconds: Int64(index.verifiedAt.timeIntervalSince1970))),
            "component": .string(component.rawValue),
            "group": .nullable(group?.description),
            "supply_window_days": .int(facts.issueWindowDays),
            "centres": .array(centres),
            "hospitals": .array(hospitals),
            "last_run": run,
        ]
    }

    private static func noData(id: String, name: String?, location: GeoPoint) -> JSONValue {
        ["id": .string(id), "name": .string(name ?? id), "lat": .double(location.latitude), "lon": .double(location.longitude),
         "state": "no_data", "units": .null, "by_group": .null, "issued_per_day": .null, "days_of_supply": .null,
         "data_age_minutes": .null, "note": .string(noDataWarning)]
    }
}
