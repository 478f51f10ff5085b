/// An ISBT 128 Donation Identification Number (DIN): the 13 characters `αppppyynnnnnn`.
///
/// `αpppp` is the Facility Identification Number (FIN): α is A–N, P–Z or 1–9 (never the letter O
/// or the digit 0), `pppp` four digits. `yy` is two digits, the last two of the nominal year the
/// DIN was assigned; `nnnnnn` six digits, the sequence within that year for the FIN (ISBT 128
/// ST-001, Data Structure 001; sources listed in `Data/SOURCES.md`). The FIN is not looked up in
/// the ICCBBA Registered Facilities database and the year is not compared with any clock.
///
/// Three written forms are read, and each yields the same 13-character `value`:
/// - the DIN alone, 13 characters: `G123417654321`;
/// - the eye-readable form, the DIN and its keyboard check character, 14 characters:
///   `G123417654321A`. The check character is verified (ISO/IEC 7064 Mod 37-2, ST-001
///   Appendix A);
/// - the barcode data content of Data Structure 001, 16 characters: the data identifier `=`, the
///   DIN and two flag characters, `=G12341765432100` or `=G12341765432170`.
///
/// The flag characters are not part of the DIN's identity: both examples above parse to
/// `G123417654321`. They are validated on the way in, by `DINFlag.validated(…)` in
/// `DINFlag.swift` and the rules of ST-001 Table 3: two digits; a reserved value (14, 97–99) is
/// refused; a type-3 flag (60–96) must be 60 plus this DIN's check value, so `=G12341765432171` is
/// refused. Their meaning is kept only by `DonationIdentificationDataStructure`.
///
/// The DIN and two flag characters without the `=` (15 characters) are refused as ambiguous: it is
/// the data identifier that says a DIN and flags follow, and a 15-character text could as well be
/// the eye-readable form with one character too many. Nothing is repaired: lower case, spaces,
/// other lengths and `=` before anything but a DIN and two flag characters are refused.
public struct DonationNumber: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The 13 upper-case characters.
    public let value: String

    /// A part of the text a DIN is read from, named in errors.
    public enum Part: String, Sendable, Hashable, CaseIterable {
        /// The data identifier `=` of the 16-character barcode form (position 1).
        case dataIdentifier = "data identifier"
        /// The Facility Identification Number `αpppp` (DIN positions 1–5).
        case facility = "facility identification number"
        /// The nominal collection year `yy` (DIN positions 6–7).
        case year
        /// The sequence number `nnnnnn` (DIN positions 8–13).
        case sequence = "sequence number"
        /// The two flag characters `ff` of the barcode form (positions 15–16).
        case flags = "flag characters"
    }

    /// Why a string is not a valid DIN. Each case carries the text as given; positions are 1-based
    /// in that text, so with the `=` data identifier the DIN's first character is position 2.
    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// Not 13, 14 or (starting with `=`) 16 characters long; carries the length seen.
        case wrongLength(String, length: Int)
        /// A character not allowed at a position, in the part named.
        case invalidCharacter(String, position: Int, part: Part)
        /// The 14th character is not the ISO 7064 Mod 37-2 check character of the first 13.
        case badCheckCharacter(String, expected: Character, found: Character)
        /// Flag characters reserved for future assignment (14, 97–99; ST-001 Table 3).
        case reservedFlag(String, flag: Int)
        /// A type-3 flag (60–96) that is not 60 plus the DIN's check value; carries both.
        case flagCheckMismatch(String, flag: Int, expected: Int)

        /// The part of the text at fault, when the error is about one part.
        public var part: Part? {
            switch self {
            case .wrongLength, .badCheckCharacter: nil
            case .invalidCharacter(_, _, let part): part
            case .reservedFlag, .flagCheckMismatch: .flags
            }
        }

        public var description: String {
            switch self {
            case .wrongLength(let text, let length):
                "DIN '\(text)' has \(length) characters; expected 13 (the DIN), 14 (the DIN and its check character) or 16 ('=', the DIN and two flag characters)"
            case .invalidCharacter(let text, let position, let part):
                "DIN '\(text)' has \(Self.shown(text, position)) at position \(position), in the \(part.rawValue), "
                    + Self.rule(for: part, firstOfFacility: position == (text.unicodeScalars.first == "=" ? 2 : 1))
            case .badCheckCharacter(let text, let expected, let found):
                "DIN '\(text)' has check character '\(found)'; ISO 7064 Mod 37-2 gives '\(expected)'"
            case .reservedFlag(let text, let flag):
                "DIN '\(text)' has flag characters \(flag < 10 ? "0" : "")\(flag), reserved for future assignment (ST-001 Table 3)"
            case .flagCheckMismatch(let text, let flag, let expected):
                "DIN '\(text)' has type-3 flag \(flag); 60 plus the ISO 7064 Mod 37-2 check value of the DIN gives \(expected)"
            }
        }

        private static func shown(_ text: String, _ position: Int) -> String {
            let scalars = Array(text.unicodeScalars)
            guard position >= 1, position <= scalars.count else { return "nothing" }
            let scalar = scalars[position - 1]
            guard scalar.isASCII, scalar.value >= 0x21, scalar.value < 0x7F else {
                return "U+" + String(scalar.value, radix: 16, uppercase: true).leftPadded(to: 4)
            }
            return "'\(Character(scalar))'"
        }

        private static func rule(for part: Part, firstOfFacility: Bool) -> String {
            switch part {
            case .dataIdentifier: "which is '=' when there are 16 characters"
            case .facility where firstOfFacility: "which starts with A–N, P–Z or 1–9"
            case .facility: "which is A–N, P–Z or 1–9 then four digits"
            case .year: "which is two digits"
            case .sequence: "which is six digits"
            case .flags: "which are two digits"
            }
        }
    }

    /// Parses any of the three forms in the type's description and keeps the 13-character DIN.
    public init(parsing text: some StringProtocol) throws(ParseError) {
        try self.init(parsing: String(text))
    }

    /// `init(parsing:)` for a `String`: the same checks, without the generic conversion. Hot in
    /// index builds and feed decoding: a valid 13-character DIN is checked in one pass over its
    /// UTF-8 bytes and kept without a copy; the other forms and every error take the slow path.
    public init(parsing text: String) throws(ParseError) {
        var copy = text
        let plain: Bool = copy.withUTF8 { bytes in
            guard bytes.count == 13, DonationNumber.isFirstCharacter(bytes[0]) else { return false }
            for offset in 1..<13 where bytes[offset] &- 48 > 9 { return false }
            return true
        }
        if plain {
            self.value = copy
            return
        }
        self.value = try DonationNumber.parseForm(text).din
    }

    /// A DIN already checked by `parseForm(_:)`.
    init(validated value: String) {
        self.value = value
    }

    /// Reads `text` in any accepted form: the 13-character DIN and, for the 16-character form,
    /// its validated flag. Every refusal is decided here.
    static func parseForm(_ text: String) throws(ParseError) -> (din: String, flag: DINFlag?) {
        let scalars = Array(text.unicodeScalars)
        let start: Int
        if scalars.first == "=" {
            guard scalars.count == 16 else { throw .wrongLength(text, length: scalars.count) }
            start = 1
        } else if scalars.count == 16 {
            throw .invalidCharacter(text, position: 1, part: .dataIdentifier)
        } else {
            guard scalars.count == 13 || scalars.count == 14 else { throw .wrongLength(text, length: scalars.count) }
            start = 0
        }
        for offset in 0..<13 {
            let scalar = scalars[start + offset]
            let allowed = scalar.isASCII
                && (offset == 0 ? isFirstCharacter(UInt8(scalar.value)) : (48...57).contains(scalar.value))
            guard allowed else {
                let part: Part = offset < 5 ? .facility : offset < 7 ? .year : .sequence
                throw .invalidCharacter(text, position: start + offset + 1, part: part)
            }
        }
        let din = String(String.UnicodeScalarView(scalars[start..<start + 13]))
        if start == 1 {
            let flag = try DINFlag.validated(scalars[14], scalars[15], following: din, in: text, position: 15)
            return (din, flag)
        }
        if scalars.count == 14 {
            let expected = checkCharacter(of: din)
            let found = Character(scalars[13])
            guard found == expected else { throw .badCheckCharacter(text, expected: expected, found: found) }
        }
        return (din, nil)
    }

    /// The Facility Identification Number (first five characters).
    public var facility: Substring { value.prefix(5) }

    /// The ISO/IEC 7064 MOD 37-2 keyboard check character of this DIN (ST-001 Appendix A).
    public var checkCharacter: Character { DonationNumber.checkCharacter(of: value) }

    /// The type-3 flag value: 60 plus the check value (ST-001 Table 3; `G123417654321` → 70).
    public var type3Flag: Int { 60 + DonationNumber.checkValue(of: value) }

    public var description: String { value }

    public static func < (lhs: DonationNumber, rhs: DonationNumber) -> Bool {
        lhs.value.utf8.lexicographicallyPrecedes(rhs.value.utf8)
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try DonationNumber(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    /// The ISO 7064 Mod 37-2 check value 0…36 of a string over `0-9A-Z`.
    ///
    /// Recursive form p = ((p + v) · 2) mod 37, K = (38 − p) mod 37 with 0–9 → 0–9, A–Z → 10–35
    /// (ISBT 128 ST-001, Appendix A.3; G123417654321 → A). Any string is accepted, DIN or not, so
    /// published check-character examples can be computed as given.
    public static func checkValue(of text: String) -> Int {
        var p = 0
        for scalar in text.unicodeScalars {
            p = ((p + value(of: scalar)) * 2) % 37
        }
        return (38 - p) % 37
    }

    /// The check character for a 13-character DIN: `0-9`, `A-Z`, or `*` for 36.
    public static func checkCharacter(of text: String) -> Character {
        let v = checkValue(of: text)
        switch v {
        case 0...9: return Character(Unicode.Scalar(UInt8(48 + v)))
        case 10...35: return Character(Unicode.Scalar(UInt8(55 + v)))
        default: return "*"
        }
    }

    private static func value(of scalar: Unicode.Scalar) -> Int {
        switch scalar.value {
        case 48...57: Int(scalar.value) - 48
        case 65...90: Int(scalar.value) - 55
        default: 36
        }
    }

    /// α, the FIN's first character: A–N, P–Z or 1–9 (ST-001 Data Structure 001: `=` followed
    /// by one of these is a DIN, which keeps DS001 apart from `=%`, `=<`, `=>` and the rest).
    @inline(__always)
    private static func isFirstCharacter(_ byte: UInt8) -> Bool {
        (65...90).contains(byte) && byte != 79 || (49...57).contains(byte)
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
