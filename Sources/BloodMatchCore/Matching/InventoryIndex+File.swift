import Foundation

/// Why an index file could not be used. The caller then answers "unable to verify".
public struct IndexFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public var reason: String
    /// Creates the error.
    public init(reason: String) { self.reason = reason }
    public var description: String { "index file unusable: \(reason)" }
}

extension InventoryIndex {
    static let magic: [UInt8] = Array("BMINDEX\u{0}".utf8)

    /// The index as a compact file: magic, format version, payload length, FNV-1a checksum of the
    /// payload, then the payload (centres with their snapshot ids, product codes, bucket offsets,
    /// the unit arrays, and the centres without data; little-endian).
    public func serialized() -> [UInt8] {
        var payload = ByteWriter()
        payload.int(builtAt)
        payload.int(UInt32(centres.count))
        for c in centres {
            payload.string(c.siteID)
            payload.double(c.location.latitude)
            payload.double(c.location.longitude)
            payload.int(c.snapshotID)
            payload.int(c.asOf)
            payload.int(c.expectedIntervalSeconds)
        }
        payload.int(UInt32(productCodes.count))
        for code in productCodes { payload.string(code) }
        payload.int(UInt32(unitCount))
        payload.array(offsets)
        payload.array(expiresAt)
        payload.array(collectedAt)
        payload.array(attributes)
        payload.array(productCodeIndex)
        payload.array(dinBytes)
        payload.int(UInt32(centresWithoutData.count))
        for c in centresWithoutData {
            payload.string(c.siteID)
            payload.double(c.location.latitude)
            payload.double(c.location.longitude)
        }
        var checksum = FNV1a64()
        payload.bytes.withUnsafeBytes { checksum.add($0) }
        var file = ByteWriter()
        file.bytes.append(contentsOf: Self.magic)
        file.int(Self.formatVersion)
        file.int(UInt64(payload.bytes.count))
        file.int(checksum.value)
        file.bytes.append(contentsOf: payload.bytes)
        return file.bytes
    }

    /// Reads an index file, verifying magic, version, length and checksum.
    public init(serialized bytes: [UInt8]) throws(IndexFileError) {
        var reader = ByteReader(bytes: bytes)
        guard let magic = reader.take(8), magic == Self.magic else { throw IndexFileError(reason: "not a BloodMatch index file") }
        guard let version: UInt32 = reader.int(), version == Self.formatVersion else {
            throw IndexFileError(reason: "format version differs from \(Self.formatVersion); rebuild it with `bloodmatch index build`")
        }
        guard let length: UInt64 = reader.int(), let sum: UInt64 = reader.int(), Int(length) == bytes.count - reader.position else {
            throw IndexFileError(reason: "truncated: the length in the header does not match the file")
        }
        var checksum = FNV1a64()
        bytes.withUnsafeBytes { checksum.add(UnsafeRawBufferPointer(rebasing: $0[reader.position...])) }
        guard checksum.value == sum else { throw IndexFileError(reason: "checksum mismatch: the file is corrupt") }
        func need<T>(_ value: T?) throws(IndexFileError) -> T {
            guard let value else { throw IndexFileError(reason: "payload ends early") }
            return value
        }
        let builtAt: Int64 = try need(reader.int())
        let centreCount: UInt32 = try need(reader.int())
        var centres: [IndexedCentre] = []
        for _ in 0..<centreCount {
            centres.append(IndexedCentre(
                siteID: try need(reader.string()), location: GeoPoint(latitude: try need(reader.double()), longitude: try need(reader.double())),
                snapshotID: try need(reader.int()), asOf: try need(reader.int()), expectedIntervalSeconds: try need(reader.int())))
        }
        let codeCount: UInt32 = try need(reader.int())
        var codes: [String] = []
        for _ in 0..<codeCount { codes.append(try need(reader.string())) }
        let n = Int(try need(reader.int() as UInt32?))
        let offsets: [Int32] = try need(reader.array(count: centres.count * Self.bucketsPerCentre + 1))
        let expires: [Int64] = try need(reader.array(count: n))
        let collected: [Int64] = try need(reader.array(count: n))
        let attrs: [UInt64] = try need(reader.array(count: n))
        let codeIndex: [UInt16] = try need(reader.array(count: n))
        let dins: [UInt8] = try need(reader.array(count: n * 13))
        let withoutDataCount: UInt32 = try need(reader.int())
        var withoutData: [CentreWithoutData] = []
        for _ in 0..<withoutDataCount {
            withoutData.append(CentreWithoutData(
                siteID: try need(reader.string()), location: GeoPoint(latitude: try need(reader.double()), longitude: try need(reader.double()))))
        }
        guard offsets.last.map(Int.init) == n, codeIndex.allSatisfy({ Int($0) < codes.count }) else {
            throw IndexFileError(reason: "inconsistent bucket offsets or product codes")
        }
        self.init(centres: centres, offsets: offsets, expiresAt: expires, collectedAt: collected, attributes: attrs,
                  productCodeIndex: codeIndex, productCodes: codes, dinBytes: dins, builtAt: builtAt, centresWithoutData: withoutData)
    }
}

struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func int<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func double(_ v: Double) { int(v.bitPattern) }
    mutating func string(_ s: String) { let u = Array(s.utf8); int(UInt16(u.count)); bytes.append(contentsOf: u) }
    mutating func array<T: FixedWidthInteger>(_ values: [T]) {
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }   // little-endian hosts only (x86_64, arm64)
    }
}

struct ByteReader {
    let bytes: [UInt8]
    var position = 0
    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, position + n <= bytes.count else { return nil }
        defer { position += n }
        return Array(bytes[position..<(position + n)])
    }
    mutating func int<T: FixedWidthInteger>() -> T? {
        let size = MemoryLayout<T>.size
        guard position + size <= bytes.count else { return nil }
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { dst in bytes.withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[position..<(position + size)])) } }
        position += size
        return T(littleEndian: v)
    }
    mutating func double() -> Double? { (int() as UInt64?).map(Double.init(bitPattern:)) }
    mutating func string() -> String? {
        guard let n: UInt16 = int(), let raw = take(Int(n)) else { return nil }
        return String(decoding: raw, as: UTF8.self)
    }
    mutating func array<T: FixedWidthInteger>(count: Int) -> [T]? {
        let size = MemoryLayout<T>.stride * count
        guard count >= 0, position + size <= bytes.count else { return nil }
        let out = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: src[position..<(position + size)]))
            }
            initialized = count
        }
        position += size
        return out
    }
}
