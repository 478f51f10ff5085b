import Foundation

/// Bounds that keep decoding an untrusted snapshot cheap and its memory use fixed.
///
/// Memory held by the decoder is at most one chunk plus `maximumLineBytes`, plus one entry per
/// distinct DIN for duplicate detection and `maximumRetainedRejections` rejections.
public struct SnapshotLimits: Sendable, Hashable {
    /// Longest record (header or row, excluding its line end) in bytes; a longer one, or a file
    /// with no line end within this many bytes, is refused as `lineTooLong`. Default 64 KiB.
    public var maximumLineBytes: Int
    /// Most data rows one snapshot may hold. Default 5,000,000.
    public var maximumRows: Int
    /// Largest CSV file in bytes. Default 4 GiB.
    public var maximumFileBytes: Int
    /// Largest FHIR Bundle snapshot in bytes. A Bundle is read whole (JSON has no record
    /// boundaries to stream on) and costs about 14 bytes per byte of the same units as CSV, so
    /// its cap is its own. Default 256 MiB: about 180,000 units, 18 times the national dataset's
    /// largest centre; peak memory about twice the file (measured: 101 MB for 14 MB Bundles).
    public var maximumBundleBytes: Int
    /// How far `as_of` may lie after `now`, and a row's `collected_at` after `as_of`, before it is
    /// refused (clock skew between producer and importer). Default 5 minutes.
    public var clockSkewTolerance: TimeInterval
    /// How long before `as_of` a unit may have expired and still be stored; older expiry dates are
    /// refused as default-value or epoch artefacts. Default 30 days.
    public var maximumExpiredAge: TimeInterval
    /// How many rejections `SnapshotSummary` keeps (all are returned row by row). Default 1,000.
    public var maximumRetainedRejections: Int

    /// Creates limits; every parameter has the documented default.
    public init(
        maximumLineBytes: Int = 64 * 1024, maximumRows: Int = 5_000_000, maximumFileBytes: Int = 4 << 30,
        clockSkewTolerance: TimeInterval = 300, maximumExpiredAge: TimeInterval = 30 * 86_400,
        maximumRetainedRejections: Int = 1_000, maximumBundleBytes: Int = 256 << 20
    ) {
        self.maximumBundleBytes = maximumBundleBytes
        self.maximumLineBytes = maximumLineBytes
        self.maximumRows = maximumRows
        self.maximumFileBytes = maximumFileBytes
        self.clockSkewTolerance = clockSkewTolerance
        self.maximumExpiredAge = maximumExpiredAge
        self.maximumRetainedRejections = maximumRetainedRejections
    }

    /// The defaults.
    public static let standard = SnapshotLimits()
}
