/// Where one field of a CSV record lies in the scanned buffer.
struct CSVFieldSpan: Sendable {
    /// First byte of the content (after an opening quote).
    var start: Int
    /// One past the last byte of the content (before a closing quote).
    var end: Int
    /// Whether the content holds `""` pairs that stand for one quote each.
    var hasEscapedQuote: Bool
}

/// What `CSVRecordScanner.scan` found at a position.
enum CSVScanOutcome {
    /// A whole record: its fields are in the span array, `next` is where the following record
    /// starts, `length` the record's bytes without its line end, `lineEnds` the line feeds
    /// inside quoted fields, `unusualBytes` whether a byte ≥ 0x80 or a NUL occurred.
    case record(next: Int, length: Int, lineEnds: Int, unusualBytes: Bool)
    /// The buffer ends before the record does; `openQuote` names the field (0-based) and the
    /// line offset of a quote still open at the end.
    case incomplete(openQuote: (field: Int, lineOffset: Int)?)
    /// A carriage return not followed by a line feed, outside quotes.
    case bareCarriageReturn(field: Int, lineOffset: Int)
    /// A character other than `,`, CR or LF right after a closing quote.
    case characterAfterClosingQuote(field: Int, lineOffset: Int, byte: UInt8)
    /// End of input inside a quoted field.
    case unterminatedQuote(field: Int, lineOffset: Int)
}

/// RFC 4180 record splitting over raw bytes: `,` between fields, LF or CRLF between records,
/// `"` around fields that hold commas, quotes (as `""`) or line ends.
///
/// A `"` inside an unquoted field is kept as an ordinary character (no field of the formats
/// allows it, so validation refuses it later). The scanner is stateless between records so the
/// caller can rescan an incomplete record when more bytes arrive.
enum CSVRecordScanner {
    static let comma = UInt8(ascii: ",")
    static let quote = UInt8(ascii: "\"")
    static let lineFeed = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")

    /// Scans one record starting at `start`; `isFinal` says no more bytes will follow.
    static func scan(
        _ buffer: UnsafeBufferPointer<UInt8>, from start: Int, isFinal: Bool, spans: inout [CSVFieldSpan]
    ) -> CSVScanOutcome {
        spans.removeAll(keepingCapacity: true)
        let count = buffer.count
        var index = start
        var lineEnds = 0
        var unusual: UInt8 = 0
        var sawNUL = false

        while true {
            // At the start of a field.
            if index < count && buffer[index] == quote {
                let openLineOffset = lineEnds
                let fieldNumber = spans.count
                index += 1
                let contentStart = index
                var escaped = false
                while true {
                    guard index < count else {
                        return isFinal
                            ? .unterminatedQuote(field: fieldNumber, lineOffset: openLineOffset)
                            : .incomplete(openQuote: (fieldNumber, openLineOffset))
                    }
                    let byte = buffer[index]
                    if byte == quote {
                        if index + 1 < count {
                            if buffer[index + 1] == quote {
                                escaped = true
                                index += 2
                                continue
                            }
                            break
                        }
                        if isFinal { break }
                        return .incomplete(openQuote: (fieldNumber, openLineOffset))
                    }
                    if byte == lineFeed { lineEnds += 1 }
                    unusual |= byte & 0x80
                    if byte == 0 { sawNUL = true }
                    index += 1
                }
                spans.append(CSVFieldSpan(start: contentStart, end: index, hasEscapedQuote: escaped))
                index += 1
                guard index < count else {
                    if isFinal {
                        return .record(next: index, length: index - start, lineEnds: lineEnds, unusualBytes: unusual != 0 || sawNUL)
                    }
                    return .incomplete(openQuote: nil)
                }
                let byte = buffer[index]
                if byte == comma {
                    index += 1
                    continue
                }
                if byte != lineFeed && byte != carriageReturn {
                    return .characterAfterClosingQuote(field: fieldNumber, lineOffset: lineEnds, byte: byte)
                }
            } else {
                let fieldStart = index
                while index < count {
                    let byte = buffer[index]
                    if byte == comma || byte == lineFeed || byte == carriageReturn { break }
                    unusual |= byte & 0x80
                    if byte == 0 { sawNUL = true }
                    index += 1
                }
                if index == count && !isFinal { return .incomplete(openQuote: nil) }
                spans.append(CSVFieldSpan(start: fieldStart, end: index, hasEscapedQuote: false))
                if index == count {
                    return .record(next: index, length: index - start, lineEnds: lineEnds, unusualBytes: unusual != 0 || sawNUL)
                }
                if buffer[index] == comma {
                    index += 1
                    continue
                }
            }
            // At a line end.
            if buffer[index] == lineFeed {
                return .record(next: index + 1, length: index - start, lineEnds: lineEnds, unusualBytes: unusual != 0 || sawNUL)
            }
            if index + 1 < count {
                if buffer[index + 1] == lineFeed {
                    return .record(next: index + 2, length: index - start, lineEnds: lineEnds, unusualBytes: unusual != 0 || sawNUL)
                }
                return .bareCarriageReturn(field: spans.count - 1, lineOffset: lineEnds)
            }
            return isFinal ? .bareCarriageReturn(field: spans.count - 1, lineOffset: lineEnds) : .incomplete(openQuote: nil)
        }
    }

    /// The content of a quoted field with each `""` turned into `"`.
    static func unescaped(_ buffer: UnsafeBufferPointer<UInt8>, _ span: CSVFieldSpan) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(span.end - span.start)
        var index = span.start
        while index < span.end {
            out.append(buffer[index])
            index += buffer[index] == quote ? 2 : 1
        }
        return out
    }
}
