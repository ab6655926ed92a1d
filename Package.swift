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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // File formats: GGUF container parsing, memory-mapped tensor data.
        .target(name: "GGUF"),
        // Numeric kernels: quantized block layouts, dot products, matrix products.
        .target(name: "Kernels", dependencies: ["GGUF"]),
        // Tokenizers built from model metadata (byte-level BPE, chat templates).
        .target(name: "Tokenizers", dependencies: ["GGUF"]),
        // Language-model contract, architectures, KV cache, generation loop, sampling.
        .target(name: "Inference", dependencies: ["GGUF", "Kernels", "Tokenizers"]),
        // The `microscale` command line.
        .executableTarget(
            name: "MicroscaleCLI",
            dependencies: [
                "GGUF", "Tokenizers", "Inference",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "GGUF"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "GGUF"], resources: [.copy("Fixtures")]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "Kernels", "GGUF", "Tokenizers"], resources: [.copy("Fixtures")]),
    ]
)
