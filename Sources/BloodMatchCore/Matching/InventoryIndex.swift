import Foundation

/// A distribution centre in the index, with the snapshot its stock comes from.
public struct IndexedCentre: Sendable, Hashable, Codable {
    /// Site id.
    public var siteID: String
    /// Location.
    public var location: GeoPoint
    /// The snapshot in force when the index was built.
    public var snapshotID: Int64
    /// The snapshot's `as_of` instant (seconds since 1970).
    public var asOf: Int64
    /// Seconds after `asOf` when the centre's data counts as stale.
    public var expectedIntervalSeconds: Int64

    /// Creates an entry.
    public init(siteID: String, location: GeoPoint, snapshotID: Int64, asOf: Int64, expectedIntervalSeconds: Int64) {
        self.siteID = siteID
        self.location = location
        self.snapshotID = snapshotID
        self.asOf = asOf
        self.expectedIntervalSeconds = expectedIntervalSeconds
    }

    /// Age of the centre's data at `now`, in seconds.
    public func dataAgeSeconds(now: Int64) -> Int64 { now - asOf }

    /// Whether the centre's data is stale at `now`: no good snapshot within its expected interval.
    public func isStale(now: Int64) -> Bool { now - asOf > expectedIntervalSeconds }
}

/// A distribution centre that has never delivered a snapshot: its stock is unknown. It is never left
/// out of an answer: every match, stock count and availability list names it ("no data — stock
/// unknown, confirm by phone").
public struct CentreWithoutData: Sendable, Hashable, Codable {
    /// Site id.
    public var siteID: String
    /// Location.
    public var location: GeoPoint

    /// Creates an entry.
    public init(siteID: String, location: GeoPoint) {
        self.siteID = siteID
        self.location = location
    }
}

/// The spatial index: distribution centres and their available stock, bucketed by centre,
/// component and ABO/RhD group, each bucket sorted by (expiry, DIN, product code).
///
/// Struct-of-arrays over all units so a query touches only the buckets of compatible groups at
/// the centres it visits; DINs are 13 ASCII bytes each, turned into strings only for the answer.
public struct InventoryIndex: Sendable {
    /// Format version of the serialized index.
    /// Version 2: units are ordered within a bucket by (expiry, DIN, product code), a unit being
    /// its DIN and product code; a version 1 file is refused and the index rebuilt.
    /// Version 3: the centres without data follow the units.
    public static let formatVersion: UInt32 = 3
    /// Components × groups: buckets per centre.
    static let bucketsPerCentre = Component.allCases.count * 8

    /// The centres, in site-id order.
    public let centres: [IndexedCentre]
    /// Distribution centres with no snapshot in force (never delivered one), in site-id order.
    public let centresWithoutData: [CentreWithoutData]
    /// Bucket boundaries: bucket b of centre c spans `offsets[c * 40 + b] ..< offsets[c * 40 + b + 1]`.
    let offsets: [Int32]
    /// Expiry instants (seconds since 1970).
    let expiresAt: [Int64]
    /// Collection instants (seconds since 1970).
    let collectedAt: [Int64]
    /// Attribute sets.
    let attributes: [UInt64]
    /// Product-code index into `productCodes`.
    let productCodeIndex: [UInt16]
    /// Distinct product codes.
    let productCodes: [String]
    /// DINs, 13 bytes each.
    let dinBytes: [UInt8]
    /// Unit vectors of the centres, for distance computations.
    let centreVectors: [SIMD3<Double>]
    /// When the index was built (seconds since 1970).
    public let builtAt: Int64

    /// Number of units indexed.
    public var unitCount: Int { expiresAt.count }

    /// A version string naming every centre's snapshot (id and as-of, since ids repeat across
    /// databases): changes whenever any snapshot changes.
    public var version: String {
        var hash = FNV1a64()
        for centre in centres {
            hash.add(centre.siteID)
            hash.add(centre.snapshotID)
            hash.add(centre.asOf)
        }
        for centre in centresWithoutData { hash.add("nodata:" + centre.siteID) }
        return String(format: "idx-%016llx", hash.value)
    }

    /// Builds the index from the available units of each centre's current snapshot.
    ///
    /// Units that are not `AVAILABLE` are left out (they are never offered); units whose centre is
    /// not in `centres` are left out too.
    /// `centresWithoutData` are carried as they are (their stock is unknown, never zero).
    public init(centres: [IndexedCentre], units: [InventoryUnit], builtAt: Date, centresWithoutData: [CentreWithoutData] = []) {
        let centres = centres.sorted { $0.siteID < $1.siteID }
        let centreIndex = Dictionary(uniqueKeysWithValues: centres.enumerated().map { ($0.element.siteID, $0.offset) })
        var codes: [String: UInt16] = [:]
        var codeList: [String] = []
        struct Entry { var bucket: Int32; var expires: Int64; var din: String; var code: String; var unit: Int }
        var entries: [Entry] = []
        entries.reserveCapacity(units.count)
        for (i, unit) in units.enumerated() where unit.status == .available {
            guard let c = centreIndex[unit.siteID] else { continue }
            let bucket = Int32(c * Self.bucketsPerCentre + unit.component.index * 8 + unit.group.index)
            entries.append(Entry(bucket: bucket, expires: Int64(unit.expiresAt.timeIntervalSince1970.rounded(.down)), din: unit.din.value, code: unit.productCode, unit: i))
        }
        entries.sort { a, b in
            if (a.bucket, a.expires) != (b.bucket, b.expires) { return (a.bucket, a.expires) < (b.bucket, b.expires) }
            if a.din != b.din { return a.din.utf8.lexicographicallyPrecedes(b.din.utf8) }
            return a.code.utf8.lexicographicallyPrecedes(b.code.utf8)
        }
        var offsets = [Int32](repeating: 0, count: centres.count * Self.bucketsPerCentre + 1)
        var expires: [Int64] = []
        var collected: [Int64] = []
        var attrs: [UInt64] = []
        var codeIndex: [UInt16] = []
        var dins: [UInt8] = []
        expires.reserveCapacity(entries.count)
        collected.reserveCapacity(entries.count)
        attrs.reserveCapacity(entries.count)
        codeIndex.reserveCapacity(entries.count)
        dins.reserveCapacity(entries.count * 13)
        for entry in entries {
            let unit = units[entry.unit]
            offsets[Int(entry.bucket) + 1] += 1
            expires.append(entry.expires)
            collected.append(Int64(unit.collectedAt.timeIntervalSince1970.rounded(.down)))
            attrs.append(unit.attributes.rawValue)
            if let code = codes[unit.productCode] {
                codeIndex.append(code)
            } else {
                let code = UInt16(truncatingIfNeeded: codeList.count)
                codes[unit.productCode] = code
                codeList.append(unit.productCode)
                codeIndex.append(code)
            }
            dins.append(contentsOf: unit.din.value.utf8)
        }
        for i in 1..<offsets.count { offsets[i] += offsets[i - 1] }
        self.init(centres: centres, offsets: offsets, expiresAt: expires, collectedAt: collected, attributes: attrs,
                  productCodeIndex: codeIndex, productCodes: codeList, dinBytes: dins,
                  builtAt: Int64(builtAt.timeIntervalSince1970.rounded(.down)), centresWithoutData: centresWithoutData)
    }

    init(centres: [IndexedCentre], offsets: [Int32], expiresAt: [Int64], collectedAt: [Int64], attributes: [UInt64],
         productCodeIndex: [UInt16], productCodes: [String], dinBytes: [UInt8], builtAt: Int64,
         centresWithoutData: [CentreWithoutData]) {
        self.centres = centres
        self.centresWithoutData = centresWithoutData.sorted { $0.siteID < $1.siteID }
        self.offsets = offsets
        self.expiresAt = expiresAt
        self.collectedAt = collectedAt
        self.attributes = attributes
        self.productCodeIndex = productCodeIndex
        self.productCodes = productCodes
        self.dinBytes = dinBytes
        self.centreVectors = centres.map(\.location.unitVector)
        self.builtAt = builtAt
    }

    /// The range of unit positions in one bucket.
    @inline(__always)
    func bucket(centre: Int, component: Component, group: BloodGroup) -> Range<Int> {
        let b = centre * Self.bucketsPerCentre + component.index * 8 + group.index
        return Int(offsets[b])..<Int(offsets[b + 1])
    }

    /// The DIN at a unit position.
    public func din(at position: Int) -> String {
        String(decoding: dinBytes[(position * 13)..<(position * 13 + 13)], as: UTF8.self)
    }

    /// The product code at a unit position.
    public func productCode(at position: Int) -> String {
        productCodes[Int(productCodeIndex[position])]
    }

    /// The unit's identity (DIN and product code) at a position.
    public func unitKey(at position: Int) -> UnitKey {
        UnitKey(din: din(at: position), productCode: productCode(at: position))
    }

    /// Whether the unit at `a` orders before the one at `b` by identity: DIN, then product code.
    @inline(__always)
    func unitPrecedes(_ a: Int, _ b: Int) -> Bool {
        let da = dinBytes[(a * 13)..<(a * 13 + 13)], db = dinBytes[(b * 13)..<(b * 13 + 13)]
        if da.elementsEqual(db) { return productCode(at: a).utf8.lexicographicallyPrecedes(productCode(at: b).utf8) }
        return da.lexicographicallyPrecedes(db)
    }

    /// Counts of available units per (component, group) at a centre, for availability summaries.
    public func count(centre: Int, component: Component, group: BloodGroup) -> Int {
        bucket(centre: centre, component: component, group: group).count
    }
}

/// FNV-1a, 64 bit: a fast checksum against corruption of index files (not a security hash).
struct FNV1a64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var v = value
        for byte in bytes {
            v = (v ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        value = v
    }
    mutating func add(_ text: String) {
        var text = text
        text.withUTF8 { add(UnsafeRawBufferPointer($0)) }
        add(Int64(0))
    }
    mutating func add<T: FixedWidthInteger>(_ number: T) {
        withUnsafeBytes(of: number.littleEndian) { add($0) }
    }
}
