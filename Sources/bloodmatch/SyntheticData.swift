import BloodMatchCore
import Foundation

/// A city from `Data/cities.csv` (GeoNames, CC BY 4.0).
struct City: Sendable {
    var geonameID: Int
    var name: String
    var country: String
    var admin1: String
    var location: GeoPoint
    var population: Int

    /// Reads the committed city table.
    static func load(from path: String) throws -> [City] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var cities: [City] = []
        for (n, line) in text.split(separator: "\n").enumerated() where n > 0 {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count == 7, let id = Int(f[0]), let lat = Double(f[4]), let lon = Double(f[5]), let pop = Int(f[6]) else {
                throw ValidationFailure("\(path):\(n + 1): malformed city row")
            }
            cities.append(City(geonameID: id, name: String(f[1]), country: String(f[2]), admin1: String(f[3]),
                               location: GeoPoint(latitude: lat, longitude: lon), population: pop))
        }
        return cities
    }
}

/// A plain error with a message, for the CLI's own checks.
/// Builds realistic synthetic sites and stock for demos, tests and benchmarks.
///
/// Frequencies are illustrative, chosen to look like a national blood service:
/// - ABO split O 47 %, A 42 %, B 8 %, AB 3 % (UK donor mix, JPAC-HB Table 2.1), RhD-negative 15 %
///   of each group (illustrative; gives O RhD-negative ≈ 7 %, close to the 6.5 % Lifeblood
///   reports for Australia, LB-ONEG).
/// - Stock comes as donations (`donationShapes`): one DIN per donation, its components sharing the
///   donor's group, donor attributes and collection time, each with its own product code, shelf life
///   and expiry; the divisions of a split product differ by the product code's last two characters
///   (`A0`, `B0`, …; `00` undivided; ISBT 128 ST-001 product code, Data/SOURCES.md). Unit shares
///   come out as before: RBC ≈ 64 %, PLASMA 18 %, PLT 11 %, CRYO 5 %, WB 2 %.
/// - Shelf lives: RBC 42 days (US additive solution, CFR610) or 35 days (UK maximum, LH);
///   PLT 5 days, or 7 with bacterial screening (UKBSQR Sch. 4); PLASMA and CRYO 365 days frozen
///   (CFR610); WB 21 days (CPD, CFR610). Irradiated RBC are irradiated within 14 days of collection
///   and expire at the earlier of the original date and 14 days after irradiation (JPAC-RB, the
///   stricter rule that `Data/policy.json` applies).
/// - Product codes are illustrative ISBT 128 shapes; the real Product Description Code table is
///   ICCBBA-licensed (Data/SOURCES.md §S15). Facility codes (FIN) are synthetic.
struct SyntheticDataGenerator {
    var seed: UInt64
    var siteCount: Int
    var unitCount: Int
    var asOf: Date
    var countries: Set<String>
    var distributionCentreFraction = 0.2

    static let aboShares: [(ABO, Double)] = [(.O, 0.47), (.A, 0.42), (.B, 0.08), (.AB, 0.03)]
    static let rhdNegativeShare = 0.15
    static let productCodes: [Component: [String]] = [
        .redCells: ["E0382V00", "E4556V00", "E0336V00"], .platelets: ["E2964V00", "E3085V00"],
        .plasma: ["E2555V00", "E0701V00"], .cryoprecipitate: ["E3587V00"], .wholeBlood: ["E0001V00"],
    ]
    /// Division characters of the bags of a split product, in order (ISBT 128 ST-001 product code).
    static let divisionCodes = ["A0", "B0", "C0", "D0"]

    /// What of one donation sits in a centre's stock.
    struct DonationShape: Sendable {
        /// The components in stock, one unit each, except that `bags` may divide the first.
        var components: [Component]
        /// Into how many bags the first component is divided, with the share of each count; nil: never.
        var bags: [(Int, Double)]?
    }

    /// Shares of donations by what of them is in stock (illustrative).
    ///
    /// Whole blood is separated into red cells and plasma, and for some into a platelet
    /// concentrate (the platelet-rich-plasma route keeps the donation's DIN; a buffy-coat pool of
    /// several donations would get a DIN of its own, which the generator does not model). A
    /// donation with one component in stock is one whose other components went elsewhere (plasma
    /// for fractionation) or have left stock: frozen plasma and cryoprecipitate keep a year, red
    /// cells five or six weeks. Apheresis platelet collections are divided into up to three bags;
    /// a few red-cell units into paediatric packs. About one donation in five has two or more units
    /// in stock.
    static let donationShapes: [(DonationShape, Double)] = [
        (DonationShape(components: [.redCells]), 0.620),
        (DonationShape(components: [.redCells, .plasma]), 0.100),
        (DonationShape(components: [.redCells, .plasma, .platelets]), 0.040),
        (DonationShape(components: [.redCells, .cryoprecipitate]), 0.025),
        (DonationShape(components: [.redCells], bags: [(3, 0.5), (4, 0.5)]), 0.007),
        (DonationShape(components: [.wholeBlood]), 0.025),
        (DonationShape(components: [.platelets], bags: [(1, 0.4), (2, 0.4), (3, 0.2)]), 0.056),
        (DonationShape(components: [.plasma]), 0.089),
        (DonationShape(components: [.cryoprecipitate]), 0.038),
    ]

    /// Country names for addresses, by ISO 3166-1 code.
    static let countryNames = ["AU": "Australia", "US": "United States"]
    /// First-level region names for addresses, by country and GeoNames admin1 code (the codes in
    /// `Data/cities.csv`; GeoNames admin1 code list, CC BY 4.0). A code missing here is written as is.
    static let regionNames: [String: [String: String]] = [
        "AU": ["01": "Australian Capital Territory", "02": "New South Wales", "03": "Northern Territory", "04": "Queensland",
               "05": "South Australia", "06": "Tasmania", "07": "Victoria", "08": "Western Australia"],
        "US": ["AK": "Alaska", "AL": "Alabama", "AR": "Arkansas", "AZ": "Arizona", "CA": "California", "CO": "Colorado",
               "CT": "Connecticut", "DC": "District of Columbia", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
               "HI": "Hawaii", "IA": "Iowa", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "KS": "Kansas",
               "KY": "Kentucky", "LA": "Louisiana", "MA": "Massachusetts", "MD": "Maryland", "ME": "Maine",
               "MI": "Michigan", "MN": "Minnesota", "MO": "Missouri", "MS": "Mississippi", "MT": "Montana",
               "NC": "North Carolina", "ND": "North Dakota", "NE": "Nebraska", "NH": "New Hampshire", "NJ": "New Jersey",
               "NM": "New Mexico", "NV": "Nevada", "NY": "New York", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
               "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
               "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VA": "Virginia", "VT": "Vermont", "WA": "Washington",
               "WI": "Wisconsin", "WV": "West Virginia", "WY": "Wyoming"],
    ]

    /// A city-level postal address, `City, Region, Country` (no street: the sites are synthetic).
    static func address(of city: City) -> String {
        let region = city.admin1.isEmpty ? nil : regionNames[city.country]?[city.admin1] ?? city.admin1
        return [city.name, region, countryNames[city.country] ?? city.country].compactMap { $0 }.joined(separator: ", ")
    }

    /// Chooses sites among the cities, weighted by population without replacement; the largest
    /// chosen cities host the distribution centres.
    func makeSites(cities: [City]) -> [Site] {
        var rng = SplitMix64(seed: seed)
        let pool = cities.filter { countries.contains($0.country) }
        // Efraimidis–Spirakis weighted sampling without replacement.
        var keyed = pool.map { city -> (Double, City) in
            let u = max(rng.unit(), 1e-300)
            return (log(u) / Double(city.population), city)
        }
        keyed.sort { $0.0 > $1.0 }
        let chosen = keyed.prefix(siteCount).map(\.1).sorted { ($0.population, $1.geonameID) > ($1.population, $0.geonameID) }
        let centres = max(1, Int((Double(chosen.count) * distributionCentreFraction).rounded()))
        var dcNumber = 0
        var hNumber = 0
        return chosen.enumerated().map { index, city in
            let isCentre = index < centres
            // Place sites a few km from the city centre so a centre and a hospital never coincide.
            let jitterLat = (rng.unit() - 0.5) * 0.06
            let jitterLon = (rng.unit() - 0.5) * 0.06
            let location = GeoPoint(latitude: (city.location.latitude + jitterLat).rounded(toPlaces: 6),
                                    longitude: (city.location.longitude + jitterLon).rounded(toPlaces: 6))
            let region = "\(city.country)-\(city.admin1)"
            if isCentre {
                dcNumber += 1
                return Site(id: String(format: "DC%03d", dcNumber), name: "\(city.name) Distribution Centre",
                            kind: .distributionCentre, location: location, region: region, address: Self.address(of: city))
            } else {
                hNumber += 1
                return Site(id: String(format: "H%04d", hNumber), name: "\(city.name) Hospital \(hNumber)",
                            kind: .hospital, location: location, region: region, address: Self.address(of: city))
            }
        }
    }

    /// Generates the stock of every distribution centre as of `asOf`, shared out by population rank.
    ///
    /// Each centre gets exactly its share of units, drawn donation by donation (the last donation
    /// may lose components to fit); a donation's components stay at its centre, so no DIN and
    /// product code appears twice. Throws rather than reuse a DIN: a centre's share must fit the
    /// six-digit sequence of one facility and year, and there can be at most 9,999 centres
    /// (four-digit synthetic FINs).
    func makeUnits(sites: [Site]) throws -> [String: [InventoryUnit]] {
        var rng = SplitMix64(seed: seed &+ 0x5EED)
        let centres = sites.filter { $0.kind == .distributionCentre }
        guard !centres.isEmpty else { return [:] }
        // Larger centres (earlier in the list) hold more stock: weight 1/sqrt(rank).
        let weights = centres.indices.map { 1 / Double($0 + 1).squareRoot() }
        let total = weights.reduce(0, +)
        var result: [String: [InventoryUnit]] = [:]
        var assigned = 0
        for (index, centre) in centres.enumerated() {
            let share = index == centres.count - 1 ? unitCount - assigned : Int(Double(unitCount) * weights[index] / total)
            assigned += share
            guard index < 9_999, share < 1_000_000 else {
                throw ValidationFailure("\(share) units at centre \(centre.id) (centre \(index + 1) of \(centres.count)) do not fit unique synthetic DINs; use more sites or fewer units")
            }
            let fin = String(format: "B%04d", index + 1)
            var units: [InventoryUnit] = []
            units.reserveCapacity(share)
            var sequence = 0
            while units.count < share {
                try appendDonation(fin: fin, sequence: sequence, siteID: centre.id, room: share - units.count, to: &units, rng: &rng)
                sequence += 1
            }
            result[centre.id] = units
        }
        return result
    }

    /// Appends the units in stock of one donation, at most `room` of them.
    private func appendDonation(
        fin: String, sequence: Int, siteID: String, room: Int, to units: inout [InventoryUnit], rng: inout SplitMix64
    ) throws {
        let shape = pick(Self.donationShapes, &rng)
        let abo = pick(Self.aboShares, &rng)
        let rhd: RhD = rng.unit() < Self.rhdNegativeShare ? .negative : .positive
        // Each component its product code and shelf life; the bags of a split share both.
        var parts: [(component: Component, code: String, shelfDays: Double)] = []
        for (position, component) in shape.components.enumerated() {
            let codes = Self.productCodes[component] ?? ["E0001V00"]
            let code = codes[Int(rng.next() % UInt64(codes.count))]
            let shelfDays: Double
            switch component {
            case .redCells: shelfDays = rng.unit() < 0.85 ? 42 : 35
            case .platelets: shelfDays = rng.unit() < 0.6 ? 5 : 7
            case .plasma, .cryoprecipitate: shelfDays = 365
            case .wholeBlood: shelfDays = 21
            }
            let bags = position == 0 ? shape.bags.map { pick($0, &rng) } ?? 1 : 1
            if bags == 1 {
                parts.append((component, code, shelfDays))
            } else {
                for bag in 0..<bags { parts.append((component, String(code.prefix(6)) + Self.divisionCodes[bag], shelfDays)) }
            }
        }
        // The donation's age spreads over the shortest shelf life among its units in stock, with a
        // few of those already expired (stored, never offered); the longer-lived ones are in date.
        let shortestShelfDays = parts.map(\.shelfDays).min() ?? 0
        let ageDays = rng.unit() * shortestShelfDays * 1.03
        let collected = asOf.addingTimeInterval(-ageDays * 86_400).roundedToSecond
        let year = Calendar.utc.component(.year, from: collected) % 100
        let din = try DonationNumber(parsing: fin + String(format: "%02d%06d", year, sequence))
        // The donor's attributes hold for every component of the donation.
        let cmvNegative = rng.unit() < 0.20
        let kNegative = rng.unit() < 0.30
        let hbsNegative = rng.unit() < 0.05
        let titreRoll = rng.unit()
        // A quarantine (a donor query, a look-back) holds the whole donation.
        let quarantined = rng.unit() < 0.04
        for part in parts.prefix(room) {
            let component = part.component
            var expires = collected.addingTimeInterval(part.shelfDays * 86_400)
            var attributes = AttributeSet()
            let cellular = component == .redCells || component == .platelets || component == .wholeBlood
            if cellular, rng.unit() < 0.92 { attributes.insert(.leukoreduced) }
            if cellular, rng.unit() < 0.10 {
                attributes.insert(.irradiated)
                if component == .redCells {
                    // Irradiated within 14 days of collection; expiry = min(original, irradiation + 14 d) (JPAC-RB).
                    let irradiatedAt = collected.addingTimeInterval(rng.unit() * min(ageDays, 14) * 86_400)
                    expires = min(expires, irradiatedAt.addingTimeInterval(14 * 86_400)).roundedToSecond
                }
            }
            if cellular, cmvNegative { attributes.insert(.cmvNegative) }
            if component == .redCells {
                if kNegative { attributes.insert(.kNegative) }
                if hbsNegative { attributes.insert(.hbsNegative) }
                if rng.unit() < 0.005 { attributes.insert(.washed) }
            }
            if component == .platelets || component == .plasma, titreRoll < 0.3 { attributes.insert(.lowTitre) }
            if component == .wholeBlood, abo == .O, titreRoll < 0.8 { attributes.insert(.lowTitre) }
            // 90 % available, 6 % reserved, 4 % quarantined, as for single units before.
            let status: UnitStatus = quarantined ? .quarantined : rng.unit() < 0.0625 ? .reserved : .available
            units.append(InventoryUnit(
                din: din, productCode: part.code, component: component, group: BloodGroup(abo, rhd), collectedAt: collected,
                expiresAt: expires, siteID: siteID, status: status, attributes: attributes))
        }
    }

    private func pick<T>(_ table: [(T, Double)], _ rng: inout SplitMix64) -> T {
        var roll = rng.unit()
        for (value, share) in table {
            if roll < share { return value }
            roll -= share
        }
        return table[table.count - 1].0
    }
}

extension Calendar {
    /// The Gregorian calendar in UTC.
    static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}

extension Date {
    var roundedToSecond: Date { Date(timeIntervalSince1970: timeIntervalSince1970.rounded(.down)) }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let scale = Foundation.pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
