import BloodMatchCore
import BloodMatchStore
import Foundation
import Synchronization

/// What a centre without data says wherever it is listed.
public let noDataWarning = "no data — stock unknown, confirm by phone"

/// Availability as a match for the same request could use it: one function behind both
/// `GET /v1/availability` and `bloodmatch stock`, so the two agree on the same data.
public enum Availability {
    /// The answer: the query the rules made, and every centre's usable stock, nearest (by ETA) first.
    public struct Answer: Sendable {
        /// The query: acceptable groups, requirements, deadline.
        public var query: UnitQuery
        /// Groups the rules refused, with reasons.
        public var refused: [String]
        /// How the requirements applied.
        public var notes: [String]
        /// Every centre with its usable units (zero where none), by ETA then centre id.
        public var centres: [CentreStock]
        /// Distribution centres that have never delivered a snapshot (stock unknown, not zero),
        /// nearest first: listed whatever the limit, never left out.
        public var centresWithoutData: [CentreNotChecked]
    }

    /// What a match for `request` (quantity aside) could use at `now` from `index`, `held` units
    /// left out. Without a recipient group (`request.recipient.group == nil` and `anyGroup`), every
    /// group is counted as a plain request of that same group would use it.
    public static func answer(index: InventoryIndex, planner: MatchPlanner, request: MatchRequest, destination: GeoPoint,
                              held: [HeldUnit], now: Date, anyGroup: Bool = false,
                              table: (Component, AttributeSet, AttributeSet) -> ExpiryTable? = { _, _, _ in nil }) -> Answer {
        var (query, refused, notes) = planner.query(for: request, destination: destination)
        if anyGroup {
            query.choices = BloodGroup.all.map { GroupChoice(group: $0, rank: 1, rule: "the unit's own group") }
            refused = []
        }
        query.quantity = 1
        let stock = planner.matcher(for: index).usableStock(query, now: Int64(now.timeIntervalSince1970), held: held, table: table)
        let unknown = index.centresWithoutData
            .map { CentreNotChecked(centreID: $0.siteID, distanceKm: $0.location.distanceKm(to: destination)) }
            .sorted { ($0.distanceKm, $0.centreID) < ($1.distanceKm, $1.centreID) }
        return Answer(query: query, refused: refused, notes: notes,
                      centres: stock.sorted { ($0.etaMinutes, $0.centre.siteID) < ($1.etaMinutes, $1.centre.siteID) },
                      centresWithoutData: unknown)
    }
}

/// Held, issued and recently returned units with their places, read at most once per `interval`
/// (a burst of lookups costs one query) and at once after a hold changes here.
public final class HeldUnitDirectory: Sendable {
    private let state = Mutex<(units: [HeldUnit], at: ContinuousClock.Instant)?>(nil)
    /// The longest a read may be reused.
    public let interval: Duration

    /// Creates an empty directory.
    public init(interval: Duration = .seconds(1)) { self.interval = interval }

    /// The held units, from the last read when it is recent enough.
    public func current(database: Database) async throws -> [HeldUnit] {
        if let last = state.withLock({ $0 }), ContinuousClock.now - last.at < interval { return last.units }
        let started = ContinuousClock.now
        let units = try await PostgresInventoryReader(database: database).heldUnitPlaces()
        state.withLock { $0 = (units, started) }
        return units
    }

    /// Forgets the last read (a hold was made, released or issued here).
    public func changed() { state.withLock { $0 = nil } }
}
