import BloodMatchIngest
import Foundation

/// Every refusal on a FHIR path as an OperationOutcome: the same status, code, message and field as
/// the `/v1` error body, in FHIR's terms.
///
/// `issue.code` is the FHIR issue type nearest to the status (FHIR R5 valueset-issue-type);
/// `details.coding` carries this API's own code (`invalid_field`, `unable_to_verify`, …) so
/// integrators can switch on it; `expression` names the offending element or parameter;
/// `diagnostics` repeats the message, and for a fail-safe answer what could not be verified, since
/// when and why. "Unable to verify" is severity `error` with status 503, never an empty Bundle.
public enum FHIROperationOutcome {
    /// The OperationOutcome for an error.
    public static func resource(for error: APIError) -> JSONValue {
        var diagnostics = error.message
        if let failSafe = error.failSafe {
            diagnostics += "; affected: \(failSafe.affected.joined(separator: ", ")); since \(iso(failSafe.since)); \(failSafe.reason)"
        }
        var issue: [String: JSONValue] = [
            "severity": .string(error.status.code >= 500 && error.failSafe == nil ? "fatal" : "error"),
            "code": .string(issueType(error)),
            "details": ["coding": [.coding(FHIRSystem.base + "/CodeSystem/error", error.code)], "text": .string(error.message)],
            "diagnostics": .string(diagnostics),
        ]
        if let field = error.field { issue["expression"] = .strings([field]) }
        return ["resourceType": "OperationOutcome", "issue": [.object(issue)]]
    }

    /// An informational OperationOutcome (a successful DELETE's body).
    public static func information(_ text: String) -> JSONValue {
        ["resourceType": "OperationOutcome",
         "issue": [["severity": "information", "code": "informational", "diagnostics": .string(text)]]]
    }

    /// The FHIR issue type for an error.
    static func issueType(_ error: APIError) -> String {
        if error.failSafe != nil { return "transient" }
        switch error.code {
        case "unknown_parameter", "unknown_field", "unknown_element": return "not-supported"
        case "idempotency_key_reused": return "conflict"
        case "malformed_json", "unreadable_body": return "structure"
        default: break
        }
        switch error.status.code {
        case 400, 422: return error.code == "required" ? "required" : "invalid"
        case 401: return "login"
        case 403: return "forbidden"
        case 404: return "not-found"
        case 405, 415, 501: return "not-supported"
        case 406: return "not-supported"
        case 408: return "timeout"
        case 409, 412: return "conflict"
        case 410: return "deleted"
        case 413, 414, 431: return "too-long"
        case 429: return "throttled"
        case 503: return "transient"
        default: return "exception"
        }
    }
}
