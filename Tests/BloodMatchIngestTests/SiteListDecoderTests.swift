import BloodMatchCore
import BloodMatchIngest
import Testing

@Suite("Site list decoder")
struct SiteListDecoderTests {
    static let header = "site_id,name,kind,latitude,longitude,region\n"

    @Test("sites decode, quoted names keep commas, formula text stays text")
    func decodes() throws {
        let text = Self.header
            + "DC-SYD-01,Sydney Processing Centre,distribution_centre,-33.8688,151.2093,NSW\r\n"
            + "H-0042,\"St Vincent's Hospital, Darlinghurst\",hospital,-33.8807,151.2208,NSW\n"
            + "H-0043,=SUM(1),hospital,-37.8136,144.9631,VIC"
        let sites = try SiteListDecoder.decode(Array(text.utf8), fileName: "sites.csv")
        #expect(sites.count == 3)
        #expect(sites[0] == Site(id: "DC-SYD-01", name: "Sydney Processing Centre", kind: .distributionCentre, location: GeoPoint(latitude: -33.8688, longitude: 151.2093), region: "NSW"))
        #expect(sites[1].name == "St Vincent's Hospital, Darlinghurst")
        #expect(sites[2].name == "=SUM(1)")
    }

    @Test("bad rows refuse the list, naming line and field", arguments: [
        ("DC-1,A,distribution_centre,91,0,R", SiteListError.Kind.coordinate, Optional("latitude")),
        ("DC-1,A,distribution_centre,1e3,0,R", .coordinate, "latitude"),
        ("DC-1,A,distribution_centre,NaN,0,R", .coordinate, "latitude"),
        ("DC-1,A,distribution_centre,0,\"151,2\",R", .coordinate, "longitude"),
        ("DC-1,A,distribution_centre,0,0x10,R", .coordinate, "longitude"),
        ("DC-1,A,warehouse,0,0,R", .siteKind, "kind"),
        ("DC 1,A,hospital,0,0,R", .siteIdentifier, "site_id"),
        ("DC-1,,hospital,0,0,R", .text, "name"),
        ("DC-1, A,hospital,0,0,R", .text, "name"),
        ("DC-1,A,hospital,0,0", .wrongFieldCount, nil),
    ])
    func refuses(row: String, kind: SiteListError.Kind, field: String?) {
        do {
            _ = try SiteListDecoder.decode(Array((Self.header + row + "\n").utf8), fileName: "sites.csv")
            Issue.record("accepted \(row)")
        } catch {
            #expect(error.kind == kind, "\(error)")
            #expect(error.field == field, "\(error)")
            #expect(error.line == 2)
        }
    }

    @Test("duplicate site ids and header problems refuse the list")
    func refusesStructure() {
        let duplicate = Self.header + "H-1,A,hospital,0,0,R\nH-1,B,hospital,0,0,R\n"
        #expect(throws: SiteListError.self) { try SiteListDecoder.decode(Array(duplicate.utf8), fileName: "s.csv") }
        let badHeader = "site_id,name,kind,lat,lon,region\nH-1,A,hospital,0,0,R\n"
        #expect(throws: SiteListError.self) { try SiteListDecoder.decode(Array(badHeader.utf8), fileName: "s.csv") }
        #expect(throws: SiteListError.self) { try SiteListDecoder.decode([UInt8](), fileName: "s.csv") }
        #expect(throws: SiteListError.self) { try SiteListDecoder.decode(Array("site_id,name\r".utf8), fileName: "s.csv") }
    }
}
