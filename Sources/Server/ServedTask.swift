import Cascade
import Foundation
import Inference
import Store
import StructuredOutput
import Synchronization

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

/// The small model's draft of one input: the decision as it stands before any escalation, whether the larger tier
/// must be asked, and the engine's timings.
struct Drafted: Sendable {
    var response: DecisionResponse
    var needsTier: Bool
    var timing: Engine.Timing
}

/// What the larger tier is asked for one input.
struct TierQuestion: Sendable {
    var system: String
    var user: String
    /// The JSON Schema the answer must meet (sent as `response_format`, and checked on return).
    var schema: Schema
}

/// A task the service decides: how the small model drafts decisions, how the larger tier is asked and its answer
/// applied, and how a reviewer's answer is checked. Each kind of task is one type; the service never switches on kind.
protocol ServedTask: Sendable {
    /// Task name.
    var name: String { get }
    /// Digest of the weights.
    var modelVersion: String { get }
    /// Digest of the adapter (classification).
    var adapterVersion: String? { get }
    /// Longest input, in Unicode scalars.
    var maxInputCharacters: Int { get }
    /// The labels a reviewer chooses from (empty for extraction).
    var labels: [String] { get }
    /// The task as `GET /v1/tasks` lists it.
    var listing: TaskResponse { get }
    /// The larger tier a task names itself (`tiers.large`), used when the configuration names none.
    func ownTier(environment: [String: String]) throws -> ServiceConfig.Escalation?
    /// The small model's drafts of `texts` (validated by the caller), in order.
    func drafts(_ texts: [String], engine: Engine, config: ServiceConfig) async throws -> [Drafted]
    /// The question for the larger tier about a draft.
    func question(about response: DecisionResponse, text: String) -> TierQuestion
    /// Applies the larger tier's (schema-valid) answer: it meets the same checks and review policy as the small model's.
    func apply(answer: JSONValue, to response: inout DecisionResponse, text: String)
    /// Checks a reviewer's answer to `item`; confirmed when it equals the draft.
    func reviewOutcome(label: String?, fields: JSONValue?, item: ReviewItem) throws -> ReviewOutcome
}

/// Loads a task file: an extraction task if it names a `schema`, else a classification spec. Extraction models are
/// shared with the chat models by path.
func loadTask(_ entry: ServiceConfig.TaskEntry, threads: Int, models: inout [String: ServedModel]) throws -> any ServedTask {
    if try YAMLReader.load(entry.path).child("schema") != nil {
        let task = try ExtractionTask.load(entry.path)
        guard let path = task.model else {
            throw SpecError(file: entry.path, path: "model", line: nil, message: "an extraction task served by microscale needs a model")
        }
        let standardized = URL(fileURLWithPath: path).standardizedFileURL.path
        let model = try models[standardized] ?? ServedModel(name: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent,
                                                            path: standardized, threads: threads)
        models[standardized] = model
        return ServedExtraction(task: task, model: model)
    }
    let spec = try TaskSpec.load(entry.path)
    let adapterPath = entry.adapter ?? spec.adapterPath
    let classifier = try Classifier(spec: spec, adapterPath: adapterPath, threads: threads)
    let body = try String(decoding: Data(contentsOf: URL(fileURLWithPath: adapterPath)), as: UTF8.self)
    return try ServedClassification(classifier: classifier, adapterBody: body, adapterFile: adapterPath)
}

/// A classification task: spec, backbone, adapter and policy; inputs waiting together share one backbone pass. The
/// adapter can be swapped while serving (a promotion or rollback in the store), and a candidate can run beside it in
/// shadow; each decision records the version that made it.
final class ServedClassification: ServedTask {
    /// What is serving now.
    struct Serving: Sendable {
        var classifier: Classifier
        /// SHA-256 of the adapter file's bytes.
        var version: String
        var shadow: (classifier: Classifier, version: String)?
    }

    let spec: TaskSpec
    let extractor: FeatureExtractor
    let modelVersion: String
    /// `{"label": <one of the labels>}`, what the larger tier must answer.
    let answerSchema: Schema
    /// The adapter file the task started with, and its bytes (registered in the store's versions at start).
    let adapterFile: String
    let fileBody: String
    private let state: Mutex<Serving>

    init(classifier: Classifier, adapterBody: String, adapterFile: String) throws {
        spec = classifier.spec
        extractor = classifier.extractor
        modelVersion = classifier.extractor.backbone.digest
        self.adapterFile = adapterFile
        fileBody = adapterBody
        state = Mutex(Serving(classifier: classifier, version: Digest.of(adapterBody), shadow: nil))
        answerSchema = try Self.labelSchema(classifier.spec)
    }

    /// What is serving now (one consistent snapshot).
    var serving: Serving { state.withLock { $0 } }
    var classifier: Classifier { serving.classifier }
    var adapterVersion: String? { serving.version }

    /// A classifier for an adapter version's bytes, checked against this task's spec, backbone and template.
    func classifier(body: String, version: String) throws -> Classifier {
        let adapter = try Adapter.decode(Data(body.utf8), source: "adapter version \(version.prefix(12)) in the store", for: spec, extractor: extractor)
        return Classifier(spec: spec, extractor: extractor, adapter: adapter)
    }

    /// Serves `active` (and `shadow`) from now on; decisions already under way finish with what they started with.
    func swap(active: (Classifier, String)?, shadow: (Classifier, String)??) {
        state.withLock { s in
            if let (classifier, version) = active { s.classifier = classifier; s.version = version }
            if let shadow { s.shadow = shadow.map { (classifier: $0.0, version: $0.1) } }
        }
    }

    var name: String { spec.name }
    var maxInputCharacters: Int { spec.maxInputCharacters }
    var labels: [String] { spec.labels.map(\.name) }
    var listing: TaskResponse {
        TaskResponse(name: name, kind: "classification", description: spec.summary, labels: labels, schema: nil,
                     model_version: modelVersion, adapter_version: adapterVersion, out_of_scope_label: spec.outOfScope?.label)
    }

    func ownTier(environment: [String: String]) throws -> ServiceConfig.Escalation? {
        guard let large = spec.tiers.large, let url = large.destination, url.hasPrefix("http") else { return nil }
        var tier = ServiceConfig.Escalation(baseURL: url, model: large.model ?? "default")
        tier.apiKey = try large.resolvedAPIKey(environment, file: spec.file)
        return tier
    }

    func drafts(_ texts: [String], engine: Engine, config: ServiceConfig) async throws -> [Drafted] {
        let now = serving
        let adapterVersion: String? = now.version
        // Batches never mix adapter versions: the engine groups inputs by this key.
        return try await engine.classify(task: name + "@" + now.version, classifier: now.classifier, texts: texts).map { d, timing in
            var response = DecisionResponse(
                id: UUID().uuidString.lowercased(), task: name, label: d.label, fields: nil, fieldChecks: nil, confidence: d.probability,
                route: d.route, reason: DecisionReason(d.reason), detail: d.detail, riskClass: d.riskClass, tier: Tier(d.route),
                alternatives: d.alternatives.map { AlternativeLabel(label: $0.label, probability: $0.probability) },
                draft: nil, escalation: nil, latencyMs: Latency(), modelVersion: modelVersion, adapterVersion: adapterVersion,
                truncated: d.inputTokens == nil ? nil : d.truncated, highRiskMass: d.highRiskMass,
                inputTokens: d.inputTokens, tokensKept: d.tokensKept)
            response.latencyMs.policy = d.timings.policy
            return Drafted(response: response, needsTier: d.route == .escalate, timing: timing)
        }
    }

    func question(about response: DecisionResponse, text: String) -> TierQuestion {
        let list = spec.labels.map { "- \($0.name)" + ($0.description.map { ": " + $0 } ?? "") }.joined(separator: "\n")
        let system = """
            Task: \(spec.summary)
            Choose exactly one label for the user's message. Labels:
            \(list)
            A smaller model proposed "\(response.label ?? "")" with calibrated confidence \(String(format: "%.3f", response.confidence ?? 0)), \
            not enough to decide alone (\(response.detail)). Keep it if it is right, replace it if not.
            Answer with JSON: {"label": "<one of the labels>"}
            """
        return TierQuestion(system: system, user: text, schema: answerSchema)
    }

    func apply(answer: JSONValue, to response: inout DecisionResponse, text: String) {
        guard let label = answer["label"]?.stringValue, let index = spec.labelIndex(label) else { return }
        response.label = label
        response.riskClass = spec.labels[index].risk
        // The larger tier's label meets the same review policy as the small model's: always-review labels, the rules,
        // and a risk class whose uncertain predictions go to a person (the larger tier is not certified).
        var outcome = Policy.Outcome(label: index, probability: response.confidence ?? 0, route: .escalate, reason: .belowThreshold,
                                     detail: response.detail)
        classifier.policy.applyToLargerTier(&outcome, text: text)
        if outcome.route == .review {
            response.sendToReview(reason: DecisionReason(outcome.reason), detail: "the larger tier answered \(label); " + outcome.detail)
        }
    }

    func reviewOutcome(label: String?, fields: JSONValue?, item: ReviewItem) throws -> ReviewOutcome {
        guard let label else { throw APIError.invalid("give the label", param: "label") }
        guard spec.labelIndex(label) != nil else { throw APIError.invalid("'\(label)' is not a label of task \(item.task)", param: "label") }
        if fields != nil { throw APIError.invalid("a classification answer is a label, not fields", param: "fields") }
        return label == item.draftLabel ? .confirmed : .corrected
    }
}

/// An extraction task and the model that runs it; each input is one constrained generation on the engine.
struct ServedExtraction: ServedTask {
    let task: ExtractionTask
    let model: ServedModel

    var name: String { task.name }
    var modelVersion: String { model.version }
    var adapterVersion: String? { nil }
    var maxInputCharacters: Int { task.maxInputCharacters }
    var labels: [String] { [] }
    var listing: TaskResponse {
        TaskResponse(name: name, kind: "extraction", description: task.name, labels: nil, schema: task.schema.document,
                     model_version: modelVersion, adapter_version: nil)
    }

    func ownTier(environment: [String: String]) throws -> ServiceConfig.Escalation? { nil }

    func drafts(_ texts: [String], engine: Engine, config: ServiceConfig) async throws -> [Drafted] {
        let whitespace = config.jsonWhitespace
        return try await withThrowingTaskGroup(of: (Int, Drafted).self) { group in
            for (i, text) in texts.enumerated() {
                group.addTask {
                    let enqueued = ContinuousClock.now
                    let (result, timing) = try await engine.run {
                        let begin = ContinuousClock.now
                        let r = try task.extract(text, model: model.loaded, constraints: model.constraints, maxWhitespace: whitespace)
                        return (r, Engine.Timing(queueMs: (begin - enqueued).seconds * 1e3, modelMs: (ContinuousClock.now - begin).seconds * 1e3))
                    }
                    var response = DecisionResponse(
                        id: UUID().uuidString.lowercased(), task: name, label: nil, fields: result.value, fieldChecks: Self.checks(result),
                        confidence: nil, route: .accept, reason: .valid, detail: "every field passed its checks", riskClass: nil, tier: .small,
                        alternatives: [], draft: nil, escalation: nil, latencyMs: Latency(), modelVersion: modelVersion, adapterVersion: nil)
                    if !result.valid {
                        response.reason = .validationFailed
                        response.detail = "failed checks: " + Self.failedChecks(result)
                    }
                    return (i, Drafted(response: response, needsTier: !result.valid, timing: timing))
                }
            }
            var out = [Drafted?](repeating: nil, count: texts.count)
            for try await (i, d) in group { out[i] = d }
            return out.map { $0! }
        }
    }

    func question(about response: DecisionResponse, text: String) -> TierQuestion {
        let messages = task.messages(for: text)
        let system = (messages.first { $0.role == "system" }?.content ?? "")
            + "\nA smaller model's answer failed these checks: \(response.detail)\nIts answer: \(response.fields?.description ?? "none")"
        return TierQuestion(system: system, user: messages.last?.content ?? text, schema: task.schema)
    }

    func apply(answer: JSONValue, to response: inout DecisionResponse, text: String) {
        let checked = task.check(StructuredGeneration(value: answer, schema: task.schema), input: text)
        response.fields = answer
        response.fieldChecks = Self.checks(checked)
        if !checked.valid {
            response.sendToReview(detail: "the larger tier's answer failed its checks too: " + Self.failedChecks(checked))
        }
    }

    func reviewOutcome(label: String?, fields: JSONValue?, item: ReviewItem) throws -> ReviewOutcome {
        guard let fields else { throw APIError.invalid("give the fields", param: "fields") }
        if label != nil { throw APIError.invalid("an extraction answer is fields, not a label", param: "label") }
        let violations = task.schema.violations(of: fields)
        guard violations.isEmpty else {
            throw APIError.invalid("the fields do not match the schema: \(violations.map(\.description).joined(separator: "; "))", param: "fields")
        }
        return fields.description == item.draftFieldsJSON.flatMap({ try? JSONValue.parse($0) })?.description ? .confirmed : .corrected
    }

    /// The fields (and other parts) that failed their checks, in words.
    static func failedChecks(_ r: ExtractionResult) -> String {
        (r.fields.filter { !$0.valid }.map { "\($0.name): \($0.reasons.joined(separator: ", "))" } + r.otherViolations).joined(separator: "; ")
    }

    static func checks(_ r: ExtractionResult) -> [FieldCheck] {
        r.fields.map { FieldCheck(name: $0.name, valid: $0.valid, reasons: $0.reasons) } +
            (r.otherViolations.isEmpty ? [] : [FieldCheck(name: "/", valid: false, reasons: r.otherViolations)])
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
