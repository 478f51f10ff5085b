import BloodMatchCore
import Crypto
import Foundation

/// Where a hold came from.
public enum ReservationSource: String, Sendable, Codable {
    /// From a recorded match decision.
    case decision
    /// From a batch allocation run.
    case batch
    /// Named units, by a dispatcher.
    case manual
}

/// A request to hold units for a hospital.
public struct ReservationRequest: Sendable {
    /// Client-supplied; a retry with the same key returns the original outcome and never holds twice.
    public var idempotencyKey: String
    /// Where the hold came from.
    public var source: ReservationSource
    /// The decision the units were chosen by.
    public var decisionID: UUID?
    /// The batch run that allocated them.
    public var batchRunID: UUID?
    /// The hospital (site id) the units are held for.
    public var hospital: String
    /// Operator name or `hospital:<id>`.
    public var reservedBy: String
    /// The units, by DIN and product code.
    public var units: [UnitKey]
    /// How long the hold lasts, from the database's clock.
    public var holdSeconds: Int
    /// Client request id.
    public var requestID: String?
    /// W3C trace id.
    public var traceID: String?
    /// The peer address of the HTTP request, for the `reservation.made` event.
    public var clientAddress: String?

    /// Creates a request.
    public init(idempotencyKey: String, source: ReservationSource, decisionID: UUID? = nil, batchRunID: UUID? = nil,
                hospital: String, reservedBy: String, units: [UnitKey], holdSeconds: Int,
                requestID: String? = nil, traceID: String? = nil, clientAddress: String? = nil) {
        self.idempotencyKey = idempotencyKey
        self.source = source
        self.decisionID = decisionID
        self.batchRunID = batchRunID
        self.hospital = hospital
        self.reservedBy = reservedBy
        self.units = units
        self.holdSeconds = holdSeconds
        self.requestID = requestID
        self.traceID = traceID
        self.clientAddress = clientAddress
    }

    /// What makes two requests "the same request": a key reused for different content is refused.
    public var fingerprint: String {
        let text = [source.rawValue, decisionID?.uuidString.lowercased() ?? "", batchRunID?.uuidString.lowercased() ?? "",
                    hospital, Set(units).sorted().map(\.description).joined(separator: ","), String(holdSeconds)].joined(separator: "|")
        return hex(Array(SHA256.hash(data: Array(text.utf8))))
    }
}

/// One held unit.
public struct ReservedUnit: Sendable, Hashable, Codable {
    /// DIN.
    public var din: String
    /// Product code: with the DIN, the unit's identity.
    public var productCode: String
    /// Centre holding the unit.
    public var centre: String
    /// Component code.
    public var component: String
    /// ABO.
    public var abo: String
    /// RhD.
    public var rhd: String
    /// Expiry.
    public var expiresAt: Date
    /// `active`, `released`, `expired`, `issued` or `returned`.
    public var state: String
    /// When the state last changed (database clock).
    public var stateChangedAt: Date
    /// For an active hold whose unit can no longer be issued: why (quarantined, left the stock,
    /// moved, expired, hold overdue), read against the snapshot in force when the hold was read.
    public var blocked: String?

    /// The unit's identity.
    public var key: UnitKey { UnitKey(din: din, productCode: productCode) }

    /// `active`, or `blocked` when the unit of an active hold can no longer be issued, else the state.
    public var shownState: String { state == "active" && blocked != nil ? "blocked" : state }
}

/// A stored hold.
public struct Reservation: Sendable, Hashable, Codable {
    /// Id.
    public var reservationID: UUID
    /// Where it came from.
    public var source: ReservationSource
    /// The decision, if any.
    public var decisionID: UUID?
    /// The batch run, if any.
    public var batchRunID: UUID?
    /// Hospital (site id).
    public var hospital: String
    /// Who reserved.
    public var reservedBy: String
    /// The client's key.
    public var idempotencyKey: String
    /// End of the hold (database clock).
    public var heldUntil: Date
    /// Creation (database clock).
    public var createdAt: Date
    /// Request id.
    public var requestID: String?
    /// Trace id.
    public var traceID: String?
    /// Units.
    public var units: [ReservedUnit]
}

/// Why a unit could not be held or issued.
public struct ReservationConflict: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The unit.
    public var unit: UnitKey
    /// Why, for the dispatcher.
    public var reason: String
    /// The reservation holding it, when that is the reason.
    public var heldBy: UUID?

    /// Creates a conflict.
    public init(unit: UnitKey, reason: String, heldBy: UUID? = nil) {
        self.unit = unit
        self.reason = reason
        self.heldBy = heldBy
    }

    public var description: String { "\(unit): \(reason)" }
}

/// The result of `reserve`.
public enum ReservationOutcome: Sendable {
    /// Held; `isNew` is false when an earlier request with the same key made it.
    case reserved(Reservation, isNew: Bool)
    /// Nothing was held: these units could not be (all or nothing).
    case conflict([ReservationConflict])
}

/// The result of `issue`.
public enum IssueOutcome: Sendable {
    /// Issued, with one distribution record per unit; `isNew` is false for a retry of the same key.
    case issued([DistributionRecord], isNew: Bool)
    /// Nothing was issued: these units failed the re-check (all or none).
    case blocked([ReservationConflict])
}

/// The decision is a what-if (evaluated at an instant the caller chose, on the stock in force now):
/// the database refuses to hold units on its strength, so they can never be issued from it.
public struct WhatIfDecisionError: Error, Sendable, CustomStringConvertible {
    /// The decision.
    public var decisionID: UUID?
    /// Creates the error.
    public init(decisionID: UUID?) { self.decisionID = decisionID }
    public var description: String {
        "decision \(decisionID.map { $0.uuidString.lowercased() } ?? "?") is a what-if (evaluated with --as-of on the stock in force now): it cannot be reserved or issued; match again without --as-of"
    }
}

/// The key was used before for a different request or object.
public struct IdempotencyKeyReuseError: Error, Sendable, CustomStringConvertible {
    /// The key.
    public var key: String
    /// What it belongs to, e.g. `reservation 1b2c…` or `issue of reservation 1b2c…`.
    public var usedFor: String
    /// Creates the error.
    public init(key: String, usedFor: String) {
        self.key = key
        self.usedFor = usedFor
    }
    public var description: String {
        "idempotency key '\(key)' was already used for a different operation (\(usedFor)); use a new key"
    }
}

/// A reservation id that does not exist.
public struct ReservationNotFoundError: Error, Sendable, CustomStringConvertible {
    /// The id.
    public var reservationID: UUID
    /// Creates the error.
    public init(reservationID: UUID) { self.reservationID = reservationID }
    public var description: String { "no reservation \(reservationID.uuidString.lowercased())" }
}

/// A hold is not in a state that allows the change.
public struct ReservationStateError: Error, Sendable, CustomStringConvertible {
    /// The hold.
    public var reservationID: UUID
    /// Why.
    public var detail: String
    public var description: String { "reservation \(reservationID.uuidString.lowercased()): \(detail)" }
}

/// One distribution record (21 CFR 606.165: consignee name and address, date, quantity, unit
/// number, product, expiry; Data/SOURCES.md).
public struct DistributionRecord: Sendable, Hashable, Codable {
    /// Id.
    public var distributionID: UUID
    /// The hold it was issued from.
    public var reservationID: UUID
    /// Unit number.
    public var din: String
    /// ISBT 128 product code.
    public var productCode: String
    /// Product name: the component class and the attributes the centre's feed reported.
    public var productName: String
    /// Consignee site id.
    public var consignee: String
    /// Consignee name.
    public var consigneeName: String
    /// Consignee postal address.
    public var consigneeAddress: String
    /// Consignee region code.
    public var consigneePlace: String
    /// Dispatching centre.
    public var centre: String
    /// Component class.
    public var component: String
    /// ABO.
    public var abo: String
    /// RhD.
    public var rhd: String
    /// Quantity (always 1: one record per unit).
    public var quantity: Int
    /// Expiry.
    public var expiresAt: Date
    /// Date and time of distribution (database clock).
    public var issuedAt: Date
    /// Who issued.
    public var issuedBy: String

    /// The unit's identity.
    public var key: UnitKey { UnitKey(din: din, productCode: productCode) }
}
