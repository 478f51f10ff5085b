/// The two flag characters `ff` that follow a DIN in ISBT 128 Data Structure 001; not part of the
/// 13-character DIN (ISBT 128 ST-001, Data Structure 001 and Table 3).
///
/// `DINFlag(code:)` and `DINFlag(value:)` classify any two digits, reserved values included;
/// `validated(…)` is the rule a DIN read with its flags must pass.
public enum DINFlag: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `00`: flag not used.
    case notUsed
    /// `01`–`04` containers 1–4 of a set, `15`–`19` containers 5–9; carries the container number.
    case container(Int)
    /// `05`: repeated demand-printed label.
    case repeatedLabel
    /// `06`: pilot tube label.
    case pilotTube
    /// `07`: test tube label.
    case testTube
    /// `08`: donor record label.
    case donorRecord
    /// `09`: NAT sample.
    case natSample
    /// `10`: bacterial-testing sample.
    case bacterialTestingSample
    /// `11`: match-with-unit label.
    case matchWithUnit
    /// `12`: affixed partial label.
    case affixedPartialLabel
    /// `13`: attached label.
    case attachedLabel
    /// `14`, `97`–`99`: reserved.
    case reserved(Int)
    /// `20`–`59`: local, defined by the facility (FIN); not to be interpreted elsewhere.
    case local(Int)
    /// `60`–`96`: type 3, 60 + the ISO 7064 Mod 37-2 check value (0–36) of the DIN.
    case checkValue(Int)

    /// Parses the two digits.
    public init(code: String) throws(ISBTError) {
        let scalars = Array(code.unicodeScalars)
        guard scalars.count == 2, scalars.allSatisfy({ ("0"..."9").contains($0) }),
              let value = Int(code)
        else { throw .badFlag(code) }
        self.init(value: value)
    }

    /// Classifies a flag value 0…99.
    public init(value: Int) {
        switch value {
        case 0: self = .notUsed
        case 1...4: self = .container(value)
        case 5: self = .repeatedLabel
        case 6: self = .pilotTube
        case 7: self = .testTube
        case 8: self = .donorRecord
        case 9: self = .natSample
        case 10: self = .bacterialTestingSample
        case 11: self = .matchWithUnit
        case 12: self = .affixedPartialLabel
        case 13: self = .attachedLabel
        case 15...19: self = .container(value - 10)
        case 20...59: self = .local(value)
        case 60...96: self = .checkValue(value - 60)
        default: self = .reserved(value)
        }
    }

    /// The numeric flag value 0…99.
    public var value: Int {
        switch self {
        case .notUsed: 0
        case .container(let n): n <= 4 ? n : n + 10
        case .repeatedLabel: 5
        case .pilotTube: 6
        case .testTube: 7
        case .donorRecord: 8
        case .natSample: 9
        case .bacterialTestingSample: 10
        case .matchWithUnit: 11
        case .affixedPartialLabel: 12
        case .attachedLabel: 13
        case .reserved(let v), .local(let v): v
        case .checkValue(let c): 60 + c
        }
    }

    /// The two digits, e.g. `70`.
    public var code: String { value < 10 ? "0\(value)" : "\(value)" }

    /// The type-3 flag of a DIN: 60 + its check value (`G123417654321` → 70).
    public static func type3(for din: DonationNumber) -> DINFlag { .checkValue(din.type3Flag - 60) }

    /// English meaning.
    public var description: String {
        switch self {
        case .notUsed: "00 not used"
        case .container(let n): "\(code) container \(n) of a set"
        case .repeatedLabel: "05 repeated demand-printed label"
        case .pilotTube: "06 pilot tube"
        case .testTube: "07 test tube"
        case .donorRecord: "08 donor record"
        case .natSample: "09 NAT sample"
        case .bacterialTestingSample: "10 bacterial-testing sample"
        case .matchWithUnit: "11 match with unit"
        case .affixedPartialLabel: "12 affixed partial label"
        case .attachedLabel: "13 attached label"
        case .reserved(let v): "\(code) reserved (\(v))"
        case .local(let v): "\(code) local use (\(v)), facility-defined"
        case .checkValue(let c): "\(code) type 3: check value \(c)"
        }
    }
}

extension DINFlag {
    /// Validates the two flag characters that follow `din` in the barcode form `=` + DIN + `ff`.
    ///
    /// ST-001 Table 3: the flag is two digits; 14 and 97–99 are reserved for future assignment and
    /// refused; a type-3 flag (60–96) must be 60 plus the DIN's ISO 7064 Mod 37-2 check value.
    /// Every other value (00 not used, containers, labels and samples, 20–59 local) is accepted
    /// without being interpreted further. `position` is where the first flag character stands in
    /// `text` (1-based), for the error.
    static func validated(_ first: Unicode.Scalar, _ second: Unicode.Scalar, following din: String, in text: String,
                          position: Int) throws(DonationNumber.ParseError) -> DINFlag {
        guard ("0"..."9").contains(first) else { throw .invalidCharacter(text, position: position, part: .flags) }
        guard ("0"..."9").contains(second) else { throw .invalidCharacter(text, position: position + 1, part: .flags) }
        let flag = DINFlag(value: Int(first.value - 48) * 10 + Int(second.value - 48))
        switch flag {
        case .reserved(let value):
            throw .reservedFlag(text, flag: value)
        case .checkValue(let found):
            let expected = DonationNumber.checkValue(of: din)
            guard found == expected else { throw .flagCheckMismatch(text, flag: 60 + found, expected: 60 + expected) }
        default:
            break
        }
        return flag
    }
}

/// ISBT 128 Data Structure 001 `=αppppyynnnnnnff`: the DIN with its flag characters.
public struct DonationIdentificationDataStructure: Sendable, Hashable, Codable {
    /// The 13-character DIN.
    public var din: DonationNumber
    /// The flag.
    public var flag: DINFlag

    /// Parses the 16-character structure including the `=` data identifier, with the same rules
    /// as `DonationNumber(parsing:)` for that form (flags by `DINFlag.validated(…)`): reserved
    /// flags are refused and a type-3 flag must match the DIN (ISBT 128 ST-001 Table 3).
    public init(parsing text: String) throws(ISBTError) {
        let length = text.unicodeScalars.count
        guard length == 16 else { throw .wrongLength(text, expected: 16) }
        guard text.unicodeScalars.first == "=" else { throw .wrongDataIdentifier(text, expected: "=") }
        let parsed: (din: String, flag: DINFlag?)
        do {
            parsed = try DonationNumber.parseForm(text)
        } catch {
            throw .donationNumber(error)
        }
        guard let flag = parsed.flag else { throw .wrongLength(text, expected: 16) }
        self.din = DonationNumber(validated: parsed.din)
        self.flag = flag
    }
}
