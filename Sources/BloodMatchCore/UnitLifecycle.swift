/// A step of a unit's life after it is issued, recorded by the hospital (or a dispatcher for it).
///
/// available (in its centre's snapshot in force) → held → issued → **received** → **transfused** |
/// **returned** | **discarded**. Receipt and the final fate are records 21 CFR 606.165 (receipt)
/// and EU 2002/98/EC Art. 14 / UK BSQR reg. 8 (final fate of each unit) ask for (Data/SOURCES.md).
public enum UnitFateEvent: String, Sendable, Hashable, Codable, CaseIterable {
    /// The hospital confirms the unit arrived.
    case received
    /// Given to a patient.
    case transfused
    /// Sent back to the centre; it re-enters stock only when its centre's feed lists it again.
    case returned
    /// Destroyed.
    case discarded

    /// Whether this ends the unit's life at the hospital.
    public var isFinal: Bool { self != .received }

    /// Whether a reason from `UnitFateReason` must be given.
    public var needsReason: Bool { self == .returned || self == .discarded }
}

/// Why a unit was returned or discarded: a fixed list, so records can be counted and compared.
///
/// No standard list was found; these are the reasons a hospital laboratory records in practice
/// (BloodNet's fate module records transfer and discard per donation number; Data/SOURCES.md).
/// `applies(to:)` says which event each belongs to.
public enum UnitFateReason: String, Sendable, Hashable, Codable, CaseIterable {
    /// Returned: the patient no longer needs it.
    case noLongerRequired = "no_longer_required"
    /// Returned: ordered by mistake.
    case orderedInError = "ordered_in_error"
    /// Returned: not the product that was ordered.
    case wrongProductSupplied = "wrong_product_supplied"
    /// Discarded: past its expiry.
    case expired
    /// Discarded: stored or transported outside its temperature range.
    case temperatureExcursion = "temperature_excursion"
    /// Discarded: bag or seal damaged, leaking.
    case damagedContainer = "damaged_container"
    /// Discarded: clots, haemolysis, discolouration or other visible defect.
    case failedVisualInspection = "failed_visual_inspection"
    /// Discarded: withdrawn by the blood service.
    case recalled
    /// Discarded: out of controlled storage longer than allowed.
    case timeOutOfStorageExceeded = "time_out_of_storage_exceeded"

    /// Whether the reason can be given for `event`.
    public func applies(to event: UnitFateEvent) -> Bool {
        switch self {
        case .noLongerRequired, .orderedInError, .wrongProductSupplied: event == .returned
        case .expired, .temperatureExcursion, .damagedContainer, .failedVisualInspection, .recalled, .timeOutOfStorageExceeded:
            event == .discarded || event == .returned && self == .recalled
        }
    }
}
