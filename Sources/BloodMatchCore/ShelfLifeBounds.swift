/// The longest plausible time from collection to expiry for each component, used to refuse
/// implausible feed rows (a platelet that expires 90 days after collection, an expiry of 9999).
///
/// These are plausibility bounds, not dating rules: each is the longest legitimate dating found in
/// the sources, so no correctly labelled unit is refused (Data/SOURCES.md §S9).
public struct ShelfLifeBounds: Sendable, Hashable, Codable {
    /// Maximum days from collection to expiry, per component.
    public var maximumDays: [Component: Int]

    /// Creates bounds from a table; a component missing from it has no plausible dating.
    public init(maximumDays: [Component: Int]) { self.maximumDays = maximumDays }

    /// The defaults:
    /// - RBC 49 days: red cells "28–49 days according to processes used" (UKBSQR Sch. 4);
    ///   US additive solution 42 days (CFR610).
    /// - PLT 7 days: "may be stored for 7 days in conjunction with detection or reduction of
    ///   bacterial contamination" (UKBSQR Sch. 4); 5 days otherwise (CFR610).
    /// - PLASMA and CRYO 1,096 days: "up to 36 months" frozen (UKBSQR Sch. 4); US 1 year (CFR610).
    /// - WB 49 days: whole blood shares the red-cell range (UKBSQR Sch. 4); US CPDA-1 35 days (CFR610).
    public static let standard = ShelfLifeBounds(maximumDays: [
        .redCells: 49, .platelets: 7, .plasma: 1096, .cryoprecipitate: 1096, .wholeBlood: 49,
    ])

    /// The bound for a component in seconds, or nil if the component has none.
    public func maximumSeconds(for component: Component) -> Double? {
        maximumDays[component].map { Double($0) * 86_400 }
    }
}
