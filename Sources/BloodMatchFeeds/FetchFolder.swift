import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The folder one fetch writes into, under `var/feeds/`, held with an exclusive lock on its
/// `.lock` file for as long as the run needs it.
///
/// The lock is what tells a live fetch from an abandoned one: the kernel releases it when the
/// process ends however it ends (SIGTERM from the job's time limit, SIGKILL), so the next fetch
/// removes every folder whose lock it can take, and never another run's folder. The lock file is
/// locked under a temporary name and renamed into place, so a `.lock` that exists is already held.
public final class FetchFolder: @unchecked Sendable {
    /// The folder.
    public let url: URL
    private var descriptor: Int32

    /// Creates `root/<prefix>-<random>` and locks it.
    public init(root: URL, prefix: String) throws(FeedFileSystemError) {
        let url = root.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw FeedFileSystemError("cannot create the fetch folder \(url.path): \(error.localizedDescription)")
        }
        let temporary = url.appendingPathComponent(".lock.tmp").path
        let fd = open(temporary, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX) == 0, rename(temporary, url.appendingPathComponent(".lock").path) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            try? FileManager.default.removeItem(at: url)
            throw FeedFileSystemError("cannot lock the fetch folder \(url.path): \(reason)")
        }
        self.url = url
        self.descriptor = fd
    }

    /// Deletes the folder and everything in it, then lets go of the lock.
    public func remove() {
        try? FileManager.default.removeItem(at: url)
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Removes the folders under `root` left by fetches that ended without cleaning up (killed):
    /// those whose lock can be taken, and those without a lock file untouched for an hour.
    public static func removeAbandoned(under root: URL, logger: Logger, now: Date = Date()) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root.path) else { return }
        for name in names {
            let folder = root.appendingPathComponent(name)
            let lock = folder.appendingPathComponent(".lock").path
            let fd = open(lock, O_RDWR | O_CLOEXEC)
            if fd >= 0 {
                defer { close(fd) }
                guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { continue }   // a live fetch
            } else {
                guard let modified = (try? FileManager.default.attributesOfItem(atPath: folder.path))?[.modificationDate] as? Date,
                      now.timeIntervalSince(modified) > 3600 else { continue }
            }
            if (try? FileManager.default.removeItem(at: folder)) != nil {
                logger.warning("removed a fetch folder left by a run that did not finish", metadata: ["folder": "\(folder.path)"])
            }
        }
    }
}
