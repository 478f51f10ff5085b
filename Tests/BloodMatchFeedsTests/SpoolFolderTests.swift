import BloodMatchFeeds
import Foundation
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Spool and fetch folders")
struct SpoolFolderTests {
    private static func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    private static func write(_ name: String, in folder: URL) throws {
        try Data("x".utf8).write(to: folder.appendingPathComponent(name))
    }

    @Test("complete pairs are offered in name order; a CSV still waiting is neither offered nor reported within the grace period")
    func completePairs() throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        for name in ["B.csv", "B.ctl.json", "A.csv", "A.ctl.json", "C.csv", ".hidden.csv", "D.csv.tmp"] {
            try Self.write(name, in: root)
        }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("done"), withIntermediateDirectories: true)
        let entries = try SpoolFolder(root: root).scan()
        let offered = entries.compactMap { entry -> String? in
            if case .snapshot(let csv, let control) = entry {
                #expect(control.lastPathComponent == csv.deletingPathExtension().lastPathComponent + ".ctl.json")
                return csv.lastPathComponent
            }
            return nil
        }
        #expect(offered == ["A.csv", "B.csv"])
        #expect(entries.count == 2, "\(entries)")
    }

    @Test("a FHIR Bundle NAME.json or NAME.fhir.json with NAME.ctl.json is a snapshot; a CSV and a Bundle sharing one control record are refused")
    func bundles() throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        for name in ["A.fhir.json", "A.ctl.json", "B.json", "B.ctl.json", "C.csv", "C.json", "C.ctl.json", "D.json"] {
            try Self.write(name, in: root)
        }
        var offered: [String] = [], refused: [String: String] = [:]
        for entry in try SpoolFolder(root: root).scan() {
            switch entry {
            case .snapshot(let file, let control):
                offered.append(file.lastPathComponent)
                #expect(control.lastPathComponent == String(file.lastPathComponent.prefix(1)) + ".ctl.json")
            case .refused(let name, let reason): refused[name] = reason
            case .orphan: Issue.record("no orphan expected within the grace period")
            }
        }
        #expect(offered == ["A.fhir.json", "B.json"])
        #expect(Set(refused.keys) == ["C.csv", "C.json"] && refused["C.json"]?.contains("which one it vouches for is not guessed") == true)
    }

    @Test("past the grace period a CSV without its control record, or a control record without its CSV, is an orphan")
    func orphans() throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.write("C.csv", in: root)
        try Self.write("D.ctl.json", in: root)
        let spool = SpoolFolder(root: root, orphanGrace: 60)
        #expect(try spool.scan().isEmpty)
        let later = try spool.scan(now: Date().addingTimeInterval(120))
        var orphans: [String: String] = [:]
        for entry in later {
            if case .orphan(let name, let missing, let age) = entry {
                orphans[name] = missing
                #expect(age > 60)
            }
        }
        #expect(orphans == ["C.csv": "C.ctl.json", "D.ctl.json": "D.csv or D.fhir.json or D.json"])
    }

    @Test("symbolic links, folders, unsafe names and other files are refused without being read")
    func refused() throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let outside = try Self.folder()
        defer { try? FileManager.default.removeItem(at: outside) }
        try Self.write("secret.csv", in: outside)
        try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("L.csv"), withDestinationURL: outside.appendingPathComponent("secret.csv"))
        try Self.write("L.ctl.json", in: root)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("F.csv"), withIntermediateDirectories: true)
        try Self.write("caf\u{e9}.csv", in: root)
        try Self.write("notes.txt", in: root)
        var reasons: [String: String] = [:]
        for entry in try SpoolFolder(root: root).scan() {
            switch entry {
            case .refused(let name, let reason): reasons[name] = reason
            case .snapshot(let csv, _): Issue.record("\(csv.lastPathComponent) offered")
            case .orphan: break
            }
        }
        #expect(reasons["L.csv"] == "symbolic links are never followed in the spool")
        #expect(reasons["F.csv"] == "not a regular file")
        #expect(reasons["caf\u{e9}.csv"]?.contains("outside [A-Za-z0-9._-]") == true)
        #expect(reasons["notes.txt"] == "not a snapshot (.csv, or a FHIR Bundle .json) or control record (.ctl.json)")
    }

    @Test("a pair moved to done/ keeps its names; a name already there gets a suffix, nothing is overwritten")
    func move() throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let spool = SpoolFolder(root: root)
        for round in 0..<2 {
            try Data("round \(round)".utf8).write(to: root.appendingPathComponent("A.csv"))
            try Self.write("A.ctl.json", in: root)
            try spool.move([root.appendingPathComponent("A.csv"), root.appendingPathComponent("A.ctl.json")], to: "done")
        }
        let done = root.appendingPathComponent("done")
        #expect(try FileManager.default.contentsOfDirectory(atPath: done.path).sorted() == ["A.csv", "A.csv.1", "A.ctl.json", "A.ctl.json.1"])
        #expect(try String(contentsOf: done.appendingPathComponent("A.csv.1"), encoding: .utf8) == "round 1")
        #expect(try SpoolFolder(root: root).scan().isEmpty)
    }

    @Test("a move into a folder that cannot be made names the path")
    func moveFailure() throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.write("done", in: root)   // a file where the folder should be
        try Self.write("A.csv", in: root)
        do {
            try SpoolFolder(root: root).move([root.appendingPathComponent("A.csv")], to: "done")
            Issue.record("moved into a file")
        } catch {
            #expect(error.description.contains(root.appendingPathComponent("done").path))
        }
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("A.csv").path))
    }

    @Test("a fetch folder a live fetch holds is never removed; one whose fetch ended without cleaning up is")
    func abandonedFetchFolders() throws {
        let root = try Self.folder()
        defer { try? FileManager.default.removeItem(at: root) }
        let live = try FetchFolder(root: root, prefix: "live")
        defer { live.remove() }
        // A folder left by a killed fetch: its lock file exists and nobody holds it.
        let left = root.appendingPathComponent("killed-0001")
        try FileManager.default.createDirectory(at: left, withIntermediateDirectories: true)
        try Self.write(".lock", in: left)
        try Self.write("snap.csv.part", in: left)
        // No lock file, changed just now: a fetch being set up, left alone.
        let fresh = root.appendingPathComponent("fresh-0002")
        try FileManager.default.createDirectory(at: fresh, withIntermediateDirectories: true)
        FetchFolder.removeAbandoned(under: root, logger: Logger(label: "test"))
        #expect(FileManager.default.fileExists(atPath: live.url.path))
        #expect(!FileManager.default.fileExists(atPath: left.path))
        #expect(FileManager.default.fileExists(atPath: fresh.path))
        // An hour later the one without a lock file goes too.
        FetchFolder.removeAbandoned(under: root, logger: Logger(label: "test"), now: Date().addingTimeInterval(3700))
        #expect(!FileManager.default.fileExists(atPath: fresh.path))
        #expect(FileManager.default.fileExists(atPath: live.url.path))
    }
}
