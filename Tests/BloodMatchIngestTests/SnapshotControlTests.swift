import BloodMatchIngest
import Foundation
import Testing

@Suite("Snapshot control record")
struct SnapshotControlTests {
    static let valid = #"{"format":"bloodmatch-inventory/1","centre":"DC-SYD-01","as_of":"2025-06-01T06:00:00+10:00","row_count":3,"sha256":"\#(String(repeating: "ab", count: 32))","empty_stock":false}"#

    @Test("a valid record decodes")
    func decodes() throws {
        let control = try SnapshotControl.decode(Array(Self.valid.utf8), fileName: "x.ctl.json")
        #expect(control.centre == "DC-SYD-01")
        #expect(control.asOf == Date(timeIntervalSince1970: 1_748_721_600))
        #expect(control.rowCount == 3)
        #expect(control.emptyStock == false)
    }

    @Test("schema violations name the field", arguments: [
        (#""row_count":3"#, #""row_count":-1"#, "row_count"),
        (#""row_count":3"#, #""row_count":1e3"#, "row_count"),
        (#""row_count":3"#, #""row_count":99999999999999999999"#, "row_count"),
        (#""row_count":3"#, #""row_count":03"#, "row_count"),
        (#""row_count":3"#, #""row_count":null"#, "row_count"),
        (#""empty_stock":false"#, #""empty_stock":"false""#, "empty_stock"),
        (#""empty_stock":false"#, #""empty_stock":true"#, "empty_stock"),
        (#""centre":"DC-SYD-01""#, #""centre":"../etc""#, "centre"),
        (#""centre":"DC-SYD-01""#, #""centre":"""#, "centre"),
        (#""as_of":"2025-06-01T06:00:00+10:00""#, #""as_of":"2025-06-01T06:00:00""#, "as_of"),
        (#""as_of":"2025-06-01T06:00:00+10:00""#, #""as_of":{"t":1}"#, "as_of"),
        (#""format":"bloodmatch-inventory/1","#, "", "format"),
    ])
    func refuses(original: String, replacement: String, field: String) {
        let text = Self.valid.replacingOccurrences(of: original, with: replacement)
        do {
            _ = try SnapshotControl.decode(Array(text.utf8), fileName: "x.ctl.json")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.kind == .controlRecordInvalid)
            #expect(error.field == field, "\(error)")
            #expect(error.file == "x.ctl.json")
        }
    }

    @Test("non-objects, trailing text and byte-order marks are refused", arguments: [
        "", "[]", "{", "{}x", "\u{FEFF}{}", #"{"a":[1]}"#, "null",
    ])
    func refusesNonObjects(text: String) {
        #expect(throws: SnapshotFileError.self) { try SnapshotControl.decode(Array(text.utf8), fileName: "x.ctl.json") }
    }

    @Test("the control file name sits beside the CSV")
    func controlFileName() {
        #expect(SnapshotControl.controlFileName(forSnapshot: "DC-SYD-01-20250601.csv") == "DC-SYD-01-20250601.ctl.json")
    }
}
