import Foundation
import HTTPTypes
import Hummingbird

/// The page's files (HTML, script, style) from the target's resources, and the map's outlines,
/// read once at start-up.
struct ConsoleAssets: Sendable {
    private let files: [String: (bytes: [UInt8], type: String)]

    /// Why the console cannot start: its own files are missing from the build.
    struct Missing: Error, CustomStringConvertible {
        var name: String
        var description: String { "the console's file \(name) is missing from this build's resources" }
    }

    static let names = ["login.html": "text/html; charset=utf-8", "console.html": "text/html; charset=utf-8",
                        "console.js": "text/javascript; charset=utf-8", "console-map.js": "text/javascript; charset=utf-8",
                        "console-work.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"]

    init(outlines: Data) throws {
        var files: [String: ([UInt8], String)] = [:]
        for (name, type) in Self.names {
            guard let url = Bundle.module.url(forResource: "Assets/" + name, withExtension: nil)
                    ?? Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Assets"),
                  let data = try? Data(contentsOf: url) else { throw Missing(name: name) }
            files[name] = (Array(data), type)
        }
        files["countries.geojson"] = (Array(outlines), "application/geo+json")
        self.files = files.mapValues { (bytes: $0.0, type: $0.1) }
    }

    func contains(_ name: String) -> Bool { files[name] != nil }

    /// The file, with `replacing`'s placeholders filled (fixed texts only).
    func response(for name: String, replacing: [String: String] = [:]) -> Response {
        guard let file = files[name] else { return Response(status: .notFound) }
        var bytes = file.bytes
        if !replacing.isEmpty {
            var text = String(decoding: bytes, as: UTF8.self)
            for (key, value) in replacing { text = text.replacingOccurrences(of: key, with: value) }
            bytes = Array(text.utf8)
        }
        return Response(status: .ok, headers: [.contentType: file.type], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
