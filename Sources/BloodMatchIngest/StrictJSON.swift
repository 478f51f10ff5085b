/// A JSON value: read by `StrictJSON` from request bodies (objects keep their keys, numbers keep
/// their text) and written by `ResponseJSON` for responses and access records.
public enum JSONValue: Sendable, Hashable {
    /// An object (duplicate member names are refused while reading).
    case object([String: JSONValue])
    /// An array.
    case array([JSONValue])
    /// A string, valid Unicode.
    case string(String)
    /// The number's literal text, checked against RFC 8259 grammar; callers choose the type.
    case number(String)
    /// `true` or `false`.
    case bool(Bool)
    /// `null`.
    case null
    /// JSON text already encoded, written as it is (never produced by the reader): a response part
    /// rendered straight to bytes where building the value would cost more than the answer's work
    /// (a FHIR Bundle's resources).
    case encoded([UInt8])

    /// A short name of the kind, for error messages.
    public var kind: String {
        switch self {
        case .object: "object"
        case .array: "array"
        case .string: "string"
        case .number: "number"
        case .bool: "boolean"
        case .null: "null"
        case .encoded: "encoded JSON"
        }
    }
}

/// Why a body is not acceptable JSON, with the byte offset.
public struct JSONInputError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public var reason: String
    /// Byte offset in the body.
    public var offset: Int
    /// The member whose value was being read (`row_count`, `entry[3].resource`), nil at the top.
    public var path: String?

    /// Creates an error.
    public init(reason: String, offset: Int, path: String? = nil) {
        self.reason = reason
        self.offset = offset
        self.path = path
    }

    /// The first member name of `path` (`entry` for `entry[3].resource`).
    public var topMember: String? {
        path.map { String($0.prefix { $0 != "." && $0 != "[" }) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The reason and where.
    public var description: String { "\(reason)\(path.map { " in \($0)" } ?? "") at byte \(offset)" }
}

/// A strict RFC 8259 reader for request bodies, stricter than Foundation's decoder where it
/// matters for a clinical API: duplicate keys, nesting deeper than `maximumDepth`, invalid UTF-8,
/// lone surrogates and control characters are refused, not silently resolved. Iterative depth is
/// bounded, so 100k `[` cannot overflow the stack.
public struct StrictJSON: Sendable {
    /// The deepest nesting accepted (the API's bodies need 3).
    public var maximumDepth: Int = 16

    /// Creates a reader.
    public init(maximumDepth: Int = 16) { self.maximumDepth = maximumDepth }

    /// Parses one JSON text; whitespace only around it.
    public func parse(_ bytes: [UInt8]) throws(JSONInputError) -> JSONValue {
        try parse(bytes, streaming: nil, element: nil)
    }

    /// Parses one JSON text whose top-level object has an array member `member` of many large
    /// elements (a Bundle's `entry`): each element is handed to `element` with its position as
    /// soon as it is read and not kept, so memory holds one element at a time; the member is
    /// returned as an empty array. Everything is checked as strictly as by `parse`.
    public func parse(_ bytes: [UInt8], streaming member: String, element: @escaping (Int, JSONValue) -> Void) throws(JSONInputError) -> JSONValue {
        try parse(bytes, streaming: member, element: Optional(element))
    }

    private func parse(_ bytes: [UInt8], streaming member: String?, element: ((Int, JSONValue) -> Void)?) throws(JSONInputError) -> JSONValue {
        var parser = Parser(bytes: bytes, maximumDepth: maximumDepth)
        parser.streamedMember = member
        parser.onElement = element
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw JSONInputError(reason: "unexpected data after the JSON value", offset: parser.position) }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        let maximumDepth: Int
        var position = 0
        /// Member names and array positions from the top to the value being read.
        var path: [String] = []
        /// The top-level member whose array elements go to `onElement` instead of the result.
        var streamedMember: String?
        var onElement: ((Int, JSONValue) -> Void)?

        init(bytes: [UInt8], maximumDepth: Int) {
            self.bytes = bytes
            self.maximumDepth = maximumDepth
        }

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        func fail(_ reason: String) -> JSONInputError { JSONInputError(reason: reason, offset: position, path: renderedPath) }

        var renderedPath: String? {
            guard let first = path.first else { return nil }
            return path.dropFirst().reduce(first) { $0 + ($1.hasPrefix("[") ? $1 : "." + $1) }
        }

        mutating func value(depth: Int) throws(JSONInputError) -> JSONValue {
            guard position < bytes.count else { throw fail("unexpected end of input") }
            switch bytes[position] {
            case UInt8(ascii: "{"):
                guard depth < maximumDepth else { throw fail("nesting deeper than \(maximumDepth) levels") }
                return try object(depth: depth + 1)
            case UInt8(ascii: "["):
                guard depth < maximumDepth else { throw fail("nesting deeper than \(maximumDepth) levels") }
                return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw fail("unexpected character")
            }
        }

        mutating func literal(_ word: String) throws(JSONInputError) {
            let w = Array(word.utf8)
            guard position + w.count <= bytes.count, Array(bytes[position..<position + w.count]) == w else { throw fail("invalid literal") }
            position += w.count
        }

        mutating func object(depth: Int) throws(JSONInputError) -> JSONValue {
            position += 1
            var members: [String: JSONValue] = [:]
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
                let keyOffset = position
                let key = try string()
                path.append(key)
                guard members[key] == nil else { throw JSONInputError(reason: "duplicate key \"\(key)\"", offset: keyOffset, path: renderedPath) }
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                position += 1
                skipWhitespace()
                if depth == 1, key == streamedMember, let onElement, position < bytes.count, bytes[position] == UInt8(ascii: "[") {
                    guard depth < maximumDepth else { throw fail("nesting deeper than \(maximumDepth) levels") }
                    try streamArray(depth: depth + 1, to: onElement)
                    members[key] = .array([])
                } else {
                    members[key] = try value(depth: depth)
                }
                path.removeLast()
                skipWhitespace()
                guard position < bytes.count else { throw fail("unexpected end of input") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
                throw fail("expected ',' or '}'")
            }
        }

        /// An array whose elements are handed on one by one and not kept.
        mutating func streamArray(depth: Int, to onElement: (Int, JSONValue) -> Void) throws(JSONInputError) {
            position += 1
            var count = 0
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return }
            while true {
                skipWhitespace()
                path.append("[\(count)]")
                let element = try value(depth: depth)
                path.removeLast()
                onElement(count, element)
                count += 1
                skipWhitespace()
                guard position < bytes.count else { throw fail("unexpected end of input") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "]") { position += 1; return }
                throw fail("expected ',' or ']'")
            }
        }

        mutating func array(depth: Int) throws(JSONInputError) -> JSONValue {
            position += 1
            var elements: [JSONValue] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
            while true {
                skipWhitespace()
                path.append("[\(elements.count)]")
                elements.append(try value(depth: depth))
                path.removeLast()
                skipWhitespace()
                guard position < bytes.count else { throw fail("unexpected end of input") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
                throw fail("expected ',' or ']'")
            }
        }

        mutating func hex4() throws(JSONInputError) -> UInt32 {
            guard position + 4 <= bytes.count else { throw fail("truncated \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[position]
                let d: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw fail("bad \\u escape")
                }
                v = v * 16 + d
                position += 1
            }
            return v
        }

        mutating func string() throws(JSONInputError) -> String {
            position += 1
            var out: [UInt8] = []
            while true {
                guard position < bytes.count else { throw fail("unterminated string") }
                let c = bytes[position]
                if c == UInt8(ascii: "\"") { position += 1; break }
                if c < 0x20 { throw fail("control character in a string") }
                if c == UInt8(ascii: "\\") {
                    position += 1
                    guard position < bytes.count else { throw fail("unterminated escape") }
                    let e = bytes[position]
                    position += 1
                    switch e {
                    case UInt8(ascii: "\""): out.append(0x22)
                    case UInt8(ascii: "\\"): out.append(0x5C)
                    case UInt8(ascii: "/"): out.append(0x2F)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800...0xDBFF).contains(scalar) {
                            guard position + 2 <= bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                                throw fail("lone surrogate in a \\u escape")
                            }
                            position += 2
                            let low = try hex4()
                            guard (0xDC00...0xDFFF).contains(low) else { throw fail("lone surrogate in a \\u escape") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            throw fail("lone surrogate in a \\u escape")
                        }
                        guard let s = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                        if s.value == 0 { throw fail("NUL character in a string") }
                        out.append(contentsOf: Array(String(Character(s)).utf8))
                    default: throw fail("unknown escape")
                    }
                    continue
                }
                out.append(c)
                position += 1
            }
            guard let text = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
            return text
        }

        mutating func number() throws(JSONInputError) -> String {
            let start = position
            func digit(_ i: Int) -> Bool { i < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) }
            if bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digit(position) else { throw fail("invalid number") }
            if bytes[position] == UInt8(ascii: "0") {
                position += 1
                if digit(position) { throw fail("leading zero in a number") }
            } else {
                while digit(position) { position += 1 }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                guard digit(position) else { throw fail("invalid number") }
                while digit(position) { position += 1 }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                guard digit(position) else { throw fail("invalid number") }
                while digit(position) { position += 1 }
            }
            guard position - start <= 32 else { throw JSONInputError(reason: "number literal longer than 32 characters", offset: start) }
            return String(decoding: bytes[start..<position], as: UTF8.self)
        }
    }
}
