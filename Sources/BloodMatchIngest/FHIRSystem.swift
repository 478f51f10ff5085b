/// URIs of the FHIR face and the FHIR feed: the ISBT 128 URIs of the R5 BiologicallyDerivedProduct
/// examples (Data/SOURCES.md §S31) and this project's own names under `base`, a namespace that
/// identifies them and is not meant to be fetched. The mapping of every element is in `Data/FHIR.md`.
public enum FHIRSystem {
    /// This project's own namespace for extensions, code systems and identifier systems.
    public static let base = "https://bloodmatch.example/fhir"
    /// ISBT 128 Donation Identification Number (`biologicalSourceEvent`).
    public static let din = "https://www.isbt128.org/uri/DonationIdentificationNumber"
    /// ISBT 128 Product Description Code (`productCode`).
    public static let productDescriptionCode = "https://www.isbt128.org/uri/ProductDescriptionCode"
    /// ISBT 128 ABO/RhD codes (Data Structure 002 `gg`).
    public static let aboRhD = "https://www.isbt128.org/uri/ABORhD"
    /// ISBT 128 type of collection (the product code's `t`: V volunteer, 1 autologous only, …).
    public static let collectionType = "https://www.isbt128.org/uri/CollectionType"
    /// ISBT 128 property types (`property.type`).
    public static let isbtProperty = "https://www.isbt128.org/uri"
    /// FHIR product categories.
    public static let productCategory = "http://hl7.org/fhir/product-category"
    /// FHIR product status.
    public static let productStatus = "http://hl7.org/fhir/biologicallyderived-product-status"
    /// UCUM.
    public static let ucum = "http://unitsofmeasure.org"
    /// A unit's identity here: `DIN/PRODUCTCODE`.
    public static let unitKey = base + "/sid/unit"
    /// Site ids (centres and hospitals) as in `Data/sites.csv`.
    public static let site = base + "/sid/site"
    /// Order ids.
    public static let order = base + "/sid/order"
    /// Components as the feeds name them (RBC, PLT, PLASMA, CRYO, WB).
    public static let component = base + "/CodeSystem/component"
    /// Special requirements (`UnitAttribute` codes: IRRADIATED, CMV_NEG, …).
    public static let requirement = base + "/CodeSystem/requirement"
    /// This project's BiologicallyDerivedProduct property types (`component`, `attribute`).
    public static let property = base + "/CodeSystem/property"
    /// SupplyRequest parameters this server reads.
    public static let orderParameter = base + "/CodeSystem/order-parameter"
    /// Receipt and fate codes (received, transfused, returned, discarded).
    public static let unitFate = base + "/CodeSystem/unit-fate"
    /// The canonical URL of one of this project's extensions.
    public static func extensionURL(_ name: String) -> String { base + "/StructureDefinition/" + name }
}
