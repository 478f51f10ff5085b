import BloodMatchCore
import BloodMatchIngest
import Foundation
import Testing

/// Snapshots built in memory: oversized inputs, limits and streaming behaviour.
enum SnapshotBuilder {
    static let header = Array("din,product_code,component,abo,rhd,collected_at,expires_at,site_id,status,attributes\n".utf8)
    static let asOf = Date(timeIntervalSince1970: 1_748_757_600)  // 2025-06-01T06:00:00Z
    static let now = asOf.addingTimeInterval(3600)

    static func row(_ number: Int) -> [UInt8] {
        let din = "W000025" + String(repeating: "0", count: 6 - String(number).count) + String(number)
        return Array("\(din),E0382V00,RBC,O,NEG,2025-05-20T08:00:00Z,2025-07-01T08:00:00Z,DC-SYD-01,AVAILABLE,IRRADIATED\n".utf8)
    }

    static func control(for bytes: [UInt8], rows: Int) -> SnapshotControl {
        SnapshotControl(
            centre: "DC-SYD-01", asOf: asOf, rowCount: rows, sha256: SnapshotControl.checksum(of: bytes), emptyStock: rows == 0)
    }
}

@Suite("Inventory snapshot decoder")
struct InventorySnapshotDecoderTests {
    @Test("a valid snapshot yields units with the parsed values")
    func decodesUnits() throws {
        let csv = SnapshotBuilder.header + SnapshotBuilder.row(1) + SnapshotBuilder.row(2)
        let completion = try InventorySnapshotDecoder.decode(
            csv, fileName: "DC-SYD-01.csv", control: SnapshotBuilder.control(for: csv, rows: 2), now: SnapshotBuilder.now)
        #expect(completion.summary.acceptedCount == 2)
        guard case .accepted(let unit, let line) = try #require(completion.rows.first) else {
            Issue.record("first row rejected")
            return
        }
        #expect(line == 2)
        #expect(unit.din.value == "W000025000001")
        #expect(unit.productCode == "E0382V00")
        #expect(unit.component == .redCells)
        #expect(unit.group == .oNegative)
        #expect(unit.collectedAt == Date(timeIntervalSince1970: 1_747_728_000))
        #expect(unit.expiresAt.timeIntervalSince(unit.collectedAt) == 42 * 86_400)
        #expect(unit.siteID == "DC-SYD-01")
        #expect(unit.status == .available)
        #expect(unit.attributes == AttributeSet(.irradiated))
    }

    @Test("a unit is its DIN and product code: one donation's components load, the same pair twice is duplicateUnit")
    func unitIsDINAndProductCode() throws {
        let rows = [
            "W000025000001,E0382V00,RBC,O,NEG,2025-05-29T08:00:00Z,2025-07-10T08:00:00Z,DC-SYD-01,AVAILABLE,",
            "W000025000001,E2555V00,PLASMA,O,NEG,2025-05-29T08:00:00Z,2026-05-29T08:00:00Z,DC-SYD-01,AVAILABLE,",
            "W000025000001,E3072V00,PLT,O,NEG,2025-05-29T08:00:00Z,2025-06-03T08:00:00Z,DC-SYD-01,QUARANTINED,",
            // The plasma again, as another status: still the same unit.
            "W000025000001,E2555V00,PLASMA,O,NEG,2025-05-29T08:00:00Z,2026-05-29T08:00:00Z,DC-SYD-01,RESERVED,",
            // Another DIN with the red cells' product code is another unit.
            "W000025000002,E0382V00,RBC,O,NEG,2025-05-29T08:00:00Z,2025-07-10T08:00:00Z,DC-SYD-01,AVAILABLE,",
        ]
        let csv = SnapshotBuilder.header + Array(rows.map { $0 + "\n" }.joined().utf8)
        let control = SnapshotBuilder.control(for: csv, rows: rows.count)
        // Whole, and a byte at a time: the first line of each unit survives the chunk boundaries.
        var chunked = InventorySnapshotDecoder(fileName: "DC-SYD-01.csv", control: control, now: SnapshotBuilder.now)
        var chunkedRows: [DecodedRow] = []
        for byte in csv { chunkedRows += try chunked.consume([byte]) }
        chunkedRows += try chunked.finish().rows
        let whole = try InventorySnapshotDecoder.decode(csv, fileName: "DC-SYD-01.csv", control: control, now: SnapshotBuilder.now)
        #expect(chunkedRows == whole.rows)
        #expect(whole.summary.acceptedCount == 4 && whole.summary.rejectedCount == 1)
        let accepted = whole.rows.compactMap { row -> String? in
            guard case .accepted(let unit, let line) = row else { return nil }
            return "\(line) \(unit.din.value) \(unit.productCode) \(unit.component.rawValue)"
        }
        #expect(accepted == [
            "2 W000025000001 E0382V00 RBC", "3 W000025000001 E2555V00 PLASMA", "4 W000025000001 E3072V00 PLT",
            "6 W000025000002 E0382V00 RBC",
        ])
        let rejection = try #require(whole.summary.retainedRejections.first)
        #expect(rejection.line == 5)
        #expect(rejection.field == "din")
        #expect(rejection.reason == .duplicateUnit)
        #expect(rejection.message == "DIN W000025000001 with product code E2555V00 already appears at line 3; each unit (DIN and product code) must appear once")
    }

    @Test("a 10 MB line is refused after reading little more than the line limit")
    func tenMegabyteLineIsRefused() throws {
        var csv = SnapshotBuilder.header
        csv += [UInt8](repeating: UInt8(ascii: "A"), count: 10 * 1024 * 1024)
        csv += [UInt8(ascii: "\n")]
        var decoder = InventorySnapshotDecoder(
            fileName: "big.csv", control: SnapshotBuilder.control(for: csv, rows: 1), now: SnapshotBuilder.now)
        let chunk = 1024 * 1024
        var thrown: SnapshotFileError?
        var offset = 0
        while offset < csv.count && thrown == nil {
            do {
                _ = try decoder.consume(csv[offset..<min(offset + chunk, csv.count)])
                #expect(decoder.bufferedByteCount <= SnapshotLimits.standard.maximumLineBytes + chunk)
            } catch {
                thrown = error
            }
            offset += chunk
        }
        let error = try #require(thrown)
        #expect(error.kind == .lineTooLong)
        #expect(error.line == 2)
        #expect(offset <= 2 * chunk)
    }

    @Test("a gigabyte-scale stream without line ends is refused with bounded memory")
    func endlessLineIsRefused() throws {
        var decoder = InventorySnapshotDecoder(
            fileName: "endless.csv", control: SnapshotBuilder.control(for: [], rows: 1), now: SnapshotBuilder.now)
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1024 * 1024)
        var fed = 0
        var thrown: SnapshotFileError?
        while fed < 1024 && thrown == nil {
            do {
                _ = try decoder.consume(chunk)
                #expect(decoder.bufferedByteCount <= SnapshotLimits.standard.maximumLineBytes + chunk.count)
            } catch {
                thrown = error
            }
            fed += 1
        }
        #expect(thrown?.kind == .lineTooLong)
        #expect(thrown?.line == 1)
        #expect(fed == 1)
    }

    @Test("an unclosed quote that swallows the file is reported with its line")
    func runawayQuoteIsNamed() throws {
        var csv = SnapshotBuilder.header + Array("\"W000025000001,".utf8)
        for number in 2...2_000 { csv += SnapshotBuilder.row(number) }
        do {
            _ = try InventorySnapshotDecoder.decode(
                csv, fileName: "q.csv", control: SnapshotBuilder.control(for: csv, rows: 1_999), now: SnapshotBuilder.now,
                limits: SnapshotLimits(maximumLineBytes: 4096))
            Issue.record("accepted a runaway quote")
        } catch {
            #expect(error.kind == .lineTooLong)
            #expect(error.message.contains("quote opened in field din at line 2"))
        }
    }

    @Test("more rows than the row cap refuse the file")
    func rowCapIsEnforced() throws {
        var csv = SnapshotBuilder.header
        for number in 1...3 { csv += SnapshotBuilder.row(number) }
        let limits = SnapshotLimits(maximumRows: 2)
        #expect(throws: SnapshotFileError.self) {
            _ = try InventorySnapshotDecoder.decode(
                csv, fileName: "cap.csv", control: SnapshotBuilder.control(for: csv, rows: 2), now: SnapshotBuilder.now, limits: limits)
        }
        do {
            _ = try InventorySnapshotDecoder.decode(
                csv, fileName: "cap.csv", control: SnapshotBuilder.control(for: csv, rows: 2), now: SnapshotBuilder.now, limits: limits)
        } catch {
            #expect(error.kind == .rowCapExceeded)
            #expect(error.line == 4)
        }
        do {
            _ = try InventorySnapshotDecoder.decode(
                csv, fileName: "cap.csv", control: SnapshotBuilder.control(for: csv, rows: 3), now: SnapshotBuilder.now, limits: limits)
        } catch {
            #expect(error.kind == .rowCapExceeded)
            #expect(error.field == "row_count")
        }
    }

    @Test("after an error every call throws decoderClosed")
    func decoderClosesAfterError() throws {
        let csv = Array("din;abo\n".utf8)
        var decoder = InventorySnapshotDecoder(
            fileName: "x.csv", control: SnapshotBuilder.control(for: csv, rows: 0), now: SnapshotBuilder.now)
        #expect(throws: SnapshotFileError.self) { _ = try decoder.consume(csv) }
        do {
            _ = try decoder.finish()
            Issue.record("finish succeeded after an error")
        } catch {
            #expect(error.kind == .decoderClosed)
            #expect(error.message.contains("wrongDelimiter"))
        }
    }

    @Test("the summary keeps at most the configured number of rejections but counts all")
    func retainedRejectionsAreCapped() throws {
        var csv = SnapshotBuilder.header
        for _ in 1...5 { csv += Array("bad\n".utf8) }
        let completion = try InventorySnapshotDecoder.decode(
            csv, fileName: "r.csv", control: SnapshotBuilder.control(for: csv, rows: 5), now: SnapshotBuilder.now,
            limits: SnapshotLimits(maximumRetainedRejections: 2))
        #expect(completion.summary.rejectedCount == 5)
        #expect(completion.summary.retainedRejections.count == 2)
        #expect(completion.rows.count == 5)
    }

    @Test("checksum matches a known SHA-256")
    func checksumIsSHA256() {
        #expect(SnapshotControl.checksum(of: Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("descriptions name file, line and field for a dispatcher")
    func descriptionsAreReadable() throws {
        let csv = SnapshotBuilder.header + Array("W000025000001,E0382V00,RBC,0,NEG,2025-05-20T08:00:00Z,2025-07-01T08:00:00Z,DC-SYD-01,AVAILABLE,\n".utf8)
        let completion = try InventorySnapshotDecoder.decode(
            csv, fileName: "DC-SYD-01.csv", control: SnapshotBuilder.control(for: csv, rows: 1), now: SnapshotBuilder.now)
        guard case .rejected(let rejection) = try #require(completion.rows.first) else {
            Issue.record("row accepted")
            return
        }
        #expect(rejection.description == "DC-SYD-01.csv:2: field abo: abo '0' is the digit zero; group O is the letter O [unknownABO]")
        let error = SnapshotFileError(kind: .invalidUTF8, file: "a.csv", line: 3, field: "din", message: "bad byte")
        #expect(error.description == "a.csv:3: field din: bad byte [invalidUTF8]")
    }
}
