import BloodMatchCore
import BloodMatchIngest
import Crypto
import Foundation
import Logging
import PostgresNIO

// Reading a snapshot file for the importer: decoding it chunk by chunk and encoding accepted rows for COPY.

/// Reads one snapshot through the decoder, a CSV chunk by chunk or a FHIR Bundle whole, counting
/// rows and keeping the first rejections; optionally encodes the accepted rows as COPY text.
struct SnapshotFileReader {
    var decoder: InventorySnapshotDecoder
    let csvPath: String
    let fileName: String
    let chunkSize: Int
    let retainedRejections: Int
    var rowsTotal = 0
    var rejectedCount = 0
    var rejections: [RowRejection] = []
    var completion: SnapshotCompletion?
    var fileError: SnapshotFileError?
    /// Set when the file is a FHIR Bundle (`NAME.json`): what its decoder needs.
    var bundle: BundleContext?

    struct BundleContext {
        var control: SnapshotControl
        var now: Date
        var limits: SnapshotLimits
        var shelfLife: ShelfLifeBounds
    }

    /// Reads the file to its end or its first file error (kept in `fileError`). With `snapshot`, the
    /// accepted rows go to `write` as COPY text for that snapshot id, about 1 MiB at a time.
    mutating func read(copyingAs snapshot: String?, write: (ByteBuffer) async throws -> Void) async throws {
        guard let handle = FileHandle(forReadingAtPath: csvPath) else {
            throw PostgresInventoryImporter.Rollback(outcome: .refused, message: "\(fileName): cannot open \(csvPath) for reading",
                                                     summary: nil, rowsTotal: 0, rejections: [], fileError: nil)
        }
        defer { try? handle.close() }
        if let bundle { return try await readBundle(handle, bundle, copyingAs: snapshot, write: write) }
        var out = ByteBuffer()
        do {
            while true {
                let chunk = try handle.read(upToCount: chunkSize) ?? Data()
                if chunk.isEmpty { break }
                emit(try decoder.consume(chunk), snapshot: snapshot, to: &out)
                if out.readableBytes >= 1 << 20 {
                    try await write(out)
                    out.clear()
                }
            }
            let done = try decoder.finish()
            emit(done.rows, snapshot: snapshot, to: &out)
            completion = done
        } catch let error as SnapshotFileError {
            fileError = error
            return
        }
        if out.readableBytes > 0 { try await write(out) }
    }

    /// A FHIR Bundle is decoded whole (JSON has no record boundaries to stream on), read up to
    /// the file-size limit and one byte more, so an oversized file is refused, never cut.
    private mutating func readBundle(_ handle: FileHandle, _ bundle: BundleContext, copyingAs snapshot: String?,
                                     write: (ByteBuffer) async throws -> Void) async throws {
        do {
            let bytes = [UInt8](try handle.read(upToCount: min(bundle.limits.maximumFileBytes, bundle.limits.maximumBundleBytes) + 1) ?? Data())
            let done = try FHIRBundleSnapshotDecoder.decode(bytes, fileName: fileName, control: bundle.control, now: bundle.now,
                                                            limits: bundle.limits, shelfLife: bundle.shelfLife)
            var out = ByteBuffer()
            emit(done.rows, snapshot: snapshot, to: &out)
            completion = done
            if out.readableBytes > 0 { try await write(out) }
        } catch let error as SnapshotFileError {
            fileError = error
        }
    }

    private mutating func emit(_ rows: [DecodedRow], snapshot: String?, to out: inout ByteBuffer) {
        for row in rows {
            rowsTotal += 1
            switch row {
            case .accepted(let unit, let line):
                if let snapshot { CopyRowEncoder.append(unit, snapshot: snapshot, line: line, to: &out) }
            case .rejected(let rejection):
                rejectedCount += 1
                if rejections.count < retainedRejections { rejections.append(rejection) }
            }
        }
    }

    /// The summary, once the decoder has verified the checksum and row count; otherwise the refusal.
    func verifiedSummary() throws -> SnapshotSummary {
        if let fileError {
            throw PostgresInventoryImporter.Rollback(outcome: .refused, message: fileError.description, summary: nil,
                                                     rowsTotal: rowsTotal, rejections: rejections, fileError: fileError)
        }
        guard let summary = completion?.summary else {
            throw PostgresInventoryImporter.Rollback(outcome: .refused, message: "the snapshot could not be read to its end",
                                                     summary: nil, rowsTotal: rowsTotal, rejections: rejections, fileError: nil)
        }
        return summary
    }
}

/// Encodes a validated unit as one line of PostgreSQL COPY text format (tab-delimited).
///
/// Every field has passed validation (fixed alphabets, no tab, newline or backslash), so no
/// escaping is needed; `sanitised` still guards against a future field that could carry one.
enum CopyRowEncoder {
    static func append(_ unit: InventoryUnit, snapshot: String, line: Int, to out: inout ByteBuffer) {
        out.writeString(snapshot); out.writeInteger(UInt8(9))
        out.writeString(unit.din.value); out.writeInteger(UInt8(9))
        out.writeString(sanitised(unit.productCode)); out.writeInteger(UInt8(9))
        out.writeString(unit.component.rawValue); out.writeInteger(UInt8(9))
        out.writeString(unit.group.abo.rawValue); out.writeInteger(UInt8(9))
        out.writeString(unit.group.rhd.rawValue); out.writeInteger(UInt8(9))
        writeEpoch(unit.collectedAt, to: &out); out.writeInteger(UInt8(9))
        writeEpoch(unit.expiresAt, to: &out); out.writeInteger(UInt8(9))
        out.writeString(sanitised(unit.siteID)); out.writeInteger(UInt8(9))
        out.writeString(unit.status.rawValue); out.writeInteger(UInt8(9))
        out.writeString(unit.attributes.description); out.writeInteger(UInt8(9))
        out.writeString(String(line)); out.writeInteger(UInt8(10))
    }

    /// Writes a timestamp as `YYYY-MM-DD HH:MM:SS[.ffffff]+00`, computed without Foundation
    /// formatters. Fractions are kept to the microsecond, PostgreSQL's resolution: cutting them
    /// would change the data and could make `collected_at` equal `expires_at`.
    static func writeEpoch(_ date: Date, to out: inout ByteBuffer) {
        let instant = date.timeIntervalSince1970
        var seconds = Int64(instant.rounded(.down))
        var micros = Int64(((instant - Double(seconds)) * 1_000_000).rounded())
        if micros >= 1_000_000 { seconds += 1; micros -= 1_000_000 }
        var days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secs = seconds - days * 86_400
        // civil_from_days (H. Hinnant's algorithm)
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        var year = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        if month <= 2 { year += 1 }
        func two(_ v: Int64) { out.writeInteger(UInt8(48 + v / 10)); out.writeInteger(UInt8(48 + v % 10)) }
        out.writeString(String(year)); out.writeInteger(UInt8(45)); two(month); out.writeInteger(UInt8(45)); two(day)
        out.writeInteger(UInt8(32)); two(secs / 3600); out.writeInteger(UInt8(58)); two(secs / 60 % 60)
        out.writeInteger(UInt8(58)); two(secs % 60)
        if micros > 0 {
            out.writeInteger(UInt8(46))
            var divisor: Int64 = 100_000
            while divisor > 0 { out.writeInteger(UInt8(48 + micros / divisor % 10)); divisor /= 10 }
        }
        out.writeString("+00")
    }

    static func sanitised(_ text: String) -> String {
        text.contains(where: { $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\\" })
            ? text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\t", with: "\\t")
                .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
            : text
    }
}

/// ISO 8601 UTC text for messages.
func iso(_ date: Date) -> String {
    var out = ByteBuffer()
    CopyRowEncoder.writeEpoch(date, to: &out)
    let text = out.readString(length: out.readableBytes) ?? ""
    return text.replacingOccurrences(of: " ", with: "T").replacingOccurrences(of: "+00", with: "Z")
}

/// A JSON string literal.
func jsonString(_ text: String) -> String {
    let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
    return String(decoding: data, as: UTF8.self)
}
