/// Up to 16 ASCII bytes packed into two words, so short enumerated fields (`RBC`, `QUARANTINED`,
/// `CMV_NEG`) are matched by two integer compares instead of string comparison.
struct PackedToken: Hashable, Sendable {
    var high: UInt64
    var low: UInt64
    var count: Int

    static let maximumCount = 16

    /// Nil when `bytes` is longer than 16 bytes (no enumerated value is).
    @inline(__always)
    init?(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count <= Self.maximumCount else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        var index = 0
        while index < bytes.count && index < 8 {
            high |= UInt64(bytes[index]) << (UInt64(index) * 8)
            index += 1
        }
        while index < bytes.count {
            low |= UInt64(bytes[index]) << (UInt64(index - 8) * 8)
            index += 1
        }
        self.high = high
        self.low = low
        self.count = bytes.count
    }

    init?(_ text: String) {
        var bytes = Array(text.utf8)
        guard let token = bytes.withUnsafeMutableBufferPointer({ PackedToken(UnsafeBufferPointer($0)) }) else { return nil }
        self = token
    }
}

/// A fixed table from packed tokens to values, searched linearly (tables hold 2 to 20 entries).
struct PackedTokenTable<Value>: Sendable where Value: Sendable {
    private let keys: [PackedToken]
    private let values: [Value]

    init(_ entries: [(String, Value)]) {
        var keys: [PackedToken] = []
        var values: [Value] = []
        for (text, value) in entries {
            if let key = PackedToken(text) {
                keys.append(key)
                values.append(value)
            }
        }
        self.keys = keys
        self.values = values
    }

    @inline(__always)
    func lookup(_ bytes: UnsafeBufferPointer<UInt8>) -> Value? {
        guard let token = PackedToken(bytes) else { return nil }
        return keys.withUnsafeBufferPointer { keys in
            for index in 0..<keys.count where keys[index] == token {
                return values[index]
            }
            return nil
        }
    }
}
