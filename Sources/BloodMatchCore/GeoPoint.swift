import Foundation

/// A point on the Earth in decimal degrees (WGS 84 latitude and longitude).
public struct GeoPoint: Sendable, Hashable, Codable {
    /// Latitude in degrees, −90…90.
    public var latitude: Double
    /// Longitude in degrees, −180…180.
    public var longitude: Double

    /// Creates a point; callers validate the ranges (see `isValid`).
    public init(latitude: Double, longitude: Double) {
        self.latitude = latitude
        self.longitude = longitude
    }

    /// Whether both coordinates are finite and within range.
    public var isValid: Bool {
        latitude.isFinite && longitude.isFinite && abs(latitude) <= 90 && abs(longitude) <= 180
    }

    /// Mean Earth radius in km (IUGG R1 = 6371.0088 km), the radius every distance here uses.
    public static let earthRadiusKm = 6371.0088

    /// Great-circle distance in km by the haversine formula, R = 6371.0088 km.
    public func distanceKm(to other: GeoPoint) -> Double {
        let toRad = Double.pi / 180
        let lat1 = latitude * toRad
        let lat2 = other.latitude * toRad
        let dLat = lat2 - lat1
        let dLon = (other.longitude - longitude) * toRad
        let s1 = sin(dLat / 2)
        let s2 = sin(dLon / 2)
        let a = s1 * s1 + cos(lat1) * cos(lat2) * s2 * s2
        return 2 * GeoPoint.earthRadiusKm * asin(min(1, sqrt(a)))
    }

    /// The point as a unit vector on the sphere (x, y, z), for chord-distance spatial indexes.
    public var unitVector: SIMD3<Double> {
        let toRad = Double.pi / 180
        let lat = latitude * toRad
        let lon = longitude * toRad
        return SIMD3(cos(lat) * cos(lon), cos(lat) * sin(lon), sin(lat))
    }
}
