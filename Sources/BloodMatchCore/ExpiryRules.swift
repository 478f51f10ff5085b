import Foundation

/// A modifying process applied to a unit at an instant.
public struct AppliedProcess: Sendable, Hashable, Codable {
    /// What was done.
    public var process: ModificationProcess
    /// When.
    public var at: Date

    /// Creates an applied process.
    public init(_ process: ModificationProcess, at: Date) {
        self.process = process
        self.at = at
    }
}

/// A unit's effective expiry and the rule that set it.
public struct EffectiveExpiry: Sendable, Hashable, Codable {
    /// The effective expiry: the earliest of the original and every process-derived expiry.
    public var expiresAt: Date
    /// `original` or the process that set it.
    public var decidedBy: String
    /// The source of the deciding rule (the label for `original`).
    public var source: String
}

/// Why an expiry could not be worked out, or a unit's dating is implausible.
public enum ExpiryError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The policy has no shelf life for this process on this component; carries both.
    case noRuleForProcess(ModificationProcess, Component)
    /// The process is dated before collection or after the original expiry.
    case processOutsideUnitLife(ModificationProcess, at: Date, collectedAt: Date, expiresAt: Date)
    /// The process took place later after collection than the rule allows
    /// (JPAC-RB: irradiate red cells within 14 days of collection); carries hours.
    case processTooLateAfterCollection(ModificationProcess, hoursAfterCollection: Double, limitHours: Int)
    /// Expiry is not after collection.
    case expiryNotAfterCollection(collectedAt: Date, expiresAt: Date)
    /// Expiry is further from collection than the component's plausibility bound; carries days.
    case shelfLifeImplausible(Component, days: Double, maximumDays: Int)

    /// Text for people and logs.
    public var description: String {
        switch self {
        case .noRuleForProcess(let process, let component):
            "no expiry rule for \(process.rawValue) of \(component.rawValue) in the policy"
        case .processOutsideUnitLife(let process, let at, let collected, let expires):
            "\(process.rawValue) at \(at) is outside the unit's life \(collected) … \(expires)"
        case .processTooLateAfterCollection(let process, let hours, let limit):
            "\(process.rawValue) \(Int(hours)) h after collection; must be within \(limit) h"
        case .expiryNotAfterCollection(let collected, let expires):
            "expiry \(expires) is not after collection \(collected)"
        case .shelfLifeImplausible(let component, let days, let maximum):
            "\(component.rawValue) expiry \(String(format: "%.1f", days)) days after collection exceeds \(maximum) days"
        }
    }
}

extension CompatibilityPolicy {
    /// The effective expiry of a unit after modifying processes: the earliest of the original
    /// expiry and each process-derived expiry ("expiry after modification = min(original,
    /// process-derived)": JPAC-RB §6.5; LH). Shelf lives per process come from the policy
    /// (irradiated red cells 14 days, JPAC-RB; washed red cells 24 h, CFR610; thawed FFP 24 h,
    /// thawed cryo 4 h, DRORACLE; …).
    public func effectiveExpiry(
        component: Component, collectedAt: Date, originalExpiry: Date, processes: [AppliedProcess]
    ) throws(ExpiryError) -> EffectiveExpiry {
        var best = EffectiveExpiry(expiresAt: originalExpiry, decidedBy: "original", source: "unit label (original expiry)")
        for applied in processes {
            guard let rule = processRule(applied.process, for: component) else {
                throw .noRuleForProcess(applied.process, component)
            }
            guard applied.at >= collectedAt, applied.at < originalExpiry else {
                throw .processOutsideUnitLife(applied.process, at: applied.at, collectedAt: collectedAt, expiresAt: originalExpiry)
            }
            if let latest = rule.latestHoursAfterCollection {
                let hours = applied.at.timeIntervalSince(collectedAt) / 3_600
                guard hours <= Double(latest) else {
                    throw .processTooLateAfterCollection(applied.process, hoursAfterCollection: hours, limitHours: latest)
                }
            }
            let derived = applied.at.addingTimeInterval(Double(rule.hoursAfterProcess) * 3_600)
            if derived < best.expiresAt {
                best = EffectiveExpiry(expiresAt: derived, decidedBy: applied.process.rawValue, source: rule.source)
            }
        }
        return best
    }

    /// Refuses implausible dating: expiry must follow collection and lie within the component's
    /// longest legitimate shelf life (UKBSQR Sch. 4; CFR610; policy `shelfLifeBounds`).
    public func checkPlausibleDating(component: Component, collectedAt: Date, expiresAt: Date) throws(ExpiryError) {
        guard expiresAt > collectedAt else { throw .expiryNotAfterCollection(collectedAt: collectedAt, expiresAt: expiresAt) }
        guard let maximumDays = shelfLifeBounds.maximumDays[component] else { return }
        let days = expiresAt.timeIntervalSince(collectedAt) / 86_400
        guard days <= Double(maximumDays) else {
            throw .shelfLifeImplausible(component, days: days, maximumDays: maximumDays)
        }
    }
}
