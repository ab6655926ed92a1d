import Crypto
import Datasets
import Foundation
import Inference
import Statistics

/// SHA-256 digests, hex-encoded.
public enum Digest {
    /// Digest of some text.
    public static func of(_ text: String) -> String { hex(SHA256.hash(data: Data(text.utf8))) }

    /// Digest of a file's bytes (memory-mapped, so large models are not read into memory).
    public static func of(file path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        return hex(SHA256.hash(data: data))
    }

    /// Digest of several files in order, each one's digest fed to the outer hash with its name.
    public static func of(files paths: [String]) throws -> String {
        of(try paths.map { URL(fileURLWithPath: $0).lastPathComponent + ":" + (try of(file: $0)) }.joined(separator: "\n"))
    }

    /// A number in [0, 1] drawn from the text's SHA-256 (its first 32 bits): the same text always draws the same, so
    /// a share chosen by it is a stable, model-independent sample.
    public static func uniform(_ text: String) -> Double {
        Double(UInt32(of(text).prefix(8), radix: 16)!) / Double(UInt32.max)
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}

/// A task's backbone, loaded, with the digest of its weights.
public struct LoadedBackbone: Sendable {
    /// The model.
    public let model: any Backbone
    /// SHA-256 of the files that define it (weights, tokenizer, configuration).
    public let digest: String
    /// The spec it was loaded from.
    public let spec: BackboneSpec

    /// Loads the backbone a spec names, truncating inputs to `maxTokens`.
    public init(_ spec: BackboneSpec, maxTokens: Int, threads: Int = 2) throws {
        self.spec = spec
        switch spec.kind {
        case .bert:
            let files = ["config.json", "tokenizer.json", "model.safetensors"].map { spec.path + "/" + $0 }
            model = try BertEncoder(directory: spec.path, threads: threads, maxLength: maxTokens, layers: spec.layers)
            digest = try Digest.of(files: files.filter { FileManager.default.fileExists(atPath: $0) })
        case .gguf:
            let loaded = try LoadedModel(path: spec.path, threads: threads)
            model = DecoderBackbone(loaded, pooling: spec.pooling == "last" ? .last : .mean, layer: spec.layer, maxTokens: maxTokens)
            digest = try Digest.of(file: spec.path)
        }
    }
}

/// Turns texts into feature vectors with a task's backbone and template, caching whole batches on disk by the
/// digest of everything that determines them (backbone, template, truncation, texts).
public struct FeatureExtractor: Sendable {
    /// The backbone.
    public let backbone: LoadedBackbone
    /// The template, with `{text}` where the input goes.
    public let template: String
    /// Token limit the backbone truncates to.
    public let maxTokens: Int
    /// Folder of cached feature files (nil: no cache).
    public let cacheFolder: String?

    /// An extractor for a task.
    public init(backbone: LoadedBackbone, template: String, maxTokens: Int, cacheFolder: String? = FeatureExtractor.defaultCacheFolder) {
        self.backbone = backbone
        self.template = template
        self.maxTokens = maxTokens
        self.cacheFolder = cacheFolder
    }

    /// `$MICROSCALE_CACHE`, else `.cache/features` in the checkout.
    public static var defaultCacheFolder: String {
        if let env = ProcessInfo.processInfo.environment["MICROSCALE_CACHE"], !env.isEmpty { return env }
        return ProjectPaths.root + "/.cache/features"
    }

    /// Digest of the template and truncation (stored in adapters: features depend on them).
    public var templateDigest: String { Digest.of("\(template)\u{0}\(maxTokens)") }

    /// The text the backbone sees for an input.
    public func render(_ text: String) -> String { template.replacingOccurrences(of: "{text}", with: text) }

    /// Tokens the backbone makes of an input (as rendered by the template) and how many it reads.
    public func tokenCounts(_ text: String) -> (tokens: Int, kept: Int) { backbone.model.tokenCounts(render(text)) }

    /// Features of texts in one backbone pass, uncached (the decision path).
    public func features<Texts: Collection<String>>(uncached texts: Texts) throws -> FeatureMatrix {
        FeatureMatrix(rows: texts.count, columns: backbone.model.dimension, values: try backbone.model.embed(texts.map(render)).flatMap { $0 })
    }

    /// Features of many texts, from the cache when the same texts were embedded before; `progress` reports
    /// texts done out of the total.
    public func features(_ texts: [String], progress: ((Int, Int) -> Void)? = nil) throws -> FeatureMatrix {
        let d = backbone.model.dimension
        let key = Digest.of([backbone.digest, templateDigest, backbone.model.identifier]
            .joined(separator: "\u{0}") + "\u{0}" + texts.joined(separator: "\u{1}"))
        let cacheFile = cacheFolder.map { "\($0)/\(key).f32" }
        if let cacheFile, let data = FileManager.default.contents(atPath: cacheFile), data.count == texts.count * d * 4 {
            let values = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            return FeatureMatrix(rows: texts.count, columns: d, values: values)
        }
        var values = [Float]()
        values.reserveCapacity(texts.count * d)
        let batch = 32
        for start in stride(from: 0, to: texts.count, by: batch) {
            values += try features(uncached: texts[start..<min(start + batch, texts.count)]).values
            progress?(min(start + batch, texts.count), texts.count)
        }
        if let cacheFolder, let cacheFile {
            try? FileManager.default.createDirectory(atPath: cacheFolder, withIntermediateDirectories: true)
            let data = values.withUnsafeBytes { Data($0) }
            // Write beside and rename, so a crash never leaves a truncated cache file under the real name.
            let temporary = cacheFile + ".partial"
            if FileManager.default.createFile(atPath: temporary, contents: data) {
                _ = try? FileManager.default.removeItem(atPath: cacheFile)
                try? FileManager.default.moveItem(atPath: temporary, toPath: cacheFile)
            }
        }
        return FeatureMatrix(rows: texts.count, columns: d, values: values)
    }
}

/// A progress line on standard error: `label [#####     ] done/total rate/s`.
public final class ProgressBar: @unchecked Sendable {
    let label: String
    let start = ContinuousClock.now
    var lastDraw = ContinuousClock.now - .seconds(1)

    /// A bar with a label.
    public init(_ label: String) { self.label = label }

    /// Redraws (at most ten times a second, and at the end).
    public func update(_ done: Int, _ total: Int) {
        let now = ContinuousClock.now
        guard now - lastDraw > .milliseconds(100) || done == total else { return }
        lastDraw = now
        let width = 30, filled = total > 0 ? width * done / total : width
        let seconds = Double((now - start).components.attoseconds) / 1e18 + Double((now - start).components.seconds)
        let rate = seconds > 0 ? Double(done) / seconds : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(done)/\(total) \(Int(rate))/s\(done == total ? "\n" : "")".utf8))
    }
}
