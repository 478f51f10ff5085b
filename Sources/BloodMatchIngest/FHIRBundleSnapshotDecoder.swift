import BloodMatchCore
import Crypto
import Foundation

/// A centre's stock snapshot sent as a FHIR R5 `Bundle` (type `collection` or `transaction`) of
/// BiologicallyDerivedProduct, one entry per unit, with the same control record as a CSV snapshot
/// (`NAME.ctl.json`: centre, `as_of`, `row_count` = entries, SHA-256 of the Bundle's bytes).
///
/// Each entry is read into the CSV feed's ten fields and validated by `InventorySnapshotDecoder`
/// itself, so a Bundle passes exactly the rules, the rejection policy and the atomic swap of a
/// CSV. A rejection names the entry and the FHIR element (`entry[3].resource.expirationDate`);
/// its `line` is the entry's position counted from 1. Nothing is guessed: an entry without an
/// ABO/RhD property, component, collection time, status or two-character division is refused
/// with what is missing (Data/FHIR.md lists every element read and what is refused).
public enum FHIRBundleSnapshotDecoder {
    /// Whether a file name is a Bundle snapshot (`NAME.json`, not a control record `NAME.ctl.json`).
    public static func isBundle(_ fileName: String) -> Bool {
        fileName.hasSuffix(".json") && !fileName.hasSuffix(".ctl.json")
    }

    /// Decodes a whole Bundle held in memory. File-level problems (checksum, size, not a Bundle,
    /// entry count against `row_count`, a `timestamp` contradicting `as_of`) throw and refuse the
    /// whole file; entry-level problems are rejected rows.
    public static func decode(
        _ bytes: [UInt8], fileName: String, control: SnapshotControl, now: Date,
        limits: SnapshotLimits = .standard, shelfLife: ShelfLifeBounds = .standard
    ) throws(SnapshotFileError) -> SnapshotCompletion {
        func fail(_ kind: SnapshotFileError.Kind, _ field: String?, _ value: String?, _ message: String) -> SnapshotFileError {
            SnapshotFileError(kind: kind, file: fileName, field: field, value: value, message: message)
        }
        if bytes.count > min(limits.maximumFileBytes, limits.maximumBundleBytes) {
            throw fail(.fileTooLarge, nil, nil, "a FHIR Bundle snapshot is read whole and may hold at most \(min(limits.maximumFileBytes, limits.maximumBundleBytes)) bytes; send a larger stock as CSV or split it by centre")
        }
        if bytes.isEmpty {
            throw fail(.emptyFile, nil, nil, "the file is empty (0 bytes); an empty stock is a Bundle without entries and a control record with empty_stock: true")
        }
        let digest = SHA256.hash(data: bytes).map { DisplayText.hex(UInt32($0), width: 2) }.joined().lowercased()
        if digest != control.sha256 {
            throw fail(.checksumMismatch, nil, digest,
                       "SHA-256 of the \(bytes.count) bytes received is \(digest) but the control record says \(control.sha256); "
                           + "the file is truncated, still being written, or not the file the control record describes")
        }
        // The entries are read one at a time as the parser meets them (memory holds one entry, not
        // the whole tree), each written as one CSV line in order; a blank line stands for an entry
        // refused here, so that the CSV decoder's line L is entry L − 2.
        var csv = Array(InventorySnapshotDecoder.columns.joined(separator: ",").utf8)
        csv.append(10)
        var refused: [Int: RowRejection] = [:]
        var requests: [Int: FHIRStockEntry.Request] = [:]
        var count = 0
        let centre = control.centre, maximumRows = limits.maximumRows
        let document: JSONValue
        do {
            document = try StrictJSON(maximumDepth: 24).parse(bytes, streaming: "entry") { index, entry in
                count += 1
                guard count <= maximumRows else { return }
                let (fields, request) = FHIRStockEntry.fields(entry, index: index, centre: centre)
                if request != .absent { requests[index] = request }
                switch fields {
                case .success(let fields):
                    csv.append(contentsOf: fields.map(Self.quoted).joined(separator: ",").utf8)
                case .failure(let problem):
                    refused[index] = RowRejection(file: fileName, line: index + 1, field: problem.path, value: problem.value,
                                                  reason: problem.reason, message: problem.message)
                }
                csv.append(10)
            }
        } catch {
            throw fail(.bundleInvalid, error.path, nil, "not valid JSON: \(error.description)")
        }
        guard case .object(let bundle) = document else { throw fail(.bundleInvalid, nil, nil, "the document is not a JSON object") }
        guard case .string("Bundle") = bundle["resourceType"] else {
            throw fail(.bundleInvalid, "resourceType", bundle["resourceType"].map(Self.text), "resourceType must be Bundle")
        }
        let type = bundle["type"].flatMap(Self.string)
        guard type == "collection" || type == "transaction" else {
            throw fail(.bundleInvalid, "type", type, "a stock snapshot is a Bundle of type collection or transaction")
        }
        for key in bundle.keys.sorted() where !bundleElements.contains(key) {
            throw fail(.bundleInvalid, key, nil, "'\(key)' is not an element of an R5 Bundle")
        }
        if let timestamp = bundle["timestamp"] {
            guard let text = Self.string(timestamp), let seconds = try? ISO8601Timestamp.secondsSince1970(text) else {
                throw fail(.bundleInvalid, "timestamp", bundle["timestamp"].map(Self.text), "timestamp is not an instant with a time zone")
            }
            if seconds != control.asOf.timeIntervalSince1970 {
                throw fail(.bundleInvalid, "timestamp", text,
                           "timestamp differs from the control record's as_of (\(control.asOf.formatted(.iso8601))); the snapshot's instant must be one")
            }
        }
        if let entry = bundle["entry"], entry != .array([]) {
            throw fail(.bundleInvalid, "entry", Self.text(entry), "entry must be an array")
        }
        if count > limits.maximumRows {
            throw fail(.rowCapExceeded, "entry", String(count), "\(count) entries exceed the limit of \(limits.maximumRows) units")
        }
        if count == 0 && !control.emptyStock {
            throw fail(.rowCountMismatch, "entry", "0", "the Bundle has no entries; an empty stock is declared with empty_stock: true in the control record")
        }
        if count != control.rowCount {
            throw fail(.rowCountMismatch, "entry", String(count),
                       "the Bundle holds \(count) entries but the control record's row_count is \(control.rowCount)")
        }
        // Requests are judged now that the Bundle's type is known; an entry refused for its request
        // is refused even if its unit was read.
        let transaction = type == "transaction"
        var lateRefused = Set<Int>()
        for index in 0..<count where refused[index] == nil {
            if let problem = FHIRStockEntry.requestProblem(requests[index] ?? .absent, index: index, transaction: transaction) {
                refused[index] = RowRejection(file: fileName, line: index + 1, field: problem.path, value: problem.value,
                                              reason: problem.reason, message: problem.message)
                lateRefused.insert(index)
            }
        }
        let inner = SnapshotControl(format: control.format, centre: control.centre, asOf: control.asOf, rowCount: count,
                                    sha256: SnapshotControl.checksum(of: csv), emptyStock: control.emptyStock)
        var completion = try InventorySnapshotDecoder.decode(csv, fileName: fileName, control: inner, now: now, limits: limits, shelfLife: shelfLife)

        var late: [RowRejection] = []
        completion.rows = completion.rows.map { row in
            switch row {
            case .accepted(let unit, let line):
                guard lateRefused.contains(line - 2), let rejection = refused[line - 2] else { return .accepted(unit: unit, line: line - 1) }
                late.append(rejection)
                return .rejected(rejection)
            case .rejected(let rejection): return .rejected(refused[rejection.line - 2] ?? Self.located(rejection))
            }
        }
        var summary = completion.summary
        summary.byteCount = bytes.count
        summary.sha256 = digest
        summary.byteOrderMarkSkipped = false
        summary.acceptedCount -= late.count
        summary.rejectedCount += late.count
        summary.retainedRejections = Array((summary.retainedRejections.map { refused[$0.line - 2] ?? Self.located($0) } + late)
            .sorted { $0.line < $1.line }.prefix(limits.maximumRetainedRejections))
        completion.summary = summary
        return completion
    }

    /// A rejection of the CSV decoder, renamed to the entry and element it came from.
    static func located(_ rejection: RowRejection) -> RowRejection {
        let index = rejection.line - 2
        var out = rejection
        out.line = index + 1
        out.field = "entry[\(index)].resource" + (rejection.field.flatMap { elementOfColumn[$0] }.map { "." + $0 } ?? "")
        // "already appears at line L" names the earlier entry.
        if let range = out.message.range(of: #"at line \d+"#, options: .regularExpression),
           let line = Int(out.message[range].dropFirst("at line ".count)) {
            out.message.replaceSubrange(range, with: "at entry[\(line - 2)]")
        }
        return out
    }

    /// The FHIR element each CSV column is read from.
    static let elementOfColumn: [String: String] = [
        "din": "biologicalSourceEvent.value", "product_code": "productCode", "component": "property[component]",
        "abo": "property[ABORhD]", "rhd": "property[ABORhD]", "collected_at": "collection.collectedDateTime",
        "expires_at": "expirationDate", "site_id": "extension[distribution-centre]", "status": "productStatus",
        "attributes": "property[attribute]",
    ]

    /// R5 Bundle elements; anything else refuses the file.
    static let bundleElements: Set<String> = [
        "resourceType", "id", "meta", "implicitRules", "language", "identifier", "type", "timestamp", "total", "link",
        "entry", "signature", "issues",
    ]

    /// A field for the synthetic CSV line: quoted, quotes doubled (control characters never reach here).
    static func quoted(_ field: String) -> String { "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    static func string(_ value: JSONValue) -> String? {
        if case .string(let text) = value { return text }
        return nil
    }

    /// A short rendering of a value for an error.
    static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): DisplayText.make(Array(s.utf8))
        case .number(let n): n
        case .bool(let b): b ? "true" : "false"
        case .null: "null"
        default: value.kind
        }
    }
}
