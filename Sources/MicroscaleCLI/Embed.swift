import ArgumentParser
import Foundation
import Datasets
import Inference

/// `microscale embed --backbone … "text"`: the feature vector a backbone gives a text.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the feature vector of each text: a sentence encoder (mean-pooled, L2-normalised) or a GGUF decoder's pooled hidden states.")

    @Option(help: "minilm (the bundled all-MiniLM-L6-v2), bert:DIR (a sentence-transformers folder), or gguf:FILE.")
    var backbone = "minilm"

    @Option(help: "Pooling for a GGUF decoder: mean or last.")
    var pooling: Pooling = .mean

    @Option(help: "For a GGUF decoder, take the residual stream after this many blocks instead of the final layer.")
    var layer: Int?

    @Option(name: [.customShort("t"), .long], help: "Threads.")
    var threads = 2

    @Flag(help: "Print each vector as a JSON array (default: summary and the first values).")
    var json = false

    @Argument(help: "Texts to embed.")
    var texts: [String]

    func run() throws {
        let model = try Backbones.make(backbone, pooling: pooling, layer: layer, threads: threads)
        let start = ContinuousClock.now
        let vectors = try model.embed(texts)
        let elapsed = ContinuousClock.now - start
        for (text, vector) in zip(texts, vectors) {
            if json {
                print("[" + vector.map { String(format: "%.7g", $0) }.joined(separator: ",") + "]")
            } else {
                let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
                let head = vector.prefix(6).map { String(format: "%.5f", $0) }.joined(separator: " ")
                print("\(String(reflecting: text)): \(vector.count) dims, norm \(String(format: "%.4f", norm)), [\(head) …]")
            }
        }
        FileHandle.standardError.write(Data("[\(model.identifier), \(texts.count) texts in \(elapsed)]\n".utf8))
    }
}

extension Pooling: ExpressibleByArgument {}

/// Builds a backbone from its command-line name.
enum Backbones {
    static func make(_ spec: String, pooling: Pooling = .mean, layer: Int? = nil, threads: Int = 2) throws -> any Backbone {
        if spec == "minilm" { return try BertEncoder(directory: ProjectPaths.models + "/all-MiniLM-L6-v2", threads: threads) }
        if spec.hasPrefix("bert:") { return try BertEncoder(directory: String(spec.dropFirst(5)), threads: threads) }
        if spec.hasPrefix("gguf:") {
            return DecoderBackbone(try LoadedModel(path: String(spec.dropFirst(5)), threads: threads), pooling: pooling, layer: layer)
        }
        throw ValidationError("unknown backbone '\(spec)': use minilm, bert:DIR or gguf:FILE")
    }
}
