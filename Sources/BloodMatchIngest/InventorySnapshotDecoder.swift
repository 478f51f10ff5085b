import BloodMatchCore
import Crypto
import Foundation

/// One data row of a snapshot after validation.
public enum DecodedRow: Sendable, Hashable {
    /// A valid unit and the physical line its row starts on.
    case accepted(unit: InventoryUnit, line: Int)
    /// A refused row and why.
    case rejected(RowRejection)
}

/// The outcome of a snapshot whose bytes, row count and checksum all matched its control record.
public struct SnapshotSummary: Sendable, Hashable {
    /// The CSV file name.
    public var fileName: String
    /// The centre named by the control record.
    public var centre: String
    /// The control record's `as_of`.
    public var asOf: Date
    /// Bytes read, including any byte-order mark.
    public var byteCount: Int
    /// Lower-case hex SHA-256 of the bytes read (equal to the control record's).
    public var sha256: String
    /// Data rows seen (accepted plus rejected).
    public var rowCount: Int
    /// Rows that became units.
    public var acceptedCount: Int
    /// Rows refused.
    public var rejectedCount: Int
    /// Accepted units whose expiry is at or before `as_of`: stored, never offered.
    public var expiredAtAsOfCount: Int
    /// The first `SnapshotLimits.maximumRetainedRejections` rejections, in file order.
    public var retainedRejections: [RowRejection]
    /// Whether a UTF-8 byte-order mark was found and skipped.
    public var byteOrderMarkSkipped: Bool

    /// Creates a summary (the decoder builds these; tests and stores may too).
    public init(
        fileName: String, centre: String, asOf: Date, byteCount: Int, sha256: String, rowCount: Int,
        acceptedCount: Int, rejectedCount: Int, expiredAtAsOfCount: Int, retainedRejections: [RowRejection],
        byteOrderMarkSkipped: Bool
    ) {
        self.fileName = fileName
        self.centre = centre
        self.asOf = asOf
        self.byteCount = byteCount
        self.sha256 = sha256
        self.rowCount = rowCount
        self.acceptedCount = acceptedCount
        self.rejectedCount = rejectedCount
        self.expiredAtAsOfCount = expiredAtAsOfCount
        self.retainedRejections = retainedRejections
        self.byteOrderMarkSkipped = byteOrderMarkSkipped
    }
}

/// The end of a snapshot: the rows of a last line without a line end, and the summary.
public struct SnapshotCompletion: Sendable, Hashable {
    /// Rows decoded by `finish()` (the last row when the file has no final line end).
    public var rows: [DecodedRow]
    /// Counts and checks for the whole file.
    public var summary: SnapshotSummary
}

/// Decodes and validates one distribution centre's inventory snapshot CSV, chunk by chunk.
///
/// Feed the file's bytes in chunks of any size (1 MiB suits) to `consume`, which returns the rows
/// completed so far, then call `finish`, which verifies the SHA-256 and row count against the
/// control record. Rows are provisional until `finish` returns: a checksum or count mismatch means
/// the file is truncated or not the one described, and nothing from it may be loaded. Any
/// `SnapshotFileError` ends decoding; later calls throw `decoderClosed`.
///
/// Accepted normalisations: a leading UTF-8 byte-order mark is skipped; LF and CRLF line ends
/// (mixed too); a last row without a line end; RFC 4180 quoting. Everything else is refused, never
/// repaired: a bare CR, UTF-16, invalid UTF-8 and NUL bytes end the file; field problems reject
/// the row (see `RowRejectionReason`). Lines are physical lines, counted from 1 at the header.
public struct InventorySnapshotDecoder: Sendable {
    /// The header, exactly, in this order.
    public static let columns = [
        "din", "product_code", "component", "abo", "rhd", "collected_at", "expires_at", "site_id", "status", "attributes",
    ]

    private enum Phase: Sendable, Hashable {
        case unopened, encodingUndecided, header, rows, finished
        case failed(SnapshotFileError)
    }

    /// A unit's identity, its 13 DIN bytes and 8 product-code bytes, packed into three words for a
    /// cheap duplicate check: one donation's components, and the divisions of a split product,
    /// share a DIN and differ by product code (ISBT 128 ST-001; Data/SOURCES.md).
    private struct UnitKey: Hashable, Sendable {
        var dinHigh: UInt64
        var dinLow: UInt64
        var productCode: UInt64
    }

    private let fileName: String
    private let controlFileName: String
    private let control: SnapshotControl
    private let now: Date
    private let limits: SnapshotLimits
    private let shelfLife: ShelfLifeBounds
    private let centreBytes: [UInt8]
    private let asOfSeconds: Double
    private let latestCollectionSeconds: Double
    private let earliestExpirySeconds: Double
    private let shelfLifeSeconds: [Double?]

    private var phase: Phase = .unopened
    private var hasher = SHA256()
    private var byteCount = 0
    private var carry: [UInt8] = []
    private var spans: [CSVFieldSpan] = []
    private var nextLine = 1
    private var rowCount = 0
    private var acceptedCount = 0
    private var rejectedCount = 0
    private var expiredAtAsOfCount = 0
    private var retainedRejections: [RowRejection] = []
    private var byteOrderMarkSkipped = false
    private var firstLineOfUnit: [UnitKey: Int] = [:]

    /// Creates a decoder for the CSV named `fileName` described by `control`.
    ///
    /// `now` is the importer's clock, used only to refuse an `as_of` in the future; `shelfLife`
    /// bounds expiry minus collection per component.
    public init(
        fileName: String, control: SnapshotControl, now: Date, limits: SnapshotLimits = .standard,
        shelfLife: ShelfLifeBounds = .standard
    ) {
        self.fileName = fileName
        self.controlFileName = SnapshotControl.controlFileName(forSnapshot: fileName)
        self.control = control
        self.now = now
        self.limits = limits
        self.shelfLife = shelfLife
        self.centreBytes = Array(control.centre.utf8)
        self.asOfSeconds = control.asOf.timeIntervalSince1970
        self.latestCollectionSeconds = asOfSeconds + limits.clockSkewTolerance
        self.earliestExpirySeconds = asOfSeconds - limits.maximumExpiredAge
        self.shelfLifeSeconds = Component.allCases.sorted().map { shelfLife.maximumSeconds(for: $0) }
        self.spans.reserveCapacity(16)
        self.firstLineOfUnit.reserveCapacity(min(max(control.rowCount, 0), limits.maximumRows, 2_000_000))
    }

    /// Bytes held for a record not yet complete; never more than one chunk plus the line limit.
    public var bufferedByteCount: Int { carry.count }

    /// Decodes the rows completed by `chunk`. Throws for a problem that refuses the whole file.
    ///
    /// Contiguous collections (`[UInt8]`, `ArraySlice`, `Data`) are read in place; others are
    /// copied once.
    @inlinable
    public mutating func consume(_ chunk: some Collection<UInt8>) throws(SnapshotFileError) -> [DecodedRow] {
        let direct: Result<[DecodedRow], SnapshotFileError>? = chunk.withContiguousStorageIfAvailable { bytes in
            Result { () throws(SnapshotFileError) -> [DecodedRow] in try self.consume(bytes) }
        }
        if let direct { return try direct.get() }
        let copy = Array(chunk)
        return try copy.withUnsafeBufferPointer { (bytes) throws(SnapshotFileError) -> [DecodedRow] in try self.consume(bytes) }
    }

    /// Decodes the rows completed by the bytes at `chunk`; the bytes are copied where needed,
    /// so the memory may be reused after the call.
    public mutating func consume(_ chunk: UnsafeBufferPointer<UInt8>) throws(SnapshotFileError) -> [DecodedRow] {
        try ensureOpen()
        do {
            return try consumeChecked(chunk)
        } catch {
            phase = .failed(error)
            throw error
        }
    }

    /// Ends the file: decodes a last row without a line end, then checks the checksum, the header
    /// and the row count against the control record.
    public mutating func finish() throws(SnapshotFileError) -> SnapshotCompletion {
        try ensureOpen()
        do {
            let completion = try finishChecked()
            phase = .finished
            return completion
        } catch {
            phase = .failed(error)
            throw error
        }
    }

    /// Decodes a whole snapshot held in memory (small files and tests); same checks as streaming.
    public static func decode(
        _ bytes: some Collection<UInt8>, fileName: String, control: SnapshotControl, now: Date,
        limits: SnapshotLimits = .standard, shelfLife: ShelfLifeBounds = .standard
    ) throws(SnapshotFileError) -> SnapshotCompletion {
        var decoder = InventorySnapshotDecoder(fileName: fileName, control: control, now: now, limits: limits, shelfLife: shelfLife)
        var rows = try decoder.consume(bytes)
        var completion = try decoder.finish()
        rows.append(contentsOf: completion.rows)
        completion.rows = rows
        return completion
    }

    // MARK: - Whole-file steps

    private func ensureOpen() throws(SnapshotFileError) {
        switch phase {
        case .failed(let error):
            throw SnapshotFileError(
                kind: .decoderClosed, file: fileName, message: "decoding already failed: \(error.description)")
        case .finished:
            throw SnapshotFileError(kind: .decoderClosed, file: fileName, message: "decoding already finished")
        default:
            return
        }
    }

    private mutating func openIfNeeded() throws(SnapshotFileError) {
        guard phase == .unopened else { return }
        let latestAsOf = now.timeIntervalSince1970 + limits.clockSkewTolerance
        if asOfSeconds > latestAsOf {
            throw SnapshotFileError(
                kind: .asOfInFuture, file: controlFileName, field: "as_of", value: "\(control.asOf)",
                message: "as_of is \(Int(asOfSeconds - now.timeIntervalSince1970)) s after the importer's clock; "
                    + "at most \(Int(limits.clockSkewTolerance)) s of clock skew is tolerated")
        }
        if control.rowCount > limits.maximumRows {
            throw SnapshotFileError(
                kind: .rowCapExceeded, file: controlFileName, field: "row_count", value: String(control.rowCount),
                message: "row_count \(control.rowCount) exceeds the limit of \(limits.maximumRows) rows")
        }
        phase = .encodingUndecided
    }

    private mutating func consumeChecked(_ chunk: UnsafeBufferPointer<UInt8>) throws(SnapshotFileError) -> [DecodedRow] {
        try openIfNeeded()
        byteCount += chunk.count
        if byteCount > limits.maximumFileBytes {
            throw SnapshotFileError(
                kind: .fileTooLarge, file: fileName,
                message: "file is larger than the limit of \(limits.maximumFileBytes) bytes")
        }
        hasher.update(bufferPointer: UnsafeRawBufferPointer(chunk))
        var buffer = carry
        carry = []
        buffer.append(contentsOf: chunk)
        var rows: [DecodedRow] = []
        rows.reserveCapacity(buffer.count / 64)
        let used = try process(buffer, isFinal: false, into: &rows)
        buffer.removeSubrange(0..<used)
        carry = buffer
        return rows
    }

    private mutating func finishChecked() throws(SnapshotFileError) -> SnapshotCompletion {
        try openIfNeeded()
        if byteCount == 0 {
            throw SnapshotFileError(
                kind: .emptyFile, file: fileName,
                message: "the file is empty (0 bytes); an empty stock is a header line plus a control record with empty_stock: true")
        }
        let digest = hasher.finalize().map { DisplayText.hex(UInt32($0), width: 2) }.joined().lowercased()
        if digest != control.sha256 {
            throw SnapshotFileError(
                kind: .checksumMismatch, file: fileName, value: digest,
                message: "SHA-256 of the \(byteCount) bytes received is \(digest) but the control record says \(control.sha256); "
                    + "the file is truncated, still being written, or not the file the control record describes "
                    + "(\(rowCount) complete rows read, control says \(control.rowCount))")
        }
        var rows: [DecodedRow] = []
        let buffer = carry
        carry = []
        _ = try process(buffer, isFinal: true, into: &rows)
        if phase == .encodingUndecided || phase == .header {
            throw SnapshotFileError(kind: .missingHeader, file: fileName, line: 1, message: "the file has no header line")
        }
        if rowCount != control.rowCount {
            throw SnapshotFileError(
                kind: .rowCountMismatch, file: fileName, value: String(rowCount),
                message: "the file holds \(rowCount) data rows but the control record's row_count is \(control.rowCount)")
        }
        let summary = SnapshotSummary(
            fileName: fileName, centre: control.centre, asOf: control.asOf, byteCount: byteCount, sha256: digest,
            rowCount: rowCount, acceptedCount: acceptedCount, rejectedCount: rejectedCount,
            expiredAtAsOfCount: expiredAtAsOfCount, retainedRejections: retainedRejections,
            byteOrderMarkSkipped: byteOrderMarkSkipped)
        return SnapshotCompletion(rows: rows, summary: summary)
    }

    /// Decodes every complete record in `buffer`; returns how many bytes were used.
    private mutating func process(_ buffer: [UInt8], isFinal: Bool, into rows: inout [DecodedRow]) throws(SnapshotFileError) -> Int {
        try buffer.withUnsafeBufferPointer { (bytes) throws(SnapshotFileError) -> Int in
            var position = 0
            if phase == .encodingUndecided {
                guard let start = try decideEncoding(bytes, isFinal: isFinal) else { return 0 }
                position = start
            }
            while position < bytes.count {
                let outcome = CSVRecordScanner.scan(bytes, from: position, isFinal: isFinal, spans: &spans)
                switch outcome {
                case .record(let next, let length, let lineEnds, let unusualBytes):
                    if length > limits.maximumLineBytes { throw lineTooLong(openQuote: nil) }
                    try handleRecord(bytes, unusualBytes: unusualBytes, into: &rows)
                    nextLine += 1 + lineEnds
                    position = next
                case .incomplete(let openQuote):
                    if bytes.count - position > limits.maximumLineBytes + 1 { throw lineTooLong(openQuote: openQuote) }
                    return position
                case .bareCarriageReturn(let field, let lineOffset):
                    throw SnapshotFileError(
                        kind: .bareCarriageReturn, file: fileName, line: nextLine + lineOffset, field: columnName(field),
                        message: "carriage return (0x0D) not followed by a line feed; line ends must be LF or CRLF")
                case .characterAfterClosingQuote(let field, let lineOffset, let byte):
                    throw SnapshotFileError(
                        kind: .malformedQuotedField, file: fileName, line: nextLine + lineOffset, field: columnName(field),
                        value: DisplayText.make([byte]),
                        message: "character '\(DisplayText.make([byte]))' after a closing quote; a quoted field must end at ',' or the line end (write a quote inside quotes as \"\")")
                case .unterminatedQuote(let field, let lineOffset):
                    throw SnapshotFileError(
                        kind: .unbalancedQuote, file: fileName, line: nextLine + lineOffset, field: columnName(field),
                        message: "a quote opened here is never closed before the end of the file")
                }
            }
            return position
        }
    }

    /// Refuses UTF-16/UTF-32 and skips a UTF-8 byte-order mark; nil when more bytes are needed.
    private mutating func decideEncoding(_ bytes: UnsafeBufferPointer<UInt8>, isFinal: Bool) throws(SnapshotFileError) -> Int? {
        if bytes.count < 4 && !isFinal { return nil }
        func starts(_ prefix: [UInt8]) -> Bool { bytes.count >= prefix.count && zip(bytes, prefix).allSatisfy { $0 == $1 } }
        let wideEncoding: String? =
            if starts([0xFF, 0xFE]) || starts([0xFE, 0xFF]) { "a UTF-16 byte-order mark (\(DisplayText.hex(UInt32(bytes[0]), width: 2)) \(DisplayText.hex(UInt32(bytes[1]), width: 2)))" }
            else if starts([0x00, 0x00, 0xFE, 0xFF]) { "a UTF-32 byte-order mark" }
            else if bytes.count >= 2 && bytes[0] < 0x80 && bytes[0] != 0 && bytes[1] == 0 { "UTF-16LE text without a byte-order mark" }
            else if bytes.count >= 2 && bytes[0] == 0 && bytes[1] != 0 && bytes[1] < 0x80 { "UTF-16BE text without a byte-order mark" }
            else { nil }
        if let wideEncoding {
            throw SnapshotFileError(
                kind: .utf16Encoding, file: fileName, line: 1,
                message: "the file starts with \(wideEncoding); save it as UTF-8 (in Excel: CSV UTF-8)")
        }
        if starts([0x1F, 0x8B]) || starts([0x50, 0x4B, 0x03, 0x04]) {
            throw SnapshotFileError(
                kind: .compressedFile, file: fileName, line: 1,
                message: "the file starts like a gzip or zip archive (or an .xlsx workbook); send the plain UTF-8 CSV")
        }
        phase = .header
        if starts([0xEF, 0xBB, 0xBF]) {
            byteOrderMarkSkipped = true
            return 3
        }
        return 0
    }

    private func lineTooLong(openQuote: (field: Int, lineOffset: Int)?) -> SnapshotFileError {
        var message = "record is longer than the limit of \(limits.maximumLineBytes) bytes"
        if let openQuote {
            message += "; a quote opened in field \(columnName(openQuote.field) ?? "?") at line \(nextLine + openQuote.lineOffset) is still open, so the quoting is probably unbalanced"
        }
        return SnapshotFileError(kind: .lineTooLong, file: fileName, line: nextLine, message: message)
    }

    private func columnName(_ index: Int?) -> String? {
        guard let index, index >= 0 else { return nil }
        if phase == .header { return "header column \(index + 1)" }
        return index < Self.columns.count ? Self.columns[index] : "column \(index + 1)"
    }

    // MARK: - Records

    private mutating func handleRecord(_ bytes: UnsafeBufferPointer<UInt8>, unusualBytes: Bool, into rows: inout [DecodedRow]) throws(SnapshotFileError) {
        if unusualBytes { try checkEncoding(bytes) }
        if phase == .header {
            let names = spans.map { span in
                span.hasEscapedQuote ? CSVRecordScanner.unescaped(bytes, span) : Array(bytes[span.start..<span.end])
            }
            if let problem = CSVHeader.check(names, expected: Self.columns) {
                throw SnapshotFileError(
                    kind: problem.kind, file: fileName, line: nextLine, field: problem.field, value: problem.value,
                    message: problem.message)
            }
            phase = .rows
            return
        }
        rowCount += 1
        if rowCount > limits.maximumRows {
            throw SnapshotFileError(
                kind: .rowCapExceeded, file: fileName, line: nextLine,
                message: "more than \(limits.maximumRows) data rows")
        }
        let row: DecodedRow
        if spans.contains(where: \.hasEscapedQuote) {
            var copy: [UInt8] = []
            var copySpans: [CSVFieldSpan] = []
            for span in spans {
                let start = copy.count
                copy.append(contentsOf: span.hasEscapedQuote ? CSVRecordScanner.unescaped(bytes, span) : Array(bytes[span.start..<span.end]))
                copySpans.append(CSVFieldSpan(start: start, end: copy.count, hasEscapedQuote: false))
            }
            row = copy.withUnsafeBufferPointer { validateRow($0, spans: copySpans) }
        } else {
            row = validateRow(bytes, spans: spans)
        }
        if case .rejected(let rejection) = row {
            rejectedCount += 1
            if retainedRejections.count < limits.maximumRetainedRejections { retainedRejections.append(rejection) }
        } else {
            acceptedCount += 1
        }
        rows.append(row)
    }

    /// Refuses NUL bytes and invalid UTF-8, naming the line and the field.
    private func checkEncoding(_ bytes: UnsafeBufferPointer<UInt8>) throws(SnapshotFileError) {
        for (index, span) in spans.enumerated() {
            let field = UnsafeBufferPointer(rebasing: bytes[span.start..<span.end])
            if let nul = field.firstIndex(of: 0) {
                throw SnapshotFileError(
                    kind: .nulByte, file: fileName, line: nextLine, field: columnName(index), value: DisplayText.make(field),
                    message: "NUL byte (0x00) at character \(nul + 1) of the field; text fields cannot hold NUL")
            }
            if let bad = UTF8Validation.firstInvalidOffset(field) {
                let byte = DisplayText.hex(UInt32(field[bad]), width: 2)
                let hint = (0xC0...0xC1).contains(field[bad]) ? " (an overlong UTF-8 form)" : " (the file looks like Windows-1252 or Latin-1; export it as UTF-8)"
                throw SnapshotFileError(
                    kind: .invalidUTF8, file: fileName, line: nextLine, field: columnName(index), value: DisplayText.make(field),
                    message: "byte 0x\(byte) at byte \(bad + 1) of the field is not valid UTF-8\(hint)")
            }
        }
    }
}

// MARK: - Row validation

extension InventorySnapshotDecoder {
    private static let componentTable = PackedTokenTable(Component.allCases.map { ($0.rawValue, $0) })
    private static let aboTable = PackedTokenTable(ABO.allCases.map { ($0.rawValue, $0) })
    private static let rhdTable = PackedTokenTable(RhD.allCases.map { ($0.rawValue, $0) })
    private static let statusTable = PackedTokenTable(UnitStatus.allCases.map { ($0.rawValue, $0) })
    private static let attributeTable = PackedTokenTable(UnitAttribute.allCases.map { ($0.rawValue, AttributeSet($0)) })

    private mutating func validateRow(_ bytes: UnsafeBufferPointer<UInt8>, spans: [CSVFieldSpan]) -> DecodedRow {
        let line = nextLine
        func reject(_ column: Int?, _ value: UnsafeBufferPointer<UInt8>, _ reason: RowRejectionReason, _ message: String) -> DecodedRow {
            .rejected(RowRejection(
                file: fileName, line: line, field: column.map { Self.columns[$0] }, value: DisplayText.make(value),
                reason: reason, message: message))
        }
        guard spans.count == Self.columns.count else {
            let whole = UnsafeBufferPointer(rebasing: bytes[(spans.first?.start ?? 0)..<(spans.last?.end ?? 0)])
            if spans.count == 1 && spans[0].start == spans[0].end {
                return reject(nil, whole, .blankLine, "blank line; every line after the header must be a unit")
            }
            return reject(
                nil, whole, .wrongFieldCount,
                "row has \(spans.count) fields; expected \(Self.columns.count) (\(Self.columns.joined(separator: ",")))")
        }
        @inline(__always) func field(_ index: Int) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(rebasing: bytes[spans[index].start..<spans[index].end])
        }

        // din
        let dinBytes = field(0)
        if let problem = Self.dinProblem(dinBytes) {
            return reject(0, dinBytes, problem.reason, problem.message)
        }
        let din: DonationNumber
        do {
            din = try DonationNumber(parsing: String(decoding: dinBytes, as: UTF8.self))
        } catch {
            return reject(0, dinBytes, .dinInvalidCharacter, error.description)
        }

        // product_code
        let productBytes = field(1)
        if let problem = Self.productCodeProblem(productBytes) {
            return reject(1, productBytes, problem.reason, problem.message)
        }
        let key = Self.unitKey(din: dinBytes, productCode: productBytes)
        if let firstLine = firstLineOfUnit.updateValue(line, forKey: key) {
            firstLineOfUnit[key] = firstLine
            return reject(
                0, dinBytes, .duplicateUnit,
                "DIN \(DisplayText.make(dinBytes)) with product code \(DisplayText.make(productBytes)) already appears at line \(firstLine); each unit (DIN and product code) must appear once")
        }

        // component
        let componentBytes = field(2)
        guard let component = Self.componentTable.lookup(componentBytes) else {
            return reject(2, componentBytes, .unknownComponent, "component '\(DisplayText.make(componentBytes))' is not one of RBC, PLT, PLASMA, CRYO, WB")
        }

        // abo, rhd
        let aboBytes = field(3)
        guard let abo = Self.aboTable.lookup(aboBytes) else {
            return reject(3, aboBytes, .unknownABO, Self.aboMessage(aboBytes))
        }
        let rhdBytes = field(4)
        guard let rhd = Self.rhdTable.lookup(rhdBytes) else {
            return reject(4, rhdBytes, .unknownRhD, Self.rhdMessage(rhdBytes))
        }

        // collected_at, expires_at
        let collected: Double
        switch Self.parseTimestamp(field(5), column: 5) {
        case .success(let seconds): collected = seconds
        case .failure(let problem): return reject(5, field(5), problem.reason, problem.message)
        }
        let expires: Double
        switch Self.parseTimestamp(field(6), column: 6) {
        case .success(let seconds): expires = seconds
        case .failure(let problem): return reject(6, field(6), problem.reason, problem.message)
        }

        // site_id
        let siteBytes = field(7)
        if !Self.equal(siteBytes, centreBytes) {
            return reject(7, siteBytes, .centreMismatch, "site_id '\(DisplayText.make(siteBytes))' differs from the control record's centre '\(control.centre)'")
        }

        // status
        let statusBytes = field(8)
        guard let status = Self.statusTable.lookup(statusBytes) else {
            return reject(8, statusBytes, .unknownStatus, "status '\(DisplayText.make(statusBytes))' is not one of AVAILABLE, RESERVED, QUARANTINED")
        }

        // attributes
        let attributeBytes = field(9)
        var attributes = AttributeSet()
        if !attributeBytes.isEmpty {
            var start = 0
            while start <= attributeBytes.count {
                var end = start
                while end < attributeBytes.count && attributeBytes[end] != UInt8(ascii: ";") { end += 1 }
                let token = UnsafeBufferPointer(rebasing: attributeBytes[start..<end])
                if token.isEmpty {
                    return reject(9, attributeBytes, .emptyAttribute, "attributes has an empty entry between ';' separators")
                }
                guard let attribute = Self.attributeTable.lookup(token) else {
                    return reject(9, attributeBytes, .unknownAttribute, Self.attributeMessage(token))
                }
                if attributes.isSuperset(of: attribute) {
                    return reject(9, attributeBytes, .duplicateAttribute, "attribute \(DisplayText.make(token)) is listed twice")
                }
                attributes.formUnion(attribute)
                start = end + 1
            }
        }

        // Cross-field rules.
        if expires <= collected {
            return reject(6, field(6), .expiryNotAfterCollection, "expires_at \(DisplayText.make(field(6))) is not after collected_at \(DisplayText.make(field(5)))")
        }
        guard let bound = shelfLifeSeconds[component.index] else {
            return reject(2, componentBytes, .noShelfLifeBound, "no shelf-life bound is configured for \(component.rawValue)")
        }
        if expires - collected > bound {
            let days = Int(((expires - collected) / 86_400).rounded(.up))
            return reject(
                6, field(6), .shelfLifeExceeded,
                "expires_at is \(days) days after collected_at; \(component.rawValue) keeps at most \(Int(bound / 86_400)) days (sentinel or mistyped expiry?)")
        }
        if collected > latestCollectionSeconds {
            return reject(5, field(5), .collectedAfterAsOf, "collected_at \(DisplayText.make(field(5))) is after the snapshot's as_of plus \(Int(limits.clockSkewTolerance)) s")
        }
        if expires < earliestExpirySeconds {
            return reject(
                6, field(6), .expiredLongAgo,
                "expires_at \(DisplayText.make(field(6))) is more than \(Int(limits.maximumExpiredAge / 86_400)) days before as_of; an expired unit is stored only shortly after expiry")
        }
        if expires <= asOfSeconds { expiredAtAsOfCount += 1 }

        let unit = InventoryUnit(
            din: din, productCode: String(decoding: productBytes, as: UTF8.self), component: component,
            group: BloodGroup(abo, rhd), collectedAt: Date(timeIntervalSince1970: collected),
            expiresAt: Date(timeIntervalSince1970: expires), siteID: control.centre, status: status, attributes: attributes)
        return .accepted(unit: unit, line: line)
    }

    private struct FieldProblem: Error {
        var reason: RowRejectionReason
        var message: String
    }

    @inline(__always)
    private static func parseTimestamp(_ text: UnsafeBufferPointer<UInt8>, column: Int) -> Result<Double, FieldProblem> {
        do {
            return .success(try ISO8601Timestamp.secondsSince1970(text))
        } catch {
            let shown = DisplayText.make(text)
            switch error {
            case .format(let hint):
                return .failure(FieldProblem(reason: .timestampFormat, message: "\(columns[column]) '\(shown)' is not YYYY-MM-DDThh:mm:ss±hh:mm: \(hint)"))
            case .missingZone:
                return .failure(FieldProblem(reason: .timestampMissingZone, message: "\(columns[column]) '\(shown)' has no time-zone offset; add 'Z' or ±hh:mm"))
            case .impossible(let hint):
                return .failure(FieldProblem(reason: .timestampImpossible, message: "\(columns[column]) '\(shown)' does not exist: \(hint)"))
            }
        }
    }

    private static func equal(_ field: UnsafeBufferPointer<UInt8>, _ other: [UInt8]) -> Bool {
        guard field.count == other.count else { return false }
        for index in 0..<other.count where field[index] != other[index] { return false }
        return true
    }

    /// Expects a valid DIN (13 bytes) and product code (8 bytes).
    private static func unitKey(din: UnsafeBufferPointer<UInt8>, productCode: UnsafeBufferPointer<UInt8>) -> UnitKey {
        var high: UInt64 = 0
        var low: UInt64 = 0
        var code: UInt64 = 0
        for index in 0..<8 { high = high << 8 | UInt64(din[index]) }
        for index in 8..<13 { low = low << 8 | UInt64(din[index]) }
        for index in 0..<8 { code = code << 8 | UInt64(productCode[index]) }
        return UnitKey(dinHigh: high, dinLow: low, productCode: code)
    }

    /// Nil for a 13-character DIN `αppppyynnnnnn` (α A–N, P–Z or 1–9, then twelve digits; the
    /// same rule as `DonationNumber(parsing:)`); otherwise the precise reason.
    static func dinProblem(_ din: UnsafeBufferPointer<UInt8>) -> (reason: RowRejectionReason, message: String)? {
        @inline(__always) func isUpperOrDigit(_ byte: UInt8) -> Bool { (65...90).contains(byte) || (48...57).contains(byte) }
        if din.count == 13 && isUpperOrDigit(din[0]) && din[0] != UInt8(ascii: "O") && din[0] != UInt8(ascii: "0") {
            var valid = true
            for index in 1..<13 where din[index] &- 48 > 9 {
                valid = false
                break
            }
            if valid { return nil }
        }
        let shown = DisplayText.make(din)
        if din.isEmpty { return (.dinWrongLength, "DIN is empty") }
        var index = 0
        var character = 1
        var spaces: [Int] = []
        while index < din.count {
            let (scalar, length) = UTF8Validation.decodeScalar(din, at: index)
            let value = scalar?.value ?? 0xFFFD
            if value >= 0x7F || value < 0x20 {
                let name = DisplayText.invisibleName(value).map { " \($0)" } ?? ""
                return (.dinInvisibleCharacter, "DIN '\(shown)' holds U+\(DisplayText.hex(value, width: 4))\(name) at character \(character); DINs are 13 plain characters A–Z, 0–9")
            }
            if value == 0x20 { spaces.append(character) }
            index += max(length, 1)
            character += 1
        }
        if let first = spaces.first, din.count - spaces.count == 13 {
            return (.dinInvisibleCharacter, "DIN '\(shown)' holds U+0020 SPACE at character \(first); DINs are 13 plain characters A–Z, 0–9")
        }
        if din.count == 13 || din.count == 14, din.contains(where: { (97...122).contains($0) }),
           din.prefix(13).allSatisfy({ isUpperOrDigit($0) || (97...122).contains($0) }) {
            return (.dinLowercase, "DIN '\(shown)' has lower-case letters; ISBT 128 DINs are upper case")
        }
        if din.count == 14 {
            let first13 = String(decoding: din.prefix(13), as: UTF8.self)
            if (try? DonationNumber(parsing: first13)) != nil {
                let expected = DonationNumber.checkCharacter(of: first13)
                let found = Character(Unicode.Scalar(din[13]))
                if found == expected {
                    return (.dinCheckCharacterPresent, "DIN '\(shown)' has 14 characters; feeds carry the 13-character DIN without its keyboard check character '\(expected)'")
                }
                return (.dinBadCheckCharacter, "DIN '\(shown)' ends in check character '\(found)' but ISO 7064 Mod 37-2 gives '\(expected)' for \(first13); feeds carry the 13-character DIN only")
            }
        }
        if din.count != 13 {
            let barcode = din.count == 16 && din[0] == UInt8(ascii: "=")
            return (.dinWrongLength, "DIN '\(shown)' has \(din.count) characters; expected 13"
                        + (barcode ? "; drop the '=' data identifier and the two flag characters" : ""))
        }
        if din[0] == UInt8(ascii: "O") || din[0] == UInt8(ascii: "0") {
            return (.dinInvalidCharacter, "DIN '\(shown)' starts with '\(Character(Unicode.Scalar(din[0])))'; the first character is A–N, P–Z or 1–9")
        }
        do {
            _ = try DonationNumber(parsing: String(decoding: din, as: UTF8.self))
        } catch {
            return (.dinInvalidCharacter, error.description)
        }
        return (.dinInvalidCharacter, "DIN '\(shown)' is not a 13-character DIN")
    }

    /// Nil for an ISBT 128 product code shape `αoooo t ds` (e.g. `E0382V00`) with a blood-component
    /// or national first letter (A–F).
    static func productCodeProblem(_ code: UnsafeBufferPointer<UInt8>) -> (reason: RowRejectionReason, message: String)? {
        @inline(__always) func upper(_ byte: UInt8) -> Bool { (65...90).contains(byte) }
        @inline(__always) func digit(_ byte: UInt8) -> Bool { (48...57).contains(byte) }
        @inline(__always) func lower(_ byte: UInt8) -> Bool { (97...122).contains(byte) }
        let shapeOK = code.count == 8 && upper(code[0])
            && (1...6).allSatisfy { upper(code[$0]) || digit(code[$0]) }
            && (lower(code[7]) || digit(code[7]))
        guard shapeOK else {
            let shown = DisplayText.make(code)
            var message = "product code '\(shown)' is not an ISBT 128 product code (letter, 4 letters or digits, type-of-collection character, 2 division characters, e.g. E0382V00)"
            if code.count >= 2 && code[0] == UInt8(ascii: "=") && code[1] == UInt8(ascii: "<") {
                message += "; drop the '=<' data identifier"
            }
            return (.productCodeShape, message)
        }
        guard (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(code[0]) else {
            let shown = DisplayText.make(code)
            return (.productCodeNotBloodComponent, "product code '\(shown)' starts with '\(Character(Unicode.Scalar(code[0])))'; blood components use E or F (A–D for national codes)")
        }
        return nil
    }

    private static func aboMessage(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let shown = DisplayText.make(bytes)
        if bytes.isEmpty { return "abo is empty; expected O, A, B or AB" }
        if bytes.count == 1 && bytes[0] == UInt8(ascii: "0") { return "abo '0' is the digit zero; group O is the letter O" }
        let upper = String(decoding: bytes, as: UTF8.self).uppercased()
        if upper.contains("POS") || upper.contains("NEG") || upper.hasSuffix("+") || upper.hasSuffix("-") || upper.contains(" ") {
            return "abo '\(shown)' mixes ABO group and RhD or adds spaces; put O, A, B or AB in abo and POS or NEG in rhd"
        }
        if ["O", "A", "B", "AB"].contains(upper) { return "abo '\(shown)' must be upper case (O, A, B, AB)" }
        return "abo '\(shown)' is not one of O, A, B, AB"
    }

    private static func rhdMessage(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let shown = DisplayText.make(bytes)
        if bytes.isEmpty { return "rhd is empty; expected POS or NEG" }
        return "rhd '\(shown)' is not POS or NEG (write RhD positive as POS and negative as NEG)"
    }

    private static func attributeMessage(_ token: UnsafeBufferPointer<UInt8>) -> String {
        let shown = DisplayText.make(token)
        let text = String(decoding: token, as: UTF8.self)
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed != text, UnitAttribute(rawValue: trimmed) != nil {
            return "attribute '\(shown)' has surrounding spaces; separate attributes with ';' only"
        }
        if let match = UnitAttribute.allCases.first(where: { $0.rawValue.uppercased() == text.uppercased() }) {
            return "attribute '\(shown)' is not known; names are case-sensitive (did you mean \(match.rawValue)?)"
        }
        return "attribute '\(shown)' is not known (known: \(UnitAttribute.allCases.map(\.rawValue).joined(separator: ", ")))"
    }
}
