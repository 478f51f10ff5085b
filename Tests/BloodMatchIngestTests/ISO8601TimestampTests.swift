import BloodMatchIngest
import Foundation
import Testing

@Suite("ISO 8601 timestamps")
struct ISO8601TimestampTests {
    @Test("accepted forms give the instant", arguments: [
        ("1970-01-01T00:00:00Z", 0.0),
        ("2025-05-31T13:45:07Z", 1_748_699_107.0),
        ("2025-05-31T23:45:07+10:00", 1_748_699_107.0),
        ("2025-05-31T08:15:07-05:30", 1_748_699_107.0),
        ("2025-05-31T13:45:07.5Z", 1_748_699_107.5),
        ("2038-01-19T03:14:08Z", 2_147_483_648.0),
        ("2024-02-29T00:00:00Z", 1_709_164_800.0),
        ("2000-02-29T12:00:00Z", 951_825_600.0),
        ("9999-12-31T23:59:59Z", 253_402_300_799.0),
    ])
    func parses(text: String, seconds: Double) throws {
        #expect(try ISO8601Timestamp.secondsSince1970(text) == seconds)
    }

    @Test("refused forms name the problem", arguments: [
        ("2025-02-29T00:00:00Z", "impossible"),
        ("1900-02-29T00:00:00Z", "impossible"),
        ("2025-04-31T00:00:00Z", "impossible"),
        ("2025-13-01T00:00:00Z", "impossible"),
        ("2025-05-31T24:00:00Z", "impossible"),
        ("2025-05-31T23:60:00Z", "impossible"),
        ("2025-05-31T23:59:60Z", "impossible"),
        ("2025-05-31T10:00:00+15:00", "impossible"),
        ("2025-05-31T10:00:00", "zone"),
        ("2025-05-31T10:00:00.123", "zone"),
        ("03/04/2025", "format"),
        ("25-05-31T10:00:00Z", "format"),
        ("2025-05-31", "format"),
        ("2025-05-31 10:00:00Z", "format"),
        ("2025-05-31T10:00Z", "format"),
        ("2025-05-31T10:00:00+1000", "format"),
        ("2025-05-31T10:00:00.Z", "format"),
        ("2025-05-31T10:00:00.1234567890Z", "format"),
        ("2025-05-31T10:00:00Zjunk", "format"),
        (" 2025-05-31T10:00:00Z", "format"),
        ("", "format"),
        ("1748699107", "format"),
    ])
    func refuses(text: String, kind: String) {
        do {
            _ = try ISO8601Timestamp.secondsSince1970(text)
            Issue.record("accepted \(text)")
        } catch {
            switch (error, kind) {
            case (.impossible, "impossible"), (.missingZone, "zone"), (.format, "format"): break
            default: Issue.record("\(text): \(error), expected \(kind)")
            }
        }
    }

    @Test("every day of 1970–2100 matches Foundation's calendar")
    func agreesWithCalendar() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
        var date = Date(timeIntervalSince1970: 0)
        while date.timeIntervalSince1970 < 4_102_444_800 {
            let parts = calendar.dateComponents([.year, .month, .day], from: date)
            let text = String(format: "%04d-%02d-%02dT00:00:00Z", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
            #expect(try ISO8601Timestamp.secondsSince1970(text) == date.timeIntervalSince1970)
            date = date.addingTimeInterval(86_400 * 7 + 3_600 * 5)
            date = Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400)
        }
    }
}
