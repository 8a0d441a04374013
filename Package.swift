// swift-tools-version:6.1
import PackageDescription

/// Strict settings every Tipline target is compiled with.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Tipline",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tipline", targets: ["tipline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        // HTTP intake. Only the FullFoundation trait: ConfigurationSupport would build swift-configuration for nothing.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The one door to C: libpq from Debian's libpq-dev.
        .systemLibrary(
            name: "CLibPQ",
            path: "Sources/CLibPQ",
            providers: [.apt(["libpq-dev"])]
        ),
        // A thin, blocking-call-safe Swift layer over libpq.
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ",
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Pure domain: contact extraction (shared/CONTACTS.md). No database.
        .target(name: "ContactExtraction", swiftSettings: strict),
        // Pure domain: reports, the ladder, categories, input parsing. No database.
        .target(
            name: "TiplineCore",
            dependencies: ["ContactExtraction"],
            swiftSettings: strict
        ),
        // Queue and store: migrations, intake, claims, outcomes, status (SQL lives here).
        .target(
            name: "TiplineStore",
            dependencies: [
                "Postgres", "TiplineCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The claim/process/complete loop as services.
        .target(
            name: "TiplineWorker",
            dependencies: [
                "TiplineStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // HTTP intake: routes, bearer tokens, JSON errors, Prometheus metrics (Hummingbird 2).
        .target(
            name: "TiplineHTTP",
            dependencies: [
                "TiplineStore", "TiplineCore", "Postgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "tipline",
            dependencies: [
                "ContactExtraction", "TiplineCore", "TiplineStore", "TiplineWorker", "Postgres", "TiplineHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Benchmark of the extractor (not a test): swift run -c release tipline-bench-extract
        .executableTarget(
            name: "tipline-bench-extract",
            dependencies: ["ContactExtraction"],
            path: "Sources/tipline-bench-extract",
            swiftSettings: strict
        ),
        .testTarget(
            name: "ContactExtractionTests",
            dependencies: [
                "ContactExtraction",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        .testTarget(name: "TiplineCoreTests", dependencies: ["TiplineCore"], swiftSettings: strict),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres"], swiftSettings: strict),
        .testTarget(
            name: "TiplineIntegrationTests",
            dependencies: [
                "TiplineStore", "TiplineWorker", "tipline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
    ]
)
