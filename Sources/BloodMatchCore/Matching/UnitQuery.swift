/// One acceptable unit group for a request, as the transfusion rules ranked it.
public struct GroupChoice: Sendable, Hashable, Codable {
    /// The unit group.
    public var group: BloodGroup
    /// Preference rank, 1 = best.
    public var rank: Int
    /// Flags the rules attach to this choice (e.g. `anti_d_prophylaxis_required`).
    public var flags: [String]
    /// The rule that allowed it, with its source.
    public var rule: String
    /// Attributes a unit of this group must have to be acceptable (e.g. low-titre group O whole
    /// blood for a non-O recipient), on top of the request's own requirements.
    public var required: AttributeSet
    /// The most units of this choice one request may take (low-titre group O whole blood in
    /// emergency release: 2, HEMATOS; Data/SOURCES.md §S5); nil for no limit.
    public var maximumUnits: Int? = nil

    /// Creates a choice.
    public init(group: BloodGroup, rank: Int, flags: [String] = [], rule: String, required: AttributeSet = [], maximumUnits: Int? = nil) {
        self.group = group
        self.rank = rank
        self.flags = flags
        self.rule = rule
        self.required = required
        self.maximumUnits = maximumUnits
    }
}

/// A nearest-unit query in the matcher's own terms: where, what, which groups, how many.
///
/// Built from a clinical request by applying the transfusion rules (`MatchRequest` does this); the
/// matcher itself knows nothing of recipients, only of acceptable groups and attributes.
public struct UnitQuery: Sendable, Hashable {
    /// Where the units must go.
    public var destination: GeoPoint
    /// The destination site, when it is a known hospital.
    public var destinationSiteID: String?
    /// Component wanted.
    public var component: Component
    /// Acceptable unit groups, each with its rank.
    public var choices: [GroupChoice]
    /// Attributes every unit must have.
    public var required: AttributeSet
    /// Attributes a unit may carry only when the request asks for them (never substituted).
    public var exclusive: AttributeSet
    /// Attributes that are scarce: a unit carrying one the request did not ask for ranks later.
    public var scarce: AttributeSet
    /// Maximum age of a unit at evaluation, in seconds (fresh red cells for neonates).
    public var maximumUnitAgeSeconds: Int64?
    /// Units wanted.
    public var quantity: Int
    /// Urgency, which sets the rank penalties.
    public var urgency: Urgency
    /// When the units are needed (seconds since 1970), if said.
    public var neededBy: Int64?
    /// Units that must not be offered (reserved since the index was built, or held for review).
    public var excludedUnits: Set<UnitKey>
    /// When set, only these centres are searched (the batch optimiser's consolidation
    /// candidates: more units from centres already serving the hospital).
    public var onlyCentreIDs: Set<String>? = nil

    /// Creates a query.
    public init(
        destination: GeoPoint, destinationSiteID: String? = nil, component: Component, choices: [GroupChoice],
        required: AttributeSet = [], exclusive: AttributeSet = [], scarce: AttributeSet = [],
        maximumUnitAgeSeconds: Int64? = nil, quantity: Int, urgency: Urgency, neededBy: Int64? = nil,
        excludedUnits: Set<UnitKey> = []
    ) {
        self.destination = destination
        self.destinationSiteID = destinationSiteID
        self.component = component
        self.choices = choices
        self.required = required
        self.exclusive = exclusive
        self.scarce = scarce
        self.maximumUnitAgeSeconds = maximumUnitAgeSeconds
        self.quantity = quantity
        self.urgency = urgency
        self.neededBy = neededBy
        self.excludedUnits = excludedUnits
    }
}
