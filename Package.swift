// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Microscale",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "microscale", targets: ["MicroscaleCLI"]),
        .library(name: "GGUF", targets: ["GGUF"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "Inference", targets: ["Inference"]),
        .library(name: "StructuredOutput", targets: ["StructuredOutput"]),
        .library(name: "Cascade", targets: ["Cascade"]),
        .library(name: "Store", targets: ["Store"]),
        .library(name: "Server", targets: ["Server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // File formats: GGUF container parsing, memory-mapped tensor data.
        .target(name: "GGUF"),
        // Innermost loops in C (AVX2 intrinsics with a portable path, chosen at run time): a benchmark showed
        // Swift SIMD's integer widening and half-precision conversions compiling to library calls.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        // The safetensors format (header JSON, bounds-checked offsets, memory-mapped data).
        .target(name: "Safetensors", dependencies: ["GGUF"]),
        // Numeric kernels: quantized block layouts, activation quantization, matrix products.
        .target(name: "Kernels", dependencies: ["GGUF", "CKernels"]),
        // Tokenizers built from model metadata (byte-level BPE, chat templates).
        .target(name: "Tokenizers", dependencies: ["GGUF"]),
        // Language-model contract, architectures, KV cache, generation loop, sampling.
        .target(name: "Inference", dependencies: ["GGUF", "Safetensors", "CKernels", "Kernels", "Tokenizers", "Datasets"]),
        // Datasets: CSV reading, the shared data folder, splits.
        .target(name: "Datasets"),
        // Learning and statistics for the cascade: softmax regression (L-BFGS), temperature scaling, exact binomial
        // bounds, risk-controlled thresholds, calibration metrics. Pure arithmetic, no models.
        .target(name: "Statistics", dependencies: ["CKernels", "Kernels", "Datasets"]),
        // Structured output: JSON Schema compiled to a byte automaton and token masks for constrained decoding,
        // validation, exact label scoring over a token trie.
        .target(
            name: "StructuredOutput",
            dependencies: ["Inference", "Tokenizers", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The cascade: task specs, adapters trained on a backbone's features, the decision policy, evaluation reports.
        .target(
            name: "Cascade",
            dependencies: [
                "Statistics", "Inference", "Datasets", "StructuredOutput",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The system SQLite library (Debian's libsqlite3-dev).
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // The durable decision log and review queue: SQLite (embedded, WAL) or PostgreSQL shared by replicas.
        .target(
            name: "Store",
            dependencies: ["CSQLite", .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log")]
        ),
        // The cascade service: HTTP API (Hummingbird), batching engine, escalation tier, review queue, drift, metrics.
        .target(
            name: "Server",
            dependencies: [
                "Cascade", "StructuredOutput", "Inference", "Tokenizers", "Store",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Resources")]
        ),
        // The `microscale` command line.
        .executableTarget(
            name: "MicroscaleCLI",
            dependencies: [
                "GGUF", "Tokenizers", "Inference", "Datasets", "Statistics", "Cascade", "StructuredOutput", "Store", "Server",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "Datasets"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "GGUF", "Datasets"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets"]),
        .testTarget(name: "SafetensorsTests", dependencies: ["Safetensors", "GGUF", "Datasets"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "GGUF", "Datasets"], resources: [.copy("Fixtures")]),
        .testTarget(name: "StatisticsTests", dependencies: ["Statistics", "Datasets"]),
        .testTarget(name: "StructuredOutputTests", dependencies: ["StructuredOutput", "Cascade", "Inference", "Tokenizers", "Datasets"]),
        .testTarget(name: "StoreTests", dependencies: ["Store"]),
        .testTarget(
            name: "ServerTests",
            dependencies: ["Server", "Store", "Cascade", "Datasets", .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client")],
            exclude: ["Scripts"]
        ),
        .testTarget(name: "CascadeTests", dependencies: ["Cascade", "Statistics", "Inference", "Datasets"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "Kernels", "GGUF", "Tokenizers", "Datasets"], resources: [.copy("Fixtures")]),
    ]
)
