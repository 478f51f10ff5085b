/// A byte-level parser for the one timestamp form feeds use: `YYYY-MM-DDThh:mm:ss[.f…](Z|±hh:mm)`.
///
/// Foundation's formatters are far too slow for a million rows and accept forms the feed does not
/// allow, so the rules are spelled out here: four-digit year, upper-case `T` and `Z`, one to nine
/// fractional digits, an offset with a colon and at most 14 hours. Hour 24, minute 60, leap
/// second 60 and dates such as 2025-02-29 are refused, never rolled over.
public enum ISO8601Timestamp {
    /// Why a timestamp text was refused.
    public enum Problem: Error, Sendable, Hashable {
        /// Not in the accepted form; carries a hint on what was seen.
        case format(hint: String)
        /// Date and time present but no `Z` or `±hh:mm` offset.
        case missingZone
        /// The parts are well formed but name a date or time that does not exist.
        case impossible(hint: String)
    }

    /// Parses `text` into seconds since 1970-01-01T00:00:00Z.
    public static func secondsSince1970(_ text: String) throws(Problem) -> Double {
        var copy = Array(text.utf8)
        return try copy.withUnsafeMutableBufferPointer { (buffer) throws(Problem) -> Double in
            try secondsSince1970(UnsafeBufferPointer(buffer))
        }
    }

    /// Parses the UTF-8 bytes of a timestamp into seconds since 1970-01-01T00:00:00Z.
    public static func secondsSince1970(_ bytes: UnsafeBufferPointer<UInt8>) throws(Problem) -> Double {
        let count = bytes.count
        @inline(__always) func digit(_ index: Int) -> Int {
            guard index < count else { return -1 }
            let value = Int(bytes[index]) &- 48
            return value >= 0 && value <= 9 ? value : -1
        }
        @inline(__always) func two(_ index: Int) -> Int {
            let high = digit(index)
            let low = digit(index + 1)
            return high < 0 || low < 0 ? -1 : high * 10 + low
        }
        @inline(__always) func byte(_ index: Int) -> UInt8 { index < count ? bytes[index] : 0 }

        let century = two(0)
        let yearLow = two(2)
        guard century >= 0, yearLow >= 0, byte(4) == UInt8(ascii: "-"), byte(7) == UInt8(ascii: "-") else {
            throw .format(hint: formatHint(bytes))
        }
        let year = century * 100 + yearLow
        let month = two(5)
        let day = two(8)
        guard month >= 0, day >= 0 else { throw .format(hint: formatHint(bytes)) }
        guard count > 10 else { throw .format(hint: "a date without a time; expected YYYY-MM-DDThh:mm:ss±hh:mm") }
        guard byte(10) == UInt8(ascii: "T") else {
            throw .format(hint: byte(10) == UInt8(ascii: " ")
                ? "date and time separated by a space; use 'T'"
                : "expected 'T' after the date")
        }
        let hour = two(11)
        let minute = two(14)
        let second = two(17)
        guard hour >= 0, byte(13) == UInt8(ascii: ":"), minute >= 0, byte(16) == UInt8(ascii: ":"), second >= 0 else {
            throw .format(hint: "expected hh:mm:ss after 'T'")
        }
        var index = 19
        var fraction = 0.0
        if byte(index) == UInt8(ascii: ".") || byte(index) == UInt8(ascii: ",") {
            guard byte(index) == UInt8(ascii: ".") else { throw .format(hint: "decimal comma in seconds; use '.'") }
            index += 1
            var scale = 0.1
            let first = index
            while digit(index) >= 0 {
                fraction += Double(digit(index)) * scale
                scale /= 10
                index += 1
            }
            let digits = index - first
            guard digits >= 1, digits <= 9 else { throw .format(hint: "fractional seconds need 1 to 9 digits") }
        }
        var offsetSeconds = 0
        if index == count {
            throw .missingZone
        }
        switch byte(index) {
        case UInt8(ascii: "Z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = byte(index) == UInt8(ascii: "-") ? -1 : 1
            let offsetHours = two(index + 1)
            let offsetMinutes = two(index + 4)
            guard offsetHours >= 0, byte(index + 3) == UInt8(ascii: ":"), offsetMinutes >= 0 else {
                throw .format(hint: "offset must be ±hh:mm")
            }
            guard offsetMinutes <= 59, offsetHours * 60 + offsetMinutes <= 14 * 60 else {
                throw .impossible(hint: "offset beyond ±14:00")
            }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
            index += 6
        case UInt8(ascii: "z"):
            throw .format(hint: "lower-case 'z'; use 'Z'")
        default:
            throw .format(hint: "unexpected text after the seconds")
        }
        guard index == count else { throw .format(hint: "unexpected text after the offset") }

        guard month >= 1, month <= 12 else { throw .impossible(hint: "month \(month) does not exist") }
        let monthLength = daysInMonth(year: year, month: month)
        guard day >= 1, day <= monthLength else {
            throw .impossible(hint: "day \(day) does not exist in \(year)-\(month < 10 ? "0" : "")\(month)")
        }
        guard hour <= 23 else { throw .impossible(hint: "hour \(hour) does not exist (24:00 is not accepted; use 00:00 of the next day)") }
        guard minute <= 59 else { throw .impossible(hint: "minute \(minute) does not exist") }
        guard second <= 59 else { throw .impossible(hint: "second \(second) is not accepted (no leap seconds)") }

        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Double(seconds) + fraction
    }

    /// Days from 1970-01-01 to the given proleptic Gregorian date (the era-based days_from_civil
    /// algorithm: 400-year eras of 146,097 days, years starting in March).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private static func formatHint(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        if bytes.isEmpty { return "empty" }
        if bytes.contains(UInt8(ascii: "/")) {
            return "slashed date such as 03/04/2025 is ambiguous (day/month order); use YYYY-MM-DD"
        }
        if bytes.count >= 8, bytes[2] == UInt8(ascii: "-"), bytes[5] == UInt8(ascii: "-") {
            return "two-digit year; use a four-digit year"
        }
        if bytes.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            return "a bare number; use YYYY-MM-DDThh:mm:ss±hh:mm, not epoch seconds or compact dates"
        }
        return "expected YYYY-MM-DDThh:mm:ss±hh:mm"
    }
}
