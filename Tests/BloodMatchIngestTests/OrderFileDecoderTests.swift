import BloodMatchCore
@testable import BloodMatchIngest
import Foundation
import Testing

/// Order files (`Data/order-format.md`): valid lines decode; the first bad field refuses the file.
@Suite struct OrderFileDecoderTests {
    static let header = OrderFileDecoder.header.joined(separator: ",")

    @Test func decodesEveryField() throws {
        let text = Self.header + "\r\n" + """
        ORD-1,H0001,RBC,A,NEG,female;age=34,2,IRRADIATED;CMV_NEG,urgent,2026-11-29T14:00:00Z,
        ORD-2,H0002,PLT,UNKNOWN,UNKNOWN,,1,,emergency,,5
        """
        let orders = try OrderFileDecoder.decode(Data(text.utf8), file: "day.csv")
        #expect(orders.count == 2)
        #expect(orders[0].group == BloodGroup(.A, .negative))
        #expect(orders[0].context.sex == .female && orders[0].context.ageYears == 34)
        #expect(orders[0].requirements == [.irradiated, .cmvNegative])
        #expect(orders[0].neededBy == Date(timeIntervalSince1970: 1_795_960_800))
        #expect(orders[1].group == nil && orders[1].urgency == .emergency && orders[1].maximumUnitAgeDays == 5)
    }

    @Test(arguments: [
        ("ORD-1,H0001,RBC,A,NEG,,0,,urgent,,", "quantity"),
        ("ORD-1,H0001,XYZ,A,NEG,,1,,urgent,,", "component"),
        ("ORD-1,H0001,RBC,A,MAYBE,,1,,urgent,,", "rhd"),
        ("ORD-1,H0001,RBC,A,NEG,martian,1,,urgent,,", "context"),
        ("ORD-1,H0001,RBC,A,NEG,,1,SPARKLY,urgent,,", "requirements"),
        ("ORD-1,H0001,RBC,A,NEG,,1,,soon,,", "urgency"),
        ("ORD-1,H0001,RBC,A,NEG,,1,,urgent,tomorrow,", "needed_by"),
        ("ORD 1,H0001,RBC,A,NEG,,1,,urgent,,", "order_id"),
        ("ORD-1,H0001,RBC,A,NEG,1,,urgent,,", "line"),
    ])
    func refusesTheFileAtTheFirstBadField(line: String, field: String) {
        let text = Self.header + "\nORD-0,H0001,RBC,O,POS,,1,,routine,,\n" + line + "\n"
        let result = Result { () throws(OrderFileError) in try OrderFileDecoder.decode(Data(text.utf8), file: "f.csv") }
        guard case .failure(let error) = result else { Issue.record("accepted: \(line)"); return }
        #expect(error.line == 3 && error.field == field, "\(error)")
    }

    @Test func refusesABadHeaderAndDuplicateIDs() {
        #expect(throws: OrderFileError.self) { try OrderFileDecoder.decode(Data("id,hospital\n".utf8), file: "f.csv") }
        let text = Self.header + "\nA,H1,RBC,O,POS,,1,,routine,,\nA,H1,RBC,O,POS,,1,,routine,,\n"
        #expect(throws: OrderFileError.self) { try OrderFileDecoder.decode(Data(text.utf8), file: "f.csv") }
    }
}
