import BloodMatchIngest
import Foundation
import Testing

@Suite("Rejection policy")
struct RejectionPolicyTests {
    static func summary(rows: Int, rejected: Int) -> SnapshotSummary {
        SnapshotSummary(
            fileName: "a.csv", centre: "DC-1", asOf: Date(timeIntervalSince1970: 0), byteCount: 1, sha256: "",
            rowCount: rows, acceptedCount: rows - rejected, rejectedCount: rejected, expiredAtAsOfCount: 0,
            retainedRejections: [], byteOrderMarkSkipped: false)
    }

    @Test("the default loads with at most 1 % of rows rejected", arguments: [
        (100, 0, true), (100, 1, true), (100, 2, false), (99, 1, false), (0, 0, true), (1, 1, false),
    ])
    func defaultPolicy(rows: Int, rejected: Int, loads: Bool) {
        let verdict = RejectionPolicy.standard.verdict(for: Self.summary(rows: rows, rejected: rejected))
        if case .load(let accepted, let rejectedRows) = verdict {
            #expect(loads)
            #expect(accepted == rows - rejected && rejectedRows == rejected)
        } else {
            #expect(!loads)
        }
    }

    @Test("an absolute cap refuses even under the fraction")
    func absoluteCap() {
        let policy = RejectionPolicy(maximumRejectedFraction: 0.5, maximumRejectedRows: 3)
        #expect(policy.verdict(for: Self.summary(rows: 100, rejected: 4))
            == .refuse(.tooManyRejectedRows(rejected: 4, total: 100, maximumFraction: 0.5, maximumRows: 3)))
        let refusal = SnapshotRefusal.tooManyRejectedRows(rejected: 2, total: 150, maximumFraction: 0.01, maximumRows: nil)
        #expect(refusal.description == "2 of 150 rows rejected (1.33 %); the limit is 1.00 %; the whole snapshot is refused")
    }
}
