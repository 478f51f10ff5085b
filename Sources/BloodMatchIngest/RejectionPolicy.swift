/// Decides whether a snapshot that decoded without a file-level error may be loaded.
///
/// The rule: any `SnapshotFileError` refuses the whole file. Otherwise the file loads without its
/// rejected rows unless rejected rows exceed `maximumRejectedFraction` of all data rows (or
/// `maximumRejectedRows`, when set), in which case the whole file is refused and the centre keeps
/// its previous stock. In both cases every rejection is reported. A snapshot declared empty
/// (`empty_stock: true`, header only) loads as an empty stock.
public struct RejectionPolicy: Sendable, Hashable {
    /// Largest share of rejected rows that still loads, 0…1. Default 0.01 (1 %).
    public var maximumRejectedFraction: Double
    /// Optional absolute cap on rejected rows; nil means only the fraction applies.
    public var maximumRejectedRows: Int?

    /// Creates a policy; the defaults load with at most 1 % rejected rows.
    public init(maximumRejectedFraction: Double = 0.01, maximumRejectedRows: Int? = nil) {
        self.maximumRejectedFraction = maximumRejectedFraction
        self.maximumRejectedRows = maximumRejectedRows
    }

    /// The default policy: at most 1 % of rows rejected.
    public static let standard = RejectionPolicy()

    /// The verdict for a snapshot whose decoding finished.
    public func verdict(for summary: SnapshotSummary) -> SnapshotVerdict {
        let total = summary.rowCount
        let rejected = summary.rejectedCount
        let overFraction = total > 0 && Double(rejected) > Double(total) * maximumRejectedFraction
        let overCount = maximumRejectedRows.map { rejected > $0 } ?? false
        if overFraction || overCount {
            return .refuse(.tooManyRejectedRows(
                rejected: rejected, total: total,
                maximumFraction: maximumRejectedFraction, maximumRows: maximumRejectedRows))
        }
        return .load(acceptedRows: summary.acceptedCount, rejectedRows: rejected)
    }

    /// The verdict for a snapshot whose decoding failed: always refuse.
    public func verdict(for error: SnapshotFileError) -> SnapshotVerdict {
        .refuse(.fileError(error))
    }
}

/// What to do with a decoded snapshot.
public enum SnapshotVerdict: Sendable, Hashable {
    /// Replace the centre's stock with the accepted rows; the rejected rows are left out.
    case load(acceptedRows: Int, rejectedRows: Int)
    /// Keep the centre's previous stock; nothing from this file is loaded.
    case refuse(SnapshotRefusal)
}

/// Why a whole snapshot was refused.
public enum SnapshotRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// A file-level problem (encoding, structure, header, checksum, count, limits).
    case fileError(SnapshotFileError)
    /// More rows rejected than the policy allows.
    case tooManyRejectedRows(rejected: Int, total: Int, maximumFraction: Double, maximumRows: Int?)

    /// A sentence for logs and the dispatcher.
    public var description: String {
        switch self {
        case .fileError(let error):
            return error.description
        case .tooManyRejectedRows(let rejected, let total, let fraction, let rows):
            let percent = total > 0 ? Double(rejected) * 100 / Double(total) : 0
            var text = "\(rejected) of \(total) rows rejected (\(percent.formatted2) %); the limit is \((fraction * 100).formatted2) %"
            if let rows { text += " or \(rows) rows" }
            return text + "; the whole snapshot is refused"
        }
    }
}

extension Double {
    /// Two decimals without Foundation formatting.
    var formatted2: String {
        let hundredths = (self * 100).rounded()
        let whole = Int(hundredths / 100)
        let rest = Int(abs(hundredths).truncatingRemainder(dividingBy: 100))
        return "\(whole).\(rest < 10 ? "0" : "")\(rest)"
    }
}
