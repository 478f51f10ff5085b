// swift-tools-version:6.1
import PackageDescription

/// BloodMatch: blood-product matching and logistics batch engine.
///
/// Dependencies point one way: `bloodmatch` → `BloodMatchService` / `BloodMatchFeeds` →
/// `BloodMatchStore` / `BloodMatchIngest` → `BloodMatchCore`. Feed sources (the spool folder and
/// HTTPS fetching) live in `BloodMatchFeeds`, beside decoding, not in the executable; the dispatcher
/// console (its pages, sessions and routes) in `BloodMatchConsole`, on the service's engine. Only
/// `BloodMatchStore` imports PostgresNIO and only `BloodMatchService` and `BloodMatchConsole` import Hummingbird;
/// `BloodMatchCore` imports nothing but Foundation.
let package = Package(
    name: "BloodMatch",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "bloodmatch", targets: ["bloodmatch"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // OTLP over HTTP only: the gRPC exporter (and its build) is left out.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        .target(name: "BloodMatchCore"),
        .target(
            name: "BloodMatchIngest",
            dependencies: [
                "BloodMatchCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "BloodMatchStore",
            dependencies: [
                "BloodMatchCore",
                "BloodMatchIngest",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("Migrations")]
        ),
        .target(
            name: "BloodMatchService",
            dependencies: [
                "BloodMatchCore",
                "BloodMatchIngest",
                "BloodMatchStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                // Already built for Hummingbird; for the HTTP/1.0 keep-alive handler.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ]
        ),
        .target(
            name: "BloodMatchConsole",
            dependencies: [
                "BloodMatchCore",
                "BloodMatchIngest",
                "BloodMatchStore",
                "BloodMatchService",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("Assets")]
        ),
        .target(
            name: "BloodMatchFeeds",
            dependencies: [
                "BloodMatchIngest",
                "BloodMatchStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "bloodmatch",
            dependencies: [
                "BloodMatchCore",
                "BloodMatchFeeds",
                "BloodMatchIngest",
                "BloodMatchStore",
                "BloodMatchService",
                "BloodMatchConsole",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // Already built for ServiceLifecycle; `console` tells its live streams of SIGTERM.
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "BloodMatchTestSupport",
            dependencies: ["BloodMatchStore", .product(name: "PostgresNIO", package: "postgres-nio")],
            path: "Tests/BloodMatchTestSupport"
        ),
        .testTarget(name: "BloodMatchCoreTests", dependencies: ["BloodMatchCore"]),
        .testTarget(name: "BloodMatchIngestTests", dependencies: ["BloodMatchIngest"], resources: [.copy("Fixtures")]),
        .testTarget(name: "BloodMatchFeedsTests", dependencies: ["BloodMatchFeeds", "BloodMatchIngest", "BloodMatchStore"]),
        .testTarget(
            name: "BloodMatchStoreTests",
            dependencies: ["BloodMatchStore", "BloodMatchTestSupport", .product(name: "PostgresNIO", package: "postgres-nio"),
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "BloodMatchConsoleTests",
            dependencies: [
                "BloodMatchConsole",
                "BloodMatchService",
                "BloodMatchTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BloodMatchServiceTests",
            dependencies: [
                "BloodMatchService",
                "BloodMatchTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
