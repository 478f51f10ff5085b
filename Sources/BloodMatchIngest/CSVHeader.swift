/// Checks a header record against the exact column list of a format and explains any difference.
enum CSVHeader {
    /// A header problem: kind, the column it concerns, the text seen, and a message.
    struct Problem {
        var kind: SnapshotFileError.Kind
        var field: String?
        var value: String?
        var message: String
    }

    /// Nil when `names` equals `expected` exactly; otherwise the first problem in this order:
    /// wrong delimiter, case/whitespace variant, unknown, duplicate, missing, order.
    static func check(_ names: [[UInt8]], expected: [String]) -> Problem? {
        let expectedBytes = expected.map { Array($0.utf8) }
        if names == expectedBytes { return nil }
        let texts = names.map { DisplayText.make($0) }
        let columnList = expected.joined(separator: ",")

        if names.count == 1 {
            let only = names[0]
            for (delimiter, label) in [(UInt8(ascii: ";"), "';' (semicolon)"), (UInt8(ascii: "\t"), "a tab")]
            where only.contains(delimiter) {
                return Problem(
                    kind: .wrongDelimiter, field: nil, value: texts[0],
                    message: "header uses \(label) as the delimiter; columns must be separated by ',' (expected \(columnList))")
            }
        }
        for (position, name) in names.enumerated() where !expectedBytes.contains(name) {
            let folded = normalised(name)
            if let match = expected.first(where: { normalised(Array($0.utf8)) == folded }) {
                let why = trimmed(name) == Array(match.utf8) ? "surrounding whitespace" : "different letter case"
                return Problem(
                    kind: .columnNameNotExact, field: match, value: texts[position],
                    message: "column \(position + 1) is '\(texts[position])', which differs from '\(match)' by \(why); header names must match exactly")
            }
            return Problem(
                kind: .unknownColumn, field: texts[position], value: texts[position],
                message: "column \(position + 1) '\(texts[position])' is not a column of this format (expected \(columnList))")
        }
        for (position, name) in names.enumerated() {
            if let first = names.firstIndex(of: name), first < position {
                return Problem(
                    kind: .duplicateColumn, field: texts[position], value: texts[position],
                    message: "column '\(texts[position])' appears twice (columns \(first + 1) and \(position + 1))")
            }
        }
        for name in expected where !names.contains(Array(name.utf8)) {
            return Problem(
                kind: .missingColumn, field: name, value: nil,
                message: "column '\(name)' is missing (expected \(columnList))")
        }
        for (position, name) in names.enumerated() where name != expectedBytes[position] {
            return Problem(
                kind: .columnOrder, field: texts[position], value: texts[position],
                message: "column \(position + 1) is '\(texts[position])' but '\(expected[position])' belongs there; columns must be in the order \(columnList)")
        }
        return Problem(kind: .unknownColumn, field: nil, value: nil, message: "header does not match \(columnList)")
    }

    private static func trimmed(_ name: [UInt8]) -> [UInt8] {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
        return Array(name.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }

    private static func normalised(_ name: [UInt8]) -> [UInt8] {
        trimmed(name).map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
    }
}
