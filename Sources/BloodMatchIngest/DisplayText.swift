/// Turns untrusted bytes into text that is safe to print in a log line or a terminal.
///
/// Invalid UTF-8 becomes `\xNN`, control, invisible and non-ASCII characters become `\u{NNNN}`,
/// so an NBSP inside a DIN is visible; the result is cut at `limit` characters with `…`.
enum DisplayText {
    /// The default length limit for values shown in errors.
    static let defaultLimit = 80

    static func make(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int = defaultLimit) -> String {
        make(Array(bytes.prefix(limit * 4 + 4)), truncated: bytes.count > limit * 4 + 4, limit: limit)
    }

    static func make(_ bytes: [UInt8], truncated: Bool = false, limit: Int = defaultLimit) -> String {
        var out = ""
        var shown = 0
        var index = 0
        while index < bytes.count {
            if shown >= limit { return out + "…" }
            let (scalar, length) = UTF8Validation.decodeScalar(bytes, at: index)
            if let scalar {
                if scalar.value >= 0x20 && scalar.value < 0x7F {
                    out.unicodeScalars.append(scalar)
                } else {
                    out += "\\u{" + hex(scalar.value, width: 4) + "}"
                }
            } else {
                out += "\\x" + hex(UInt32(bytes[index]), width: 2)
            }
            shown += 1
            index += max(length, 1)
        }
        return truncated ? out + "…" : out
    }

    static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// The Unicode name of characters that commonly hide inside pasted identifiers.
    static func invisibleName(_ scalar: UInt32) -> String? {
        switch scalar {
        case 0x00A0: "NO-BREAK SPACE"
        case 0x200B: "ZERO WIDTH SPACE"
        case 0x200C: "ZERO WIDTH NON-JOINER"
        case 0x200D: "ZERO WIDTH JOINER"
        case 0x2060: "WORD JOINER"
        case 0xFEFF: "ZERO WIDTH NO-BREAK SPACE (BOM)"
        case 0x202F: "NARROW NO-BREAK SPACE"
        case 0x2007: "FIGURE SPACE"
        case 0x00AD: "SOFT HYPHEN"
        case 0x0009: "TAB"
        case 0x0020: "SPACE"
        default: nil
        }
    }
}

/// Strict UTF-8 checks (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
enum UTF8Validation {
    /// Decodes the scalar at `index`, returning nil and a length of 1 for an invalid sequence.
    static func decodeScalar(_ bytes: some RandomAccessCollection<UInt8>, at index: Int) -> (Unicode.Scalar?, Int) {
        let start = bytes.index(bytes.startIndex, offsetBy: index)
        let lead = bytes[start]
        if lead < 0x80 { return (Unicode.Scalar(lead), 1) }
        let count = bytes.count - index
        func continuation(_ offset: Int) -> UInt32? {
            guard offset < count else { return nil }
            let byte = bytes[bytes.index(start, offsetBy: offset)]
            return byte & 0xC0 == 0x80 ? UInt32(byte & 0x3F) : nil
        }
        switch lead {
        case 0xC2...0xDF:
            guard let c1 = continuation(1) else { return (nil, 1) }
            return (Unicode.Scalar((UInt32(lead & 0x1F) << 6) | c1), 2)
        case 0xE0...0xEF:
            guard let c1 = continuation(1), let c2 = continuation(2) else { return (nil, 1) }
            let value = (UInt32(lead & 0x0F) << 12) | (c1 << 6) | c2
            guard value >= 0x800, !(0xD800...0xDFFF).contains(value) else { return (nil, 1) }
            return (Unicode.Scalar(value), 3)
        case 0xF0...0xF4:
            guard let c1 = continuation(1), let c2 = continuation(2), let c3 = continuation(3) else { return (nil, 1) }
            let value = (UInt32(lead & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3
            guard value >= 0x10000, value <= 0x10FFFF else { return (nil, 1) }
            return (Unicode.Scalar(value), 4)
        default:
            return (nil, 1)
        }
    }

    /// The offset of the first invalid byte, or nil when all of `bytes` is valid UTF-8.
    static func firstInvalidOffset(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var index = 0
        while index < bytes.count {
            if bytes[index] < 0x80 {
                index += 1
                continue
            }
            let (scalar, length) = decodeScalar(bytes, at: index)
            if scalar == nil { return index }
            index += length
        }
        return nil
    }
}
