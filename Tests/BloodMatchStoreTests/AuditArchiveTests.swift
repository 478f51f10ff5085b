import BloodMatchStore
import Crypto
import Foundation
import Testing

/// Archive files of closed segments, checked from the file and its manifest alone.
@Suite("Audit archive files")
struct AuditArchiveTests {
    /// Events 11…20 of a chain, positions 11…20, written as an archive with its manifest.
    static func archive() throws -> (file: URL, manifest: AuditArchiveManifest, lines: [String]) {
        let events = AuditChainTests.chain(20)
        let segment = Array(events[10...])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let lines = try segment.map { String(decoding: try encoder.encode(AuditArchiveEntry($0)), as: UTF8.self) }
        let text = Data((lines.joined(separator: "\n") + "\n").utf8)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("archive-\(UUID().uuidString).jsonl")
        try text.write(to: file)
        let manifest = AuditArchiveManifest(
            segment: 2, firstSeq: 11, endSeq: 21, chainFirst: 11, chainLast: 20, prevHash: events[9].rowHash.lowercaseHex,
            lastHash: events[19].rowHash.lowercaseHex, events: 10, file: file.lastPathComponent,
            sha256: Array(SHA256.hash(data: text)).lowercaseHex, exportedAt: "2026-12-07T00:00:00Z", databaseSystemIdentifier: "1")
        return (file, manifest, lines)
    }

    static func problem(_ file: URL, _ manifest: AuditArchiveManifest) -> AuditArchiveError? {
        do {
            _ = try AuditArchive.verify(file: file, manifest: manifest)
            return nil
        } catch {
            return error as? AuditArchiveError
        }
    }

    @Test("an intact archive verifies from its first position's predecessor hash to its last")
    func intact() throws {
        let (file, manifest, _) = try Self.archive()
        defer { try? FileManager.default.removeItem(at: file) }
        let verified = try AuditArchive.verify(file: file, manifest: manifest)
        #expect(verified.events == 10 && verified.chainFirst == 11 && verified.chainLast == 20)
        #expect(verified.lastHash == manifest.lastHash && verified.sha256 == manifest.sha256)
        // Each entry round-trips to the event it was made from.
        let entry = try JSONDecoder().decode(AuditArchiveEntry.self, from: Data(try String(contentsOf: file, encoding: .utf8).split(separator: "\n")[0].utf8))
        #expect(entry.event == AuditChainTests.chain(20)[10])
    }

    @Test("each kind of damage is named with its line, or as the file's when only the whole shows it")
    func damage() throws {
        let (file, manifest, lines) = try Self.archive()
        defer { try? FileManager.default.removeItem(at: file) }
        func write(_ lines: [String], newline: Bool = true) throws {
            try Data((lines.joined(separator: "\n") + (newline ? "\n" : "")).utf8).write(to: file)
        }
        // A field changed on line 4.
        try write(lines.enumerated().map { $0.offset == 3 ? $0.element.replacingOccurrences(of: "\"actor\":\"test\"", with: "\"actor\":\"tess\"") : $0.element })
        var found = Self.problem(file, manifest)
        #expect(found?.line == 4 && found?.problem.contains("content_changed") == true, "\(String(describing: found))")
        // Line 6 removed: line 6 is now position 17 where 16 was due.
        try write(lines.enumerated().filter { $0.offset != 5 }.map(\.element))
        found = Self.problem(file, manifest)
        #expect(found?.line == 6 && found?.problem.contains("missing_row") == true, "\(String(describing: found))")
        // The last line removed whole: only the count, the range and the hash show it.
        try write(Array(lines.dropLast()))
        found = Self.problem(file, manifest)
        #expect(found?.line == 0 && found?.problem.contains("9 events, the manifest says 10") == true, "\(String(describing: found))")
        // Cut short in the middle of a line.
        try write(lines.dropLast() + [String(lines.last!.prefix(40))], newline: false)
        found = Self.problem(file, manifest)
        #expect(found?.line == 10 && found?.problem.contains("cut short") == true, "\(String(describing: found))")
        // The same content, and a manifest that names another file's SHA-256.
        try write(lines)
        var other = manifest
        other.sha256 = String(repeating: "0", count: 64)
        found = Self.problem(file, other)
        #expect(found?.line == 0 && found?.problem.contains("the file changed") == true, "\(String(describing: found))")
        // A manifest whose range leaves out the events: the first is outside the segment.
        other = manifest
        other.firstSeq = 12
        found = Self.problem(file, other)
        #expect(found?.line == 1 && found?.problem.contains("outside segment 2") == true, "\(String(describing: found))")
        // A manifest starting from another hash: the first link is broken.
        other = manifest
        other.prevHash = String(repeating: "ab", count: 32)
        found = Self.problem(file, other)
        #expect(found?.line == 1 && found?.problem.contains("broken_link") == true, "\(String(describing: found))")
        // Not JSON at all on line 2.
        try write([lines[0], "not json"] + lines[2...])
        found = Self.problem(file, manifest)
        #expect(found?.line == 2 && found?.problem.hasPrefix("not an archive entry") == true, "\(String(describing: found))")
    }
}
