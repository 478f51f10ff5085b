/// An ISBT 128 Donation Identification Number (DIN): the 13 characters `αppppyynnnnnn`.
///
/// `αpppp` is the Facility Identification Number, `yy` the nominal collection year and `nnnnnn`
/// the sequence within that year (ST-001 Data Structure 001; Data/SOURCES.md §S13). The two flag
/// characters and the keyboard check character are not part of the DIN.
public struct DonationNumber: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The 13 upper-case characters.
    public let value: String

    /// Why a string is not a valid DIN.
    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// Not 13 characters (or 14 with a check character) long; carries the length seen.
        case wrongLength(String, length: Int)
        /// A character outside the DIN alphabet at a position (1-based); carries the text.
        case invalidCharacter(String, position: Int)
        /// The 14th character is not the ISO 7064 Mod 37-2 check character of the first 13.
        case badCheckCharacter(String, expected: Character, found: Character)

        public var description: String {
            switch self {
            case .wrongLength(let text, let length):
                "DIN '\(text)' has \(length) characters; expected 13 (or 14 with the check character)"
            case .invalidCharacter(let text, let position):
                "DIN '\(text)' has an invalid character at position \(position) (allowed: first A–N, P–Z or 1–9, then A–Z, 0–9)"
            case .badCheckCharacter(let text, let expected, let found):
                "DIN '\(text)' has check character '\(found)'; ISO 7064 Mod 37-2 gives '\(expected)'"
            }
        }
    }

    /// Parses a 13-character DIN, or a 14-character DIN followed by its check character (which
    /// is then verified). Lower-case, spaces and any non-ASCII character are refused, not fixed.
    public init(parsing text: some StringProtocol) throws(ParseError) {
        try self.init(parsingString: String(text))
    }

    /// `init(parsing:)` for a `String`: the same checks, without the generic conversion (hot in
    /// index builds and feed decoding).
    public init(parsing text: String) throws(ParseError) {
        try self.init(parsingString: text)
    }

    private init(parsingString text: String) throws(ParseError) {
        var copy = text
        let fast: Bool = copy.withUTF8 { bytes in
            guard bytes.count == 13 else { return false }
            for offset in 0..<13 where !DonationNumber.isAllowed(Unicode.Scalar(bytes[offset]), atOffset: offset) { return false }
            return true
        }
        if fast {
            self.value = copy
            return
        }
        let scalars = Array(text.unicodeScalars)
        let shown = String(text)
        guard scalars.count == 13 || scalars.count == 14 else {
            throw .wrongLength(shown, length: scalars.count)
        }
        for (offset, scalar) in scalars.prefix(13).enumerated() {
            guard DonationNumber.isAllowed(scalar, atOffset: offset) else {
                throw .invalidCharacter(shown, position: offset + 1)
            }
        }
        let din = String(String.UnicodeScalarView(scalars.prefix(13)))
        if scalars.count == 14 {
            let expected = DonationNumber.checkCharacter(of: din)
            let found = Character(scalars[13])
            guard found == expected else { throw .badCheckCharacter(shown, expected: expected, found: found) }
        }
        self.value = din
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
    /// (ST-001 Appendix A.3; Data/SOURCES.md §S13; G123417654321 → A).
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

    /// First character: A–N, P–Z or 1–9 (ST-001 DS001: `=` followed by {A–N, P–Z, 1–9});
    /// the rest: A–Z or 0–9.
    private static func isAllowed(_ scalar: Unicode.Scalar, atOffset offset: Int) -> Bool {
        let v = scalar.value
        if offset == 0 {
            return (65...90).contains(v) && v != 79 || (49...57).contains(v)
        }
        return (65...90).contains(v) || (48...57).contains(v)
    }
}
