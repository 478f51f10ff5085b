import BloodMatchIngest
import BloodMatchStore
import Foundation

/// Failed authentications that name no existing key (missing, malformed, unknown), counted per
/// client address, route, reason and UTC minute instead of recorded one row each.
///
/// Anyone can send such requests in any number; one permanent event-log row per request would let
/// a flood grow the append-only log without bound. Each group becomes one access record when its
/// minute closes, with the count, the first and last request ids and up to five of the key ids
/// presented. At most `maximumGroups` groups are held; attempts beyond that are counted in one
/// overflow record per minute, so memory and rows per minute stay bounded whatever arrives.
public struct FailedAuthenticationTally: Sendable {
    /// One refused request.
    public struct Attempt: Sendable, Hashable {
        /// The peer address.
        public var clientAddress: String?
        /// The route template, or `unmatched`.
        public var route: String
        /// Why the key was refused.
        public var reason: AuthenticationFailure.Reason
        /// When the request arrived.
        public var requestedAt: Date
        /// Its request id.
        public var requestID: String
        /// The key id it presented, if its token had one.
        public var keyID: String?

        /// Creates an attempt.
        public init(clientAddress: String?, route: String, reason: AuthenticationFailure.Reason, requestedAt: Date,
                    requestID: String, keyID: String?) {
            self.clientAddress = clientAddress
            self.route = route
            self.reason = reason
            self.requestedAt = requestedAt
            self.requestID = requestID
            self.keyID = keyID
        }
    }

    struct Group: Hashable {
        var clientAddress: String?
        var route: String
        var reason: AuthenticationFailure.Reason
        var minute: Int64
    }

    struct Count {
        var count = 0
        var first: Attempt
        var lastRequestID: String
        var keyIDs: [String] = []
        var reasons: [AuthenticationFailure.Reason: Int] = [:]

        init(_ attempt: Attempt) {
            first = attempt
            lastRequestID = attempt.requestID
        }

        mutating func add(_ attempt: Attempt) {
            count += 1
            lastRequestID = attempt.requestID
            reasons[attempt.reason, default: 0] += 1
            if let keyID = attempt.keyID, keyIDs.count < FailedAuthenticationTally.keyIDsKept, !keyIDs.contains(keyID) {
                keyIDs.append(keyID)
            }
        }
    }

    /// Distinct key ids listed per record.
    public static let keyIDsKept = 5
    /// The subject of the record that counts attempts beyond `maximumGroups`.
    public static let overflowSubject = "overflow"

    /// Groups held at most (all open minutes together).
    public let maximumGroups: Int
    private var groups: [Group: Count] = [:]
    private var overflow: [Int64: Count] = [:]

    /// Creates an empty tally.
    public init(maximumGroups: Int = 1_000) {
        self.maximumGroups = maximumGroups
    }

    /// The UTC minute `date` falls in, counted from the epoch (of its `requested_at` millisecond).
    public static func minute(of date: Date) -> Int64 {
        let milliseconds = epochMilliseconds(date)
        return milliseconds >= 0 ? milliseconds / 60_000 : (milliseconds - 59_999) / 60_000
    }

    /// Attempts counted and not yet closed.
    public var attemptCount: Int { groups.values.reduce(0) { $0 + $1.count } + overflow.values.reduce(0) { $0 + $1.count } }

    /// Counts one attempt in its group, or in its minute's overflow when `maximumGroups` are held.
    public mutating func add(_ attempt: Attempt) {
        let minute = Self.minute(of: attempt.requestedAt)
        let group = Group(clientAddress: attempt.clientAddress, route: attempt.route, reason: attempt.reason, minute: minute)
        if groups[group] != nil || groups.count < maximumGroups {
            groups[group, default: Count(attempt)].add(attempt)
        } else {
            overflow[minute, default: Count(attempt)].add(attempt)
        }
    }

    /// The records of every minute before `minute`, which are then forgotten; in minute order,
    /// each minute's overflow after its groups.
    public mutating func close(before minute: Int64) -> [AccessRecord] {
        let closing = groups.filter { $0.key.minute < minute }
        let closingOverflow = overflow.filter { $0.key < minute }
        for group in closing.keys { groups[group] = nil }
        for key in closingOverflow.keys { overflow[key] = nil }
        var records: [AccessRecord] = []
        for closed in Set(closing.keys.map(\.minute)).union(closingOverflow.keys).sorted() {
            let ordered = closing.filter { $0.key.minute == closed }.sorted {
                ($0.key.clientAddress ?? "", $0.key.route, $0.key.reason.rawValue) < ($1.key.clientAddress ?? "", $1.key.route, $1.key.reason.rawValue)
            }
            records += ordered.map { Self.record($0.value, group: $0.key) }
            if let count = closingOverflow[closed] { records.append(Self.overflowRecord(count, minute: closed)) }
        }
        return records
    }

    /// The records of every minute, open ones included (at shutdown).
    public mutating func closeAll() -> [AccessRecord] { close(before: .max) }

    private static func fields(_ count: Count, minute: Int64) -> [String: JSONValue] {
        [
            "aggregate": true, "count": .int(count.count), "minute": .string(isoUTC(minute: minute)),
            "first_request_id": .string(count.first.requestID), "last_request_id": .string(count.lastRequestID),
            "key_ids": .strings(count.keyIDs),
        ]
    }

    private static func record(_ count: Count, group: Group) -> AccessRecord {
        var payload = fields(count, minute: group.minute)
        payload["reason"] = .string(group.reason.rawValue)
        return AccessRecord(actor: "anonymous", subject: group.route, payload: payload, requestedAt: count.first.requestedAt,
                            requestID: count.first.requestID, traceID: nil, clientAddress: group.clientAddress)
    }

    private static func overflowRecord(_ count: Count, minute: Int64) -> AccessRecord {
        var payload = fields(count, minute: minute)
        payload["overflow"] = true
        payload["reasons"] = .object(Dictionary(uniqueKeysWithValues: count.reasons.map { ($0.key.rawValue, .int($0.value)) }))
        return AccessRecord(actor: "anonymous", subject: overflowSubject, payload: payload, requestedAt: count.first.requestedAt,
                            requestID: count.first.requestID, traceID: nil, clientAddress: nil)
    }
}
