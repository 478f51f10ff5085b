import BloodMatchCore
import BloodMatchIngest
import Foundation

/// A BiologicallyDerivedProduct search, read from the query: which units, and which page.
///
/// Parameters (each listed in the CapabilityStatement; anything else is refused, so a filter a
/// hospital believes applied is never silently dropped): `code` (ISBT 128 product description code
/// or the whole product code), `abo-rhd` (ISBT 128 ABO/RhD code, as the resource's property),
/// `component`, `attribute` (special attributes the unit must have), `biological-source-event`
/// (DIN), `identifier` (`DIN/PRODUCTCODE`), `centre`, `product-status` (`available` only: held
/// and issued units are followed through BiologicallyDerivedProductDispense), `expiration-date`
/// (with `ge`, `gt`, `le`, `lt`), `_count` (0–100, default 20) and `_offset`. Values separated by
/// commas are alternatives; a parameter given twice must hold both times.
public struct FHIRProductSearch: Sendable, Hashable {
    /// Components searched (nil: all).
    public var components: Set<Component>?
    /// Product codes or product description codes, any of which matches (nil: any).
    public var codes: [String]?
    /// ABO/RhD codes, any of which matches (nil: any).
    public var aboRhDCodes: Set<String>?
    /// Attribute sets: the unit must have at least one of each list.
    public var attributes: [[UnitAttribute]] = []
    /// DINs (nil: any).
    public var dins: Set<String>?
    /// Units (nil: any).
    public var units: Set<UnitKey>?
    /// Centres (nil: any).
    public var centres: Set<String>?
    /// Expiry bounds: after (exclusive) and up to (inclusive), seconds since 1970.
    public var expiresAfter: Int64?
    /// See `expiresAfter`.
    public var expiresAtOrBefore: Int64?
    /// Page size.
    public var count = 20
    /// Entries skipped.
    public var offset = 0

    /// The most entries on one page.
    public static let maximumCount = 100
    /// The furthest a page may start: the search keeps the first `_offset + _count` units in order,
    /// so the bound keeps a deep page's cost near a first page's (a hospital narrows the search
    /// instead of paging through a thousand units).
    public static let maximumOffset = 1_000
    /// Parameter names understood.
    public static let parameters = ["code", "abo-rhd", "component", "attribute", "biological-source-event", "identifier", "centre",
                                    "product-status", "expiration-date", "_count", "_offset"]

    /// Creates an unfiltered search.
    public init() {}

    /// Reads the query's parameters.
    public init(query: [(name: String, value: String)]) throws(APIError) {
        for (name, value) in query {
            guard Self.parameters.contains(name) else {
                throw APIError(.badRequest, code: "unknown_parameter",
                               message: "search parameter '\(name.prefix(40))' is not supported on BiologicallyDerivedProduct; see /fhir/metadata",
                               field: String(name.prefix(40)))
            }
            let alternatives = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard !alternatives.isEmpty, alternatives.count <= 20, alternatives.allSatisfy({ !$0.isEmpty }) else {
                throw APIError.invalid(name, "must hold 1 to 20 non-empty values separated by commas")
            }
            switch name {
            case "code":
                let list = try alternatives.map { (v) throws(APIError) -> String in
                    let code = try Self.token(v, system: FHIRSystem.productDescriptionCode, name: name)
                    guard [5, 8].contains(code.utf8.count), code.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
                        throw APIError.invalid(name, "'\(code.prefix(20))' is neither a 5-character product description code nor an 8-character product code")
                    }
                    return code
                }
                codes = Self.intersect(codes.map { Set($0) }, Set(list)).map { Array($0).sorted() }
            case "abo-rhd":
                let list = try alternatives.map { (v) throws(APIError) -> String in
                    let code = try Self.token(v, system: FHIRSystem.aboRhD, name: name)
                    guard (try? ISBTBloodGroupCode(code: code))?.bloodGroup != nil else {
                        throw APIError.invalid(name, "'\(code.prefix(20))' is not an ISBT 128 ABO/RhD code of a group (ST-001 Table 4), e.g. 95 for O RhD negative")
                    }
                    return code
                }
                aboRhDCodes = Self.intersect(aboRhDCodes, Set(list))
            case "component":
                let list = try alternatives.map { (v) throws(APIError) -> Component in
                    guard let c = Component(rawValue: try Self.token(v, system: FHIRSystem.component, name: name)) else {
                        throw APIError.invalid(name, "must be one of RBC, PLT, PLASMA, CRYO, WB")
                    }
                    return c
                }
                components = Self.intersect(components, Set(list))
            case "attribute":
                attributes.append(try alternatives.map { (v) throws(APIError) -> UnitAttribute in
                    guard let a = UnitAttribute(rawValue: try Self.token(v, system: FHIRSystem.requirement, name: name)) else {
                        throw APIError.invalid(name, "'\(v.prefix(30))' is not a known attribute (" + UnitAttribute.allCases.map(\.rawValue).joined(separator: ", ") + ")")
                    }
                    return a
                })
            case "biological-source-event":
                let list = try alternatives.map { (v) throws(APIError) -> String in
                    let din = try Self.token(v, system: FHIRSystem.din, name: name)
                    guard din.utf8.count == 13, (try? DonationNumber(parsing: din)) != nil else {
                        throw APIError.invalid(name, "'\(din.prefix(20))' is not a 13-character ISBT 128 DIN")
                    }
                    return din
                }
                dins = Self.intersect(dins, Set(list))
            case "identifier":
                let list = try alternatives.map { (v) throws(APIError) -> UnitKey in
                    guard let key = UnitKey(parsing: try Self.token(v, system: FHIRSystem.unitKey, name: name)) else {
                        throw APIError.invalid(name, "must be DIN/PRODUCTCODE (13 and 8 characters)")
                    }
                    return key
                }
                units = Self.intersect(units, Set(list))
            case "centre":
                let list = try alternatives.map { (v) throws(APIError) -> String in try Self.token(v, system: FHIRSystem.site, name: name) }
                centres = Self.intersect(centres, Set(list))
            case "product-status":
                let list = try alternatives.map { (v) throws(APIError) -> String in try Self.token(v, system: FHIRSystem.productStatus, name: name) }
                guard list.allSatisfy({ $0 == "available" }) else {
                    throw APIError(.badRequest, code: "unsupported_value",
                                   message: "only available stock is searched here; units held for or issued to you are followed through BiologicallyDerivedProductDispense",
                                   field: name)
                }
            case "expiration-date":
                guard alternatives.count == 1 else { throw APIError.invalid(name, "takes one value per occurrence (repeat the parameter for a range)") }
                try applyExpiry(value)
            case "_count":
                guard let n = Int(value), (0...Self.maximumCount).contains(n) else { throw APIError.invalid(name, "must be a whole number 0…\(Self.maximumCount)") }
                count = n
            case "_offset":
                guard let n = Int(value), (0...Self.maximumOffset).contains(n) else { throw APIError.invalid(name, "must be a whole number 0…\(Self.maximumOffset)") }
                offset = n
            default:
                break
            }
        }
    }

    /// `[system|]code`: the system, when given, must be the parameter's.
    static func token(_ value: String, system: String, name: String) throws(APIError) -> String {
        guard let bar = value.firstIndex(of: "|") else { return value }
        let given = String(value[..<bar]), code = String(value[value.index(after: bar)...])
        guard given.isEmpty || given == system else {
            throw APIError.invalid(name, "system '\(given.prefix(80))' is not \(system)")
        }
        guard !code.isEmpty else { throw APIError.invalid(name, "a code is required after '|'") }
        return code
    }

    static func intersect<T>(_ a: Set<T>?, _ b: Set<T>) -> Set<T>? { a.map { $0.intersection(b) } ?? b }

    /// `ge`, `gt`, `le`, `lt` followed by a date (`YYYY-MM-DD`, a whole UTC day) or an instant with a zone.
    mutating func applyExpiry(_ value: String) throws(APIError) {
        let prefix = String(value.prefix(2))
        guard ["ge", "gt", "le", "lt"].contains(prefix) else {
            throw APIError.invalid("expiration-date", "must start with ge, gt, le or lt (e.g. ge2026-12-10)")
        }
        let text = String(value.dropFirst(2))
        let start: Int64, end: Int64   // the value's interval [start, end]
        if text.utf8.count == 10 {
            guard let s = try? ISO8601Timestamp.secondsSince1970(text + "T00:00:00Z") else {
                throw APIError.invalid("expiration-date", "'\(text.prefix(30))' is not a date YYYY-MM-DD")
            }
            start = Int64(s)
            end = start + 86_399
        } else {
            guard let s = try? ISO8601Timestamp.secondsSince1970(text) else {
                throw APIError.invalid("expiration-date", "'\(text.prefix(40))' is not a date or an instant with a zone (2026-12-10T08:00:00Z)")
            }
            start = Int64(s.rounded(.down))
            end = start
        }
        switch prefix {
        case "ge": expiresAfter = max(expiresAfter ?? .min, start - 1)
        case "gt": expiresAfter = max(expiresAfter ?? .min, end)
        case "le": expiresAtOrBefore = min(expiresAtOrBefore ?? .max, end)
        default: expiresAtOrBefore = min(expiresAtOrBefore ?? .max, start - 1)
        }
    }

    /// One listed unit: its index position and bucket.
    public struct Hit: Sendable, Hashable {
        /// Position in the index.
        public var position: Int
        /// Centre number in the index.
        public var centre: Int
        /// Component.
        public var component: Component
        /// Group.
        public var group: BloodGroup
    }

    /// The matching units of an index, earliest expiry first: how many match in all, and the page.
    /// Held and issued units (`held`) are never listed, nor a unit with less than its component's
    /// `minimumRemainingSeconds` of life left at `now`: it could reach no hospital with the minimum
    /// remaining life a match requires at arrival (Data/matching.json), so no order could be given it.
    public func run(index: InventoryIndex, held: [HeldUnit], now: Int64,
                    minimumRemainingSeconds: [Component: Int64] = [:]) -> (total: Int, page: [Hit]) {
        let groups = aboRhDCodes.map { codes in BloodGroup.all.filter { g in
            ISBTBloodGroupCode.table4.first { $0.group == g }.map { row in row.codes.values.contains { codes.contains($0) } } ?? false
        } } ?? BloodGroup.all
        // Per product code, worked out once: the code filter, and per group the ABO/RhD code filter.
        let codeCount = index.productCodeCount
        var codeOK = [Bool](repeating: true, count: codeCount)
        var aboOK: [[Bool]]? = aboRhDCodes.map { _ in [[Bool]](repeating: [Bool](repeating: false, count: codeCount), count: BloodGroup.all.count) }
        for n in 0..<codeCount {
            let code = index.productCode(number: n)
            if let codes { codeOK[n] = codes.contains { $0.utf8.count == 8 ? $0 == code : code.hasPrefix($0) } }
            if let aboRhDCodes {
                for g in groups { aboOK?[g.index][n] = FHIRProduct.aboRhDCode(g, productCode: code).map { aboRhDCodes.contains($0) } ?? false }
            }
        }
        // Held and issued units, by position (a few hundred at most, each found in its bucket).
        var heldPositions = Set<Int>()
        for unit in held {
            if let p = index.position(of: unit.key, centreID: unit.centreID, component: unit.component, group: unit.group) { heldPositions.insert(p) }
        }
        let wanted = offset + count
        var best: [(expiry: Int64, key: UnitKey, hit: Hit)] = []
        best.reserveCapacity(wanted + 1)
        var total = 0
        let upper = expiresAtOrBefore ?? .max
        for (c, centre) in index.centres.enumerated() {
            if let centres, !centres.contains(centre.siteID) { continue }
            for component in Component.allCases {
                if let components, !components.contains(component) { continue }
                let lower = max(now + (minimumRemainingSeconds[component] ?? 0), expiresAfter ?? .min)
                for group in groups {
                    let abo = aboOK?[group.index]
                    for p in index.positions(centre: c, component: component, group: group) {
                        let expiry = index.expiry(at: p)
                        if expiry <= lower { continue }
                        if expiry > upper { break }   // positions are in expiry order
                        let n = index.productCodeNumber(at: p)
                        if !codeOK[n] { continue }
                        if let abo, !abo[n] { continue }
                        if let dins, !dins.contains(where: { index.dinEquals($0, at: p) }) { continue }
                        if !attributes.isEmpty {
                            let set = index.attributeSet(at: p)
                            if !attributes.allSatisfy({ $0.contains { set.contains($0) } }) { continue }
                        }
                        if heldPositions.contains(p) { continue }
                        if let units, !units.contains(index.unitKey(at: p)) { continue }
                        total += 1
                        guard wanted > 0 else { continue }
                        if best.count == wanted, let last = best.last, last.expiry < expiry { continue }
                        let key = index.unitKey(at: p)
                        if best.count == wanted, let last = best.last, (last.expiry, last.key) < (expiry, key) { continue }
                        let entry = (expiry: expiry, key: key, hit: Hit(position: p, centre: c, component: component, group: group))
                        var low = 0, high = best.count   // the first entry after this one: binary search
                        while low < high {
                            let mid = (low + high) / 2
                            if (best[mid].expiry, best[mid].key) > (entry.expiry, entry.key) { high = mid } else { low = mid + 1 }
                        }
                        best.insert(entry, at: low)
                        if best.count > wanted { best.removeLast() }
                    }
                }
            }
        }
        return (total, best.dropFirst(offset).map(\.hit))
    }
}
