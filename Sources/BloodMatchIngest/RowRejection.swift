/// Why one data row was refused while the rest of the file may still load.
public enum RowRejectionReason: String, Sendable, Hashable, CaseIterable, Codable {
    /// The line is empty.
    case blankLine
    /// Not exactly ten fields.
    case wrongFieldCount
    /// DIN not exactly 13 characters (a 14th keyboard check character is not accepted in feeds).
    case dinWrongLength
    /// DIN carries its keyboard check character; feeds carry the 13-character DIN only.
    case dinCheckCharacterPresent
    /// DIN carries a keyboard check character that is also wrong (ISO 7064 Mod 37-2).
    case dinBadCheckCharacter
    /// DIN holds an invisible or non-ASCII character (NBSP, zero-width space, …).
    case dinInvisibleCharacter
    /// DIN holds lower-case letters; the ISBT 128 alphabet is upper case.
    case dinLowercase
    /// DIN holds a character outside the ISBT 128 alphabet for its position.
    case dinInvalidCharacter
    /// The same unit, DIN and product code, appears earlier in this snapshot. One donation's
    /// components, and the divisions of a split product, share a DIN and are different units.
    case duplicateUnit
    /// Product code is not shaped like an ISBT 128 product code (`E0382V00`).
    case productCodeShape
    /// Product code's first letter is not a blood-component or national code letter (A–F).
    case productCodeNotBloodComponent
    /// Component not one of `RBC PLT PLASMA CRYO WB`.
    case unknownComponent
    /// ABO group not one of `O A B AB`.
    case unknownABO
    /// RhD not one of `POS NEG`.
    case unknownRhD
    /// Timestamp not in the accepted ISO 8601 form.
    case timestampFormat
    /// Timestamp without a `Z` or `±hh:mm` offset.
    case timestampMissingZone
    /// Timestamp names a date or time that does not exist (2025-02-29, 24:00, minute 60).
    case timestampImpossible
    /// Expiry is not after collection.
    case expiryNotAfterCollection
    /// Expiry minus collection exceeds the component's plausible shelf life.
    case shelfLifeExceeded
    /// No shelf-life bound is configured for the component.
    case noShelfLifeBound
    /// Collected after the snapshot's `as_of` plus the clock-skew tolerance.
    case collectedAfterAsOf
    /// Expired longer ago than `SnapshotLimits.maximumExpiredAge` before `as_of`.
    case expiredLongAgo
    /// `site_id` differs from the control record's centre.
    case centreMismatch
    /// Status not one of `AVAILABLE RESERVED QUARANTINED`.
    case unknownStatus
    /// An attribute that is not a `UnitAttribute` raw value.
    case unknownAttribute
    /// An empty entry between `;` separators.
    case emptyAttribute
    /// The same attribute listed twice.
    case duplicateAttribute
    /// A FHIR Bundle entry that is not shaped as an R5 BiologicallyDerivedProduct entry (not an
    /// object, another resource type, an element R5 does not have, a modifier extension).
    case fhirStructure
    /// A FHIR element the stock model needs is absent (DIN, product code, division, type of
    /// collection, component, collection time, expiry, status).
    case fhirMissing
    /// Two FHIR elements of one entry disagree (an ABO/RhD code for directed use on a volunteer
    /// product code, two divisions, two statuses).
    case fhirContradiction
    /// No ABO/RhD group to match on: no ABO/RhD property, RhD not specified, or a special message
    /// in its place. The group is never guessed; the unit is not loaded as stock.
    case groupUnknown
}

/// One refused data row: where it is, which field, the offending value and why.
///
/// `description` reads `DC-SYD-01.csv:14: field din: <message> [dinBadCheckCharacter]`.
public struct RowRejection: Sendable, Hashable, CustomStringConvertible {
    /// The CSV file name.
    public var file: String
    /// Physical line (1-based) where the row starts.
    public var line: Int
    /// The column at fault, or nil for whole-row problems (field count, blank line).
    public var field: String?
    /// The offending value, escaped (`\u{00A0}`) and truncated for display.
    public var value: String
    /// Stable reason code.
    public var reason: RowRejectionReason
    /// A sentence a dispatcher can act on.
    public var message: String

    /// Creates a rejection; `value` is expected to be display-safe already.
    public init(file: String, line: Int, field: String?, value: String, reason: RowRejectionReason, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.value = value
        self.reason = reason
        self.message = message
    }

    /// `file:line: field name: message [reason]`.
    public var description: String {
        var text = "\(file):\(line): "
        if let field { text += "field \(field): " }
        return text + message + " [\(reason.rawValue)]"
    }
}
