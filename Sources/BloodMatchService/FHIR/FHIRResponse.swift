import BloodMatchIngest
import BloodMatchCore
import Foundation
import Hummingbird

/// The FHIR face's constants and its response helper.
///
/// The mapping of every element is in `Data/FHIR.md`; the ISBT 128 URIs are those of the R5
/// BiologicallyDerivedProduct example (Data/SOURCES.md §S31). Names this project defines itself
/// (its extensions, code systems and identifier systems) live under `FHIRSystem.base`, a
/// namespace that identifies them and is not meant to be fetched.
public enum FHIRResponse {
    /// The media type of every FHIR answer (FHIR R5 http.html, "Content Types").
    public static let contentType = "application/fhir+json; fhirVersion=5.0; charset=utf-8"
    /// The FHIR version spoken.
    public static let fhirVersion = "5.0.0"
}

/// A FHIR JSON response.
func fhirJSON(_ resource: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: FHIRResponse.contentType, .cacheControl: "no-store"],
             body: .init(byteBuffer: ByteBuffer(bytes: ResponseJSON.encode(resource))))
}

extension JSONValue {
    /// A FHIR Coding.
    static func coding(_ system: String, _ code: String, display: String? = nil) -> JSONValue {
        var out: [String: JSONValue] = ["system": .string(system), "code": .string(code)]
        if let display { out["display"] = .string(display) }
        return .object(out)
    }

    /// A FHIR CodeableConcept of one coding (and text).
    static func concept(_ system: String, _ code: String, display: String? = nil, text: String? = nil) -> JSONValue {
        var out: [String: JSONValue] = ["coding": [.coding(system, code, display: display)]]
        if let text { out["text"] = .string(text) }
        return .object(out)
    }

    /// A FHIR Identifier.
    static func identifier(_ system: String, _ value: String) -> JSONValue {
        ["system": .string(system), "value": .string(value)]
    }
}
