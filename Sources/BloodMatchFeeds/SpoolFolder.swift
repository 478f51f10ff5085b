import BloodMatchIngest
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A spool folder that distribution-centre feeds drop snapshots into.
///
/// A snapshot is complete when both `NAME.csv` (or a FHIR Bundle `NAME.json`) and `NAME.ctl.json`
/// are regular files directly in the folder: writers put the CSV first and the control record last, each through a temporary
/// name and a rename, and the control record's row count and SHA-256 catch a CSV still being
/// written. Hidden files, temporary files, symlinks, names outside `[A-Za-z0-9._-]` and anything
/// that is not a regular file are never read. After an import, the pair is moved into `done/` or
/// `failed/` by rename (atomic on one file system).
///
/// A CSV whose control record has not arrived within `orphanGrace` of its last change (or a
/// control record without its CSV) is reported as an orphan: it is never imported, and it stays
/// in place in case its writer is only slow, but it is no longer silently waited for.
public struct SpoolFolder: Sendable {
    /// The folder feeds drop snapshots into.
    public let root: URL
    /// How long a CSV may wait for its control record before it is reported.
    public var orphanGrace: TimeInterval = 600

    /// A spool at `root`; files waiting for their other half past `orphanGrace` seconds are reported.
    public init(root: URL, orphanGrace: TimeInterval = 600) {
        self.root = root
        self.orphanGrace = orphanGrace
    }

    /// A snapshot pair ready to import, a file that is refused without being read, or one that has
    /// waited for its other half past the grace period.
    public enum Entry: Sendable {
        case snapshot(csv: URL, control: URL)
        case refused(name: String, reason: String)
        /// `name` has waited `age` seconds (since its last change) for `missing`.
        case orphan(name: String, missing: String, age: TimeInterval)
    }

    /// Whether a file name is safe to open: `[A-Za-z0-9][A-Za-z0-9._-]{0,199}` (no path
    /// separators, no `..` traversal, no Unicode look-alikes such as U+2215, no NUL).
    public static func isSafe(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 200, isAlnum(first), !name.contains("..") else { return false }
        return bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// Whether a name is a snapshot: `NAME.csv`, or a FHIR Bundle `NAME.json` / `NAME.fhir.json`.
    static func isSnapshotName(_ name: String) -> Bool {
        name.hasSuffix(".csv") || FHIRBundleSnapshotDecoder.isBundle(name)
    }

    /// The snapshot names one control record `STEM.ctl.json` can vouch for.
    static func dataNames(_ stem: String) -> [String] { [stem + ".csv", stem + ".fhir.json", stem + ".json"] }

    private static func isAlnum(_ b: UInt8) -> Bool {
        (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b)
    }

    /// The complete snapshots, oldest `as_of` first by name, the files refused, and the orphans.
    public func scan(now: Date = Date()) throws -> [Entry] {
        let names = try FileManager.default.contentsOfDirectory(atPath: root.path).sorted()
        var entries: [Entry] = []
        let present = Set(names)
        for name in names {
            if name == "done" || name == "failed" || name.hasPrefix(".") || name.hasSuffix(".tmp") { continue }
            guard Self.isSafe(name) else {
                entries.append(.refused(name: name, reason: "file name has characters outside [A-Za-z0-9._-] or is too long"))
                continue
            }
            let path = root.appendingPathComponent(name).path
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFLNK {
                entries.append(.refused(name: name, reason: "symbolic links are never followed in the spool"))
                continue
            }
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                entries.append(.refused(name: name, reason: "not a regular file"))
                continue
            }
            let age = now.timeIntervalSince1970 - (Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
            if name.hasSuffix(".ctl.json") {
                let stem = String(name.dropLast(9))
                if !Self.dataNames(stem).contains(where: present.contains) && age > orphanGrace {
                    entries.append(.orphan(name: name, missing: Self.dataNames(stem).joined(separator: " or "), age: age))
                }
            } else if Self.isSnapshotName(name) {
                let control = SnapshotControl.controlFileName(forSnapshot: name)
                guard present.contains(control) else {
                    // Still arriving (the control record comes last), unless it has waited too long.
                    if age > orphanGrace { entries.append(.orphan(name: name, missing: control, age: age)) }
                    continue
                }
                let twins = Self.dataNames(String(control.dropLast(9))).filter(present.contains)
                if twins.count > 1 {
                    entries.append(.refused(name: name, reason: "\(twins.joined(separator: " and ")) share one control record \(control); which one it vouches for is not guessed"))
                    continue
                }
                let controlPath = root.appendingPathComponent(control).path
                var controlInfo = stat()
                guard lstat(controlPath, &controlInfo) == 0, (controlInfo.st_mode & S_IFMT) == S_IFREG else {
                    entries.append(.refused(name: control, reason: "control record is not a regular file"))
                    continue
                }
                entries.append(.snapshot(csv: root.appendingPathComponent(name), control: root.appendingPathComponent(control)))
            } else {
                entries.append(.refused(name: name, reason: "not a snapshot (.csv, or a FHIR Bundle .json) or control record (.ctl.json)"))
            }
        }
        return entries
    }

    /// Moves files into `done/` or `failed/` under the spool, keeping names (suffixing on clash).
    public func move(_ files: [URL], to folder: String) throws(FeedFileSystemError) {
        let target = root.appendingPathComponent(folder)
        do {
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        } catch {
            throw FeedFileSystemError("cannot create \(target.path): \(String(cString: strerror(errno)))")
        }
        for file in files where FileManager.default.fileExists(atPath: file.path) {
            var destination = target.appendingPathComponent(file.lastPathComponent)
            var n = 1
            while FileManager.default.fileExists(atPath: destination.path) {
                destination = target.appendingPathComponent("\(file.lastPathComponent).\(n)")
                n += 1
            }
            guard rename(file.path, destination.path) == 0 else {
                throw FeedFileSystemError("cannot move \(file.path) to \(destination.path): \(String(cString: strerror(errno)))")
            }
        }
    }
}
