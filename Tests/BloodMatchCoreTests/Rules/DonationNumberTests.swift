@testable import BloodMatchCore
import Foundation
import Testing

/// The DIN parser reads exactly ISBT 128 ST-001 Data Structure 001: `αppppyynnnnnn`, the same with
/// its keyboard check character, or `=` + DIN + two flag characters; everything else is refused.
///
/// Source: ISBT 128 ST-001, Data Structure 001, Table 3 and Appendix A (G123417654321 → check
/// character A, type-3 flag 70). The other check characters were computed with the Appendix A
/// algorithm (1000026000001 → `*`, flag 96).
@Suite("Donation Identification Number")
struct DonationNumberTests {
    @Test("accepted forms give the 13-character DIN",
          arguments: [
              ("G123417654321", "G123417654321"), ("G123417654321A", "G123417654321"),
              ("=G12341765432100", "G123417654321"), ("=G12341765432170", "G123417654321"),
              ("=G12341765432101", "G123417654321"), ("=G12341765432119", "G123417654321"),
              ("=G12341765432120", "G123417654321"), ("=G12341765432159", "G123417654321"),
              ("A999921123456", "A999921123456"), ("A9999211234563", "A999921123456"), ("=A99992112345663", "A999921123456"),
              ("W000017000001", "W000017000001"), ("W000017000001W", "W000017000001"),
              ("1000026000001", "1000026000001"), ("1000026000001*", "1000026000001"), ("=100002600000196", "1000026000001"),
              ("9999999999999", "9999999999999"), ("N000000000000", "N000000000000"), ("P000025000001", "P000025000001"),
              ("Z999999999999", "Z999999999999"),
          ])
    func accepted(text: String, din: String) throws {
        #expect(try DonationNumber(parsing: text).value == din)
        #expect(try DonationNumber(parsing: Substring(text)).value == din)
    }

    @Test("refused text names the part and the 1-based position",
          arguments: [
              ("GARBAGEGARBAG", 2, DonationNumber.Part.facility),
              ("=A9O991712345600", 4, .facility),
              ("ABCDE27000069", 2, .facility),
              ("O123417654321", 1, .facility), ("0123417654321", 1, .facility), ("g123417654321", 1, .facility),
              ("=O12341765432100", 2, .facility), ("G12O417654321", 4, .facility), ("G1234176543219", 1 + 13, nil),
              ("G1234A7654321", 6, .year), ("G12341O654321", 7, .year), ("=G1234A765432100", 7, .year),
              ("G123417O54321", 8, .sequence), ("G12341765432X", 13, .sequence), ("G12341765432 ", 13, .sequence),
              ("G123417654321 ", 14, nil), ("G12341765432a", 13, .sequence), ("=G123417654321X0", 15, .flags),
              ("=G1234176543210O", 16, .flags), ("G12341765432170X", 1, .dataIdentifier),
              (" G123417654321", 1, .facility), ("G1234\u{00A0}7654321", 6, .year), ("G\u{FF11}23417654321", 2, .facility),
          ])
    func refusedCharacter(text: String, position: Int, part: DonationNumber.Part?) {
        let error = #expect(throws: DonationNumber.ParseError.self) { try DonationNumber(parsing: text) }
        guard let error else { return }
        if let part {
            #expect(error == .invalidCharacter(text, position: position, part: part))
            #expect(error.part == part)
            #expect(error.description.contains("position \(position), in the \(part.rawValue)"))
        } else {
            // Position 14 is the check character: a wrong one is reported as such.
            guard case .badCheckCharacter(text, _, _) = error else {
                Issue.record("\(text): \(error)")
                return
            }
        }
    }

    @Test("refused lengths, including the DIN and flags without '='",
          arguments: ["", "G12341765432", "G12341765432170", "=G123417654321A", "=G123417654321", "=G1234176543217",
                      "=G123417654321700", "==G12341765432170", "=<E0382V00", "=%6270"])
    func refusedLength(_ text: String) {
        #expect(throws: DonationNumber.ParseError.wrongLength(text, length: text.unicodeScalars.count)) {
            try DonationNumber(parsing: text)
        }
    }

    @Test("a 14-character form with a wrong check character is refused",
          arguments: [("G1234176543219", Character("A"), Character("9")), ("G123417654321B", "A", "B"),
                      ("A999921123456*", "3", "*"), ("1000026000001A", "*", "A"), ("W000017000001w", "W", "w")])
    func badCheckCharacter(text: String, expected: Character, found: Character) {
        #expect(throws: DonationNumber.ParseError.badCheckCharacter(text, expected: expected, found: found)) {
            try DonationNumber(parsing: text)
        }
    }

    @Test("a type-3 flag must be 60 plus the DIN's check value",
          arguments: [("=G12341765432171", 71, 70), ("=G12341765432160", 60, 70), ("=G12341765432196", 96, 70),
                      ("=A99992112345670", 70, 63), ("=100002600000195", 95, 96)])
    func flagCheckMismatch(text: String, flag: Int, expected: Int) {
        #expect(throws: DonationNumber.ParseError.flagCheckMismatch(text, flag: flag, expected: expected)) {
            try DonationNumber(parsing: text)
        }
    }

    @Test("reserved flag values are refused (ST-001 Table 3)", arguments: [14, 97, 98, 99])
    func reservedFlag(_ flag: Int) {
        let text = "=G123417654321\(flag)"
        #expect(throws: DonationNumber.ParseError.reservedFlag(text, flag: flag)) { try DonationNumber(parsing: text) }
    }

    @Test("every flag value 00–99: accepted exactly when assigned and, for type 3, matching")
    func everyFlagValue() throws {
        for din in ["G123417654321", "1000026000001", "W000025000049"] {
            let type3 = try DonationNumber(parsing: din).type3Flag
            for value in 0...99 {
                let code = value < 10 ? "0\(value)" : "\(value)"
                let text = "=" + din + code
                let shouldAccept: Bool
                switch DINFlag(value: value) {
                case .reserved: shouldAccept = false
                case .checkValue: shouldAccept = value == type3
                default: shouldAccept = true
                }
                let parsed = try? DonationNumber(parsing: text)
                #expect((parsed != nil) == shouldAccept, "\(text)")
                if let parsed { #expect(parsed.value == din) }
                let structure = try? DonationIdentificationDataStructure(parsing: text)
                #expect(structure?.flag == (shouldAccept ? DINFlag(value: value) : nil), "\(text)")
            }
        }
    }

    @Test("the three forms of one DIN are one identity")
    func formsAreOneIdentity() throws {
        var rng = SeededRandom(seed: 128)
        let firsts = Array("ABCDEFGHIJKLMNPQRSTUVWXYZ123456789")
        for _ in 0..<300 {
            let digits = (0..<12).map { _ in String(rng.next() % 10) }.joined()
            let din = String(firsts[Int(rng.next() % UInt64(firsts.count))]) + digits
            let plain = try DonationNumber(parsing: din)
            let flags = ["00", "0\(1 + rng.next() % 9)", String(plain.type3Flag)]
            let forms = [din, din + String(plain.checkCharacter)] + flags.map { "=" + din + $0 }
            for form in forms {
                let parsed = try DonationNumber(parsing: form)
                #expect(parsed == plain && parsed.hashValue == plain.hashValue, "\(form)")
            }
        }
    }

    @Test("errors carry the text and say what is wrong")
    func messages() {
        let cases: [(String, String)] = [
            ("GARBAGEGARBAG", "DIN 'GARBAGEGARBAG' has 'A' at position 2, in the facility identification number, which is A–N, P–Z or 1–9 then four digits"),
            ("=A9O991712345600", "DIN '=A9O991712345600' has 'O' at position 4, in the facility identification number, which is A–N, P–Z or 1–9 then four digits"),
            ("O123417654321", "has 'O' at position 1, in the facility identification number, which starts with A–N, P–Z or 1–9"),
            ("=O12341765432100", "has 'O' at position 2, in the facility identification number, which starts with A–N, P–Z or 1–9"),
            ("G12341Y654321", "has 'Y' at position 7, in the year, which is two digits"),
            ("G12341765432 ", "has U+0020 at position 13, in the sequence number, which is six digits"),
            ("=G1234176543217A", "has 'A' at position 16, in the flag characters, which are two digits"),
            ("G12341765432170X", "at position 1, in the data identifier, which is '=' when there are 16 characters"),
            ("G12341765432170", "has 15 characters; expected 13 (the DIN), 14 (the DIN and its check character) or 16 ('=', the DIN and two flag characters)"),
            ("=G12341765432114", "flag characters 14, reserved for future assignment (ST-001 Table 3)"),
            ("=G12341765432171", "type-3 flag 71; 60 plus the ISO 7064 Mod 37-2 check value of the DIN gives 70"),
            ("G1234176543219", "check character '9'; ISO 7064 Mod 37-2 gives 'A'"),
        ]
        for (text, message) in cases {
            let error = #expect(throws: DonationNumber.ParseError.self) { try DonationNumber(parsing: text) }
            #expect(error?.description.contains(message) == true, "\(text): \(error.map(String.init(describing:)) ?? "accepted")")
        }
    }

    @Test("DS001 keeps the flag; its errors are the DIN's")
    func dataStructure001() throws {
        let type3 = try DonationIdentificationDataStructure(parsing: "=G12341765432170")
        #expect(type3.din.value == "G123417654321")
        #expect(type3.flag == .checkValue(10))
        #expect(try DonationIdentificationDataStructure(parsing: "=G12341765432100").flag == .notUsed)
        #expect(try DonationIdentificationDataStructure(parsing: "=G12341765432103").flag == .container(3))
        #expect(throws: ISBTError.donationNumber(.flagCheckMismatch("=G12341765432171", flag: 71, expected: 70))) {
            try DonationIdentificationDataStructure(parsing: "=G12341765432171")
        }
        #expect(throws: ISBTError.donationNumber(.reservedFlag("=G12341765432197", flag: 97))) {
            try DonationIdentificationDataStructure(parsing: "=G12341765432197")
        }
        #expect(throws: ISBTError.donationNumber(.invalidCharacter("=A9O991712345600", position: 4, part: .facility))) {
            try DonationIdentificationDataStructure(parsing: "=A9O991712345600")
        }
        #expect(throws: ISBTError.wrongLength("G12341765432170", expected: 16)) {
            try DonationIdentificationDataStructure(parsing: "G12341765432170")
        }
        #expect(throws: ISBTError.wrongLength("G123417654321", expected: 16)) {
            try DonationIdentificationDataStructure(parsing: "G123417654321")
        }
        #expect(throws: ISBTError.wrongDataIdentifier("G123417654321700", expected: "=")) {
            try DonationIdentificationDataStructure(parsing: "G123417654321700")
        }
    }

    @Test("JSON decoding uses the same parser")
    func decoding() throws {
        let decoded = try JSONDecoder().decode([DonationNumber].self, from: Data(#"["G123417654321","=G12341765432170"]"#.utf8))
        #expect(decoded.map(\.value) == ["G123417654321", "G123417654321"])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([DonationNumber].self, from: Data(#"["GARBAGEGARBAG"]"#.utf8)) }
    }

    @Test("the synthetic DINs of the scenarios are valid and distinct")
    func syntheticDINs() throws {
        let numbers = [0, 1, 999_999, 1_000_000, 123_456_789, 9_999_999_999]
        let dins = try numbers.map { try DonationNumber(parsing: BatchScenario.din($0)) }
        #expect(Set(dins).count == numbers.count)
    }
}
