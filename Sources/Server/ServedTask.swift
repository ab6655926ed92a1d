import Cascade
import Foundation
import Inference
import StructuredOutput

/// A GGUF model the service runs in-process, with its compiled schema constraints (used on the engine thread only).
public final class ServedModel: Sendable {
    /// Name in `/v1/models`.
    public let name: String
    /// The model.
    public let loaded: LoadedModel
    /// Compiled schemas, keyed by digest.
    public let constraints: ConstraintCache
    /// SHA-256 of the file.
    public let version: String

    /// Loads a model file.
    public init(name: String, path: String, threads: Int) throws {
        self.name = name
        loaded = try LoadedModel(path: path, threads: threads)
        constraints = ConstraintCache(tokenizer: loaded.tokenizer)
        version = try Digest.of(file: path)
    }
}

/// A task the service decides.
public enum ServedTask: Sendable {
    /// A classification task: spec, backbone, adapter, policy.
    case classification(Classifier, modelVersion: String, adapterVersion: String)
    /// An extraction task and the model that runs it.
    case extraction(ExtractionTask, model: ServedModel)

    /// Task name.
    public var name: String {
        switch self {
        case let .classification(c, _, _): c.spec.name
        case let .extraction(t, _): t.name
        }
    }

    /// Digest of the weights.
    public var modelVersion: String {
        switch self {
        case let .classification(_, v, _): v
        case let .extraction(_, m): m.version
        }
    }

    /// Digest of the adapter (classification).
    public var adapterVersion: String? {
        if case let .classification(_, _, a) = self { return a }
        return nil
    }

    /// Loads a task file: an extraction task if it names a `schema`, else a classification spec. Extraction models
    /// are shared with the chat models by path.
    public static func load(_ entry: ServiceConfig.TaskEntry, threads: Int, models: inout [String: ServedModel]) throws -> ServedTask {
        if try YAMLReader.load(entry.path).child("schema") != nil {
            let task = try ExtractionTask.load(entry.path)
            guard let path = task.model else {
                throw SpecError(file: entry.path, path: "model", line: nil, message: "an extraction task served by microscale needs a model")
            }
            let standardized = URL(fileURLWithPath: path).standardizedFileURL.path
            let model = try models[standardized] ?? ServedModel(name: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent,
                                                                path: standardized, threads: threads)
            models[standardized] = model
            return .extraction(task, model: model)
        }
        let spec = try TaskSpec.load(entry.path)
        let adapterPath = entry.adapter ?? spec.adapterPath
        let classifier = try Classifier(spec: spec, adapterPath: adapterPath, threads: threads)
        return .classification(classifier, modelVersion: classifier.extractor.backbone.digest, adapterVersion: try Digest.of(file: adapterPath))
    }
}

/// Masks what commonly identifies people in support text: e-mail addresses and runs of four or more digits (card,
/// account and phone numbers), keeping the rest readable for the log.
public func redact(_ text: String) -> String {
    var out = text
    for (pattern, replacement) in [
        (#"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"#, "[email]"),
        (#"\b[A-Z]{2}\d{2}[A-Z0-9 ]{10,30}\b"#, "[iban]"),
        (#"\d[\d \-]{2,}\d"#, "[number]"),
    ] {
        out = out.replacingOccurrences(of: pattern, with: replacement, options: .regularExpression)
    }
    return out
}
