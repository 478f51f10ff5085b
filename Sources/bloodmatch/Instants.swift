import ArgumentParser
import Foundation

/// Parses an ISO 8601 instant with zone, for --as-of options.
func parseInstant(_ text: String) throws -> Date {
    let formatter = ISO8601DateFormatter()
    if let date = formatter.date(from: text) { return date }
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = formatter.date(from: text) { return date }
    throw ValidationError("'\(text)' is not an ISO 8601 instant with a zone, e.g. 2026-11-29T07:00:00Z")
}
