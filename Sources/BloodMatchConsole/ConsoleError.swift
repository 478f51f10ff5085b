import BloodMatchIngest
import BloodMatchService
import BloodMatchStore
import Foundation
import HTTPTypes
import Hummingbird

/// A refusal or failure as the console answers it: JSON under `/console/api`, a short page
/// elsewhere; the message names the field or value at fault and never echoes a secret.
public struct ConsoleError: Error, Sendable, CustomStringConvertible {
    /// HTTP status.
    public var status: HTTPResponse.Status
    /// Stable code for the page's logic (`not_logged_in`, `csrf`, `forbidden`, `unable_to_verify`, …).
    public var code: String
    /// For the dispatcher.
    public var message: String
    /// The field at fault, when one is.
    public var field: String?

    /// Creates one.
    public init(_ status: HTTPResponse.Status, code: String, message: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    /// "Unable to verify — manual review required": the data behind an answer could not be trusted.
    public static func unableToVerify(_ reason: String) -> ConsoleError {
        ConsoleError(.serviceUnavailable, code: "unable_to_verify", message: "unable to verify — manual review required: \(reason)")
    }

    /// Why the data could not be trusted, in words for the dispatcher: the service's own fail-safe
    /// reason, or the database's message.
    static func reason(_ error: any Error) -> String {
        if let api = error as? APIError { return api.failSafe?.reason ?? api.message }
        if let console = error as? ConsoleError { return console.message }
        return serverMessage(error)
    }

    /// A request field that is missing or wrong.
    public static func invalid(_ field: String, _ reason: String) -> ConsoleError {
        ConsoleError(.badRequest, code: "invalid", message: "\(field): \(reason)", field: field)
    }

    /// The JSON body.
    func json() -> JSONValue {
        ["error": .string(code), "message": .string(message), "field": .nullable(field)]
    }

    /// The response: JSON for the page's scripts, plain text otherwise.
    func response(api: Bool) -> Response {
        if api {
            return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: ResponseJSON.encode(json()))))
        }
        return Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: "\(status.code) \(message)\n")))
    }
}
