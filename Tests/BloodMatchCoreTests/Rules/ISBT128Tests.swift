@testable import BloodMatchCore
import Testing

/// ISBT 128: DIN check character, flags, blood-group codes and special messages.
///
/// Source: ST-001 Appendix A.1/A.2 (G123417654321 → A, type-3 flag 70, quoted in pdesiatnyk
/// tests); briandunning.com FileMaker sample (ABCDE27000069 → C, a check value over text that is
/// not a DIN); values computed with the ST-001
/// algorithm (A999921123456 → 3, W000017000001 → W, W000017000002 → U); ST-001 Tables 3, 4, 5 via
/// kitcalc and pdesiatnyk; FHIR R5 example (62 = A RhD Positive).
@Suite("ISBT 128")
struct ISBT128Tests {
    @Test("ISO 7064 Mod 37-2 check characters",
          arguments: [("G123417654321", "A", 70), ("A999921123456", "3", 63),
                      ("W000017000001", "W", 92), ("W000017000002", "U", 90)])
    func checkCharacter(din: String, check: String, flag: Int) throws {
        let number = try DonationNumber(parsing: din)
        #expect(String(number.checkCharacter) == check)
        #expect(number.type3Flag == flag)
        #expect(DINFlag.type3(for: number).code == String(flag))
        // The 14-character form with the right check character parses; a wrong one is refused.
        #expect(try DonationNumber(parsing: din + check).value == din)
        let wrong = check == "A" ? "B" : "A"
        #expect(throws: DonationNumber.ParseError.badCheckCharacter(din + wrong, expected: Character(check), found: Character(wrong))) {
            try DonationNumber(parsing: din + wrong)
        }
    }

    @Test("a check value over text that is not a DIN: the FileMaker sample ABCDE27000069 → C")
    func checkCharacterOfNonDIN() {
        // The published sample has letters where the FIN's digits belong, so it is not a DIN.
        #expect(DonationNumber.checkCharacter(of: "ABCDE27000069") == "C")
        #expect(60 + DonationNumber.checkValue(of: "ABCDE27000069") == 72)
        #expect(throws: DonationNumber.ParseError.invalidCharacter("ABCDE27000069", position: 2, part: .facility)) {
            try DonationNumber(parsing: "ABCDE27000069")
        }
    }

    @Test("the check makes the weighted sum ≡ 1 mod 37 (ISO 7064 pure system, not (37 − sum) mod 37)")
    func weightedFormAgrees() {
        var rng = SeededRandom(seed: 7)
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        for _ in 0..<500 {
            let text = String((0..<13).map { _ in alphabet.randomElement(using: &rng) ?? "0" })
            let values = text.map { alphabet.firstIndex(of: $0) ?? 0 }
            var sum = 0
            for (i, v) in values.enumerated() { sum += v * (1 << (13 - i)) }
            let k = DonationNumber.checkValue(of: text)
            #expect((sum + k) % 37 == 1, "\(text)")
        }
    }

    @Test("malformed DINs are refused with the reason",
          arguments: ["G12341765432", "G1234176543210A", "O123417654321", "g123417654321", "G12341765432 ", "0123417654321",
                      "GARBAGEGARBAG", "=A9O991712345600", "G12341765432170"])
    func malformedDIN(_ text: String) {
        #expect(throws: DonationNumber.ParseError.self) { try DonationNumber(parsing: text) }
    }

    @Test("flag characters (ST-001 Table 3)",
          arguments: [("00", DINFlag.notUsed), ("01", .container(1)), ("04", .container(4)), ("05", .repeatedLabel),
                      ("06", .pilotTube), ("07", .testTube), ("08", .donorRecord), ("09", .natSample),
                      ("10", .bacterialTestingSample), ("11", .matchWithUnit), ("12", .affixedPartialLabel),
                      ("13", .attachedLabel), ("14", .reserved(14)), ("15", .container(5)), ("19", .container(9)),
                      ("20", .local(20)), ("59", .local(59)), ("60", .checkValue(0)), ("70", .checkValue(10)),
                      ("96", .checkValue(36)), ("97", .reserved(97)), ("99", .reserved(99))])
    func flags(code: String, expected: DINFlag) throws {
        let flag = try DINFlag(code: code)
        #expect(flag == expected)
        #expect(flag.code == code)
        #expect(DINFlag(value: flag.value) == flag)
        #expect(flag.description.hasPrefix(code))
    }

    @Test("bad flags are refused", arguments: ["", "1", "100", "A0", "7O"])
    func badFlags(_ code: String) {
        #expect(throws: ISBTError.badFlag(code)) { try DINFlag(code: code) }
    }

    @Test("DS001 with a type-3 flag is verified against the DIN")
    func dataStructure001() throws {
        let good = try DonationIdentificationDataStructure(parsing: "=G12341765432170")
        #expect(good.din.value == "G123417654321")
        #expect(good.flag == .checkValue(10))
        #expect(throws: ISBTError.donationNumber(.flagCheckMismatch("=G12341765432171", flag: 71, expected: 70))) {
            try DonationIdentificationDataStructure(parsing: "=G12341765432171")
        }
        #expect(try DonationIdentificationDataStructure(parsing: "=G12341765432100").flag == .notUsed)
        #expect(throws: ISBTError.self) { try DonationIdentificationDataStructure(parsing: "G12341765432170") }
    }

    /// ST-001 Table 4 (Data/SOURCES.md §S14): group, default, directed only, emergency use only, autologous only.
    static let table4: [(String, String, String, String, String)] = [
        ("O-", "95", "91", "92", "97"), ("O+", "51", "47", "48", "53"), ("A-", "06", "02", "03", "08"), ("A+", "62", "58", "59", "64"),
        ("B-", "17", "13", "14", "19"), ("B+", "73", "69", "70", "75"), ("AB-", "28", "24", "25", "30"), ("AB+", "84", "80", "81", "86"),
    ]

    @Test("Table 4 blood-group codes and their allocation", arguments: table4)
    func table4Codes(row: (String, String, String, String, String)) throws {
        let group = try #require(RulesFixture.group(row.0))
        let columns: [(String, BloodGroupCollectionType)] = [
            (row.1, .unspecified), (row.2, .directedOnly), (row.3, .emergencyUseOnly), (row.4, .autologousOnly),
        ]
        for (code, type) in columns {
            let parsed = try ISBTBloodGroupCode(code: code)
            #expect(parsed == .group(group, type))
            #expect(parsed.code == code)
            #expect(parsed.bloodGroup == group)
            switch type {
            case .unspecified:
                #expect(parsed.isAllocatable && parsed.isAllocatable(urgency: .emergency))
                #expect(ISBTBloodGroupCode.defaultCode(for: group) == code)
            case .emergencyUseOnly:
                #expect(!parsed.isAllocatable && parsed.isAllocatable(urgency: .emergency) && !parsed.isAllocatable(urgency: .urgent))
            case .directedOnly, .autologousOnly:
                #expect(parsed.allocation == .namedRecipientOnly)
                #expect(Urgency.allCases.allSatisfy { !parsed.isAllocatable(urgency: $0) })
            }
        }
    }

    @Test("the published examples: 95 = O RhD negative, 62 = A RhD positive")
    func publishedExamples() throws {
        #expect(try ISBTBloodGroupCode(code: "95") == .group(.oNegative, .unspecified))
        #expect(try ISBTBloodGroupCode(code: "62") == .group(BloodGroup(.A, .positive), .unspecified))
    }

    @Test("Table 5 special messages are never allocatable",
          arguments: ["00", "Ma", "Mb", "Md", "Mf", "Mq", "Mr", "Mx", "T1", "T6", "55", "66", "77", "88"])
    func specialMessages(_ code: String) throws {
        let parsed = try ISBTBloodGroupCode(code: code)
        #expect(parsed.code == code)
        #expect(parsed.bloodGroup == nil)
        for urgency in Urgency.allCases { #expect(!parsed.isAllocatable(urgency: urgency)) }
        if case .never(let reason) = parsed.allocation { #expect(!reason.isEmpty) } else { Issue.record("\(code) allocatable") }
    }

    @Test("discard, quarantine, not for transfusion, research and fractionation forbid transfusion (ST-001 Table 5)")
    func forbiddenMessages() throws {
        let forbidden = ISBTSpecialMessage.all.filter(\.forbidsTransfusion).map(\.code)
        #expect(Set(forbidden) == ["Md", "Mq", "Mx", "Mr", "Mf"])
    }

    @Test("unknown codes are refused, not guessed", arguments: ["", "9", "99", "MD", "G6", "A0", "T7", "xx"])
    func unknownCodes(_ code: String) {
        #expect(throws: ISBTError.unknownBloodGroupCode(code)) { try ISBTBloodGroupCode(code: code) }
    }

    @Test("DS002 =%ggre")
    func dataStructure002() throws {
        let parsed = try ISBTBloodGroupDataStructure(parsing: "=%6270")
        #expect(parsed.bloodGroup == .group(BloodGroup(.A, .positive), .unspecified))
        #expect(parsed.phenotypeCharacter == "7")
        #expect(try ISBTBloodGroupDataStructure(parsing: "=%Md00").bloodGroup == .special(.discard))
        #expect(throws: ISBTError.self) { try ISBTBloodGroupDataStructure(parsing: "=%6271") }
        #expect(throws: ISBTError.self) { try ISBTBloodGroupDataStructure(parsing: "=<6270") }
        #expect(throws: ISBTError.self) { try ISBTBloodGroupDataStructure(parsing: "=%627") }
    }
}
