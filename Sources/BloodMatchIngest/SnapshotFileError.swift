/// A problem that makes a whole inventory snapshot unusable: nothing from the file may be loaded.
///
/// Carries the file, the physical line (1-based, where the offending record starts) and the
/// column where they apply, plus the offending value already made safe for display, so a
/// dispatcher can find and fix the exact byte. `description` reads
/// `DC-SYD-01.csv:14: field expires_at: <message>`.
public struct SnapshotFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a stable code for logs, exit codes and tests.
    public enum Kind: String, Sendable, Hashable, CaseIterable, Codable {
        /// The CSV file has no bytes at all; never read as "the centre has no stock".
        case emptyFile
        /// The file starts with a UTF-16 or UTF-32 byte-order mark; only UTF-8 is accepted.
        case utf16Encoding
        /// The file starts like a gzip or zip archive (including .xlsx); compressed feeds are not accepted.
        case compressedFile
        /// A byte sequence that is not valid UTF-8 (Windows-1252 text, overlong forms, surrogates).
        case invalidUTF8
        /// A NUL (0x00) byte, which PostgreSQL text columns cannot hold.
        case nulByte
        /// A carriage return not followed by a line feed outside a quoted field.
        case bareCarriageReturn
        /// An opening quote never closed before the end of the file.
        case unbalancedQuote
        /// A character other than a comma or line end right after a closing quote.
        case malformedQuotedField
        /// One record (header or row) is longer than `SnapshotLimits.maximumLineBytes`.
        case lineTooLong
        /// The file is larger than `SnapshotLimits.maximumFileBytes`.
        case fileTooLarge
        /// More data rows than `SnapshotLimits.maximumRows`.
        case rowCapExceeded
        /// No header line (for example a file holding only a byte-order mark).
        case missingHeader
        /// The header uses `;` or a tab between column names instead of `,`.
        case wrongDelimiter
        /// A header name differs from the expected one only by case or surrounding whitespace.
        case columnNameNotExact
        /// A header name that is not a column of the format.
        case unknownColumn
        /// A header name given twice.
        case duplicateColumn
        /// An expected column absent from the header.
        case missingColumn
        /// All columns present but not in the documented order.
        case columnOrder
        /// The control record is not valid JSON or breaks its schema.
        case controlRecordInvalid
        /// The control record's `as_of` is later than `now` plus the clock-skew tolerance.
        case asOfInFuture
        /// The SHA-256 of the bytes received differs from the control record's `sha256`:
        /// the file is truncated, half-written, or not the file the control record describes.
        case checksumMismatch
        /// The number of data rows differs from the control record's `row_count`.
        case rowCountMismatch
        /// The decoder was used after `finish()` or after an earlier error.
        case decoderClosed
        /// A FHIR Bundle snapshot that is not valid JSON, not an R5 Bundle of type collection or
        /// transaction, or whose `timestamp` is not the control record's `as_of`.
        case bundleInvalid
    }

    /// The stable code of the problem.
    public var kind: Kind
    /// The file the problem is in (the CSV, or the control record for control problems).
    public var file: String
    /// Physical line (1-based) where the offending record starts, when the problem has one.
    public var line: Int?
    /// The column or control-record field involved, when the problem has one.
    public var field: String?
    /// The offending value, escaped and truncated for display, when there is one.
    public var value: String?
    /// A sentence a dispatcher can act on.
    public var message: String

    /// Creates an error; `value` is expected to be display-safe already.
    public init(kind: Kind, file: String, line: Int? = nil, field: String? = nil, value: String? = nil, message: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.field = field
        self.value = value
        self.message = message
    }

    /// `file:line: field name: message [kind]`, omitting the parts that do not apply.
    public var description: String {
        locatedDescription(file: file, line: line, field: field, message: message, kind: kind.rawValue)
    }
}

/// `file:line: field name: message [kind]`, omitting the parts that do not apply: the one shape of
/// every ingest error, so a dispatcher reads site-list and snapshot errors alike.
func locatedDescription(file: String, line: Int?, field: String?, message: String, kind: String) -> String {
    var text = file
    if let line { text += ":\(line)" }
    text += ": "
    if let field { text += "field \(field): " }
    return text + message + " [\(kind)]"
}
