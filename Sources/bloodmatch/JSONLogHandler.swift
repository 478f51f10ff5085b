import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Writes one JSON object per line to standard error: `ts` (UTC, milliseconds), `level`,
/// `logger`, `msg`, then the metadata fields in sorted order. The metadata provider adds the
/// current span's `trace_id`, `span_id` and `trace_flags` (see `TracingSystem`).
///
/// Hand-written because swift-log ships only a plain-text stream handler and none of the mirrored
/// packages provides a JSON one. Each line is written with one `write(2)` so lines from
/// concurrent tasks never interleave.
struct JSONLogHandler: LogHandler {
    var label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { fields.merge(provided) { $1 } }
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        var line = "{\"ts\":\"\(Self.timestamp())\",\"level\":\"\(event.level.rawValue)\",\"logger\":"
        line += Self.quote(label) + ",\"msg\":" + Self.quote(event.message.description)
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            line += "," + Self.quote(key) + ":" + Self.render(value)
        }
        line += "}\n"
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    private static func render(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): quote(s)
        case .stringConvertible(let c):
            if let n = c as? any BinaryInteger { "\(n)" }
            else if let d = c as? Double, d.isFinite { "\(d)" }
            else if let b = c as? Bool { b ? "true" : "false" }
            else { quote(c.description) }
        case .array(let values): "[" + values.map(render).joined(separator: ",") + "]"
        case .dictionary(let dict):
            "{" + dict.sorted(by: { $0.key < $1.key }).map { quote($0.key) + ":" + render($0.value) }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = time_t(ts.tv_sec)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1,
                      parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, Int(ts.tv_nsec / 1_000_000))
    }
}
