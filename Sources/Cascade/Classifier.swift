import Foundation
import Inference
import Statistics

/// What the cascade decided for one input. It encodes in the service's shape (see `encode(to:)`), so the command line
/// and the API describe a decision alike.
public struct Decision: Encodable, Sendable {
    /// The predicted label.
    public var label: String
    /// Its calibrated probability.
    public var probability: Double
    /// Where the input goes.
    public var route: Route
    /// Why.
    public var reason: Reason
    /// The reason in words.
    public var detail: String
    /// The label's risk class.
    public var riskClass: String
    /// Where the route leads (the tier's name and destination).
    public var destination: String
    /// Probability mass on each high-risk class.
    public var highRiskMass: [String: Double]
    /// The most probable labels, best first.
    public var alternatives: [Alternative]
    /// Time spent, in milliseconds.
    public var timings: Timings
    /// Tokens the backbone made of the input (nil when not measured).
    public var inputTokens: Int? = nil
    /// Tokens the backbone read (the task's `max_input_tokens` cuts longer inputs).
    public var tokensKept: Int? = nil
    /// Whether the backbone read only the beginning of the input.
    public var truncated: Bool { (inputTokens ?? 0) > (tokensKept ?? .max) }

    /// A candidate label.
    public struct Alternative: Codable, Sendable {
        /// Label.
        public var label: String
        /// Calibrated probability.
        public var probability: Double
    }

    /// Milliseconds per stage.
    public struct Timings: Codable, Sendable {
        /// Features from the backbone.
        public var backbone: Double
        /// The head and softmax.
        public var head: Double
        /// Policy and rules.
        public var policy: Double
        /// All of it.
        public var total: Double
    }

    /// The API's member names (`DecisionResponse`): `probability` is `confidence`, `timings` is `latency_ms`.
    enum CodingKeys: String, CodingKey {
        case label, confidence, route, reason, detail, tier, alternatives, destination, truncated
        case riskClass = "risk_class", highRiskMass = "high_risk_mass", latencyMs = "latency_ms"
        case inputTokens = "input_tokens", tokensKept = "tokens_kept"
    }

    /// Encodes the decision as the service answers it: `route` is the outcome (accepted, escalated, review), `reason`
    /// its snake_case name, `tier` the tier the route leads to (small, large, human), and `destination` where that is.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(label, forKey: .label)
        try c.encode(probability, forKey: .confidence)
        try c.encode(route.outcome, forKey: .route)
        try c.encode(reason.apiName, forKey: .reason)
        try c.encode(detail, forKey: .detail)
        try c.encode(riskClass, forKey: .riskClass)
        try c.encode(route.tier, forKey: .tier)
        try c.encode(alternatives, forKey: .alternatives)
        try c.encode(highRiskMass, forKey: .highRiskMass)
        try c.encode(timings, forKey: .latencyMs)
        try c.encode(destination, forKey: .destination)
        if let inputTokens, let tokensKept {
            try c.encode(truncated, forKey: .truncated)
            try c.encode(inputTokens, forKey: .inputTokens)
            try c.encode(tokensKept, forKey: .tokensKept)
        }
    }
}

/// Why an input is refused before any model work: the one rule the command line, the service, training data and
/// extraction share. Blank means nothing but whitespace once invisible characters are removed
/// (``RuleText/isBlank(_:)``); length counts Unicode scalars.
public enum InputProblem: Equatable, Sendable {
    /// Nothing but whitespace, zero-width or format characters.
    case blank
    /// More Unicode scalars than the task accepts.
    case tooLong(characters: Int, limit: Int)

    /// The problem with `text` under a limit of `maxCharacters` scalars, or nil.
    public init?(_ text: String, maxCharacters: Int) {
        if RuleText.isBlank(text) { self = .blank; return }
        let scalars = text.unicodeScalars.count
        guard scalars > maxCharacters else { return nil }
        self = .tooLong(characters: scalars, limit: maxCharacters)
    }

    /// The problem in words, about `subject` ("the input", "inputs[3]") of task `task`.
    public func describe(_ subject: String, task: String) -> String {
        switch self {
        case .blank: "\(subject) is empty (nothing but whitespace or invisible characters)"
        case let .tooLong(n, limit): "\(subject) has \(n) characters (Unicode scalars); task \(task) accepts at most \(limit)"
        }
    }
}

/// An input the classifier refuses, before any model work.
public struct InputError: Error, CustomStringConvertible, Sendable {
    /// What is wrong.
    public var message: String
    public var description: String { message }
}

/// A task ready to decide: spec, backbone, adapter and policy, loaded once.
public struct Classifier: Sendable {
    /// The task.
    public let spec: TaskSpec
    /// Features.
    public let extractor: FeatureExtractor
    /// The trained (or zero-shot) head with its certificates.
    public let adapter: Adapter
    /// The policy built from them.
    public let policy: Policy

    /// Loads a task's backbone and adapter; refuses an adapter made for another backbone, template or policy.
    public init(spec: TaskSpec, adapterPath: String? = nil, threads: Int = 2) throws {
        let backbone = try LoadedBackbone(spec.backbone, maxTokens: spec.maxInputTokens, threads: threads)
        let extractor = FeatureExtractor(backbone: backbone, template: spec.template, maxTokens: spec.maxInputTokens)
        let adapter = try Adapter.load(
            adapterPath ?? spec.adapterPath, for: spec, backboneDigest: backbone.digest,
            backboneIdentifier: backbone.model.identifier, templateDigest: extractor.templateDigest)
        self.init(spec: spec, extractor: extractor, adapter: adapter)
    }

    /// A classifier over parts already loaded.
    public init(spec: TaskSpec, extractor: FeatureExtractor, adapter: Adapter) {
        self.spec = spec
        self.extractor = extractor
        self.adapter = adapter
        policy = Policy(spec: spec, adapter: adapter)
    }

    /// Logits for a batch of feature vectors of `texts` (before temperature).
    public func logits(_ features: FeatureMatrix, texts: [String]) -> [Float] {
        // Zero-shot scores are cosine similarities: inputs are normalised as the label vectors were.
        let x = adapter.kind == .zeroShot ? features.unitRows() : features
        return adapter.head.logits(x, sparse: adapter.lexical?.rows(texts))
    }

    /// Calibrated probabilities for a batch of feature vectors of `texts`.
    public func probabilities(_ features: FeatureMatrix, texts: [String]) -> [Double] {
        softmax(logits(features, texts: texts), classes: adapter.head.classes, temperature: adapter.temperature)
    }

    /// Each item's highest cosine similarity to a label centroid (nil without a scope check).
    public func similarities(_ features: FeatureMatrix) -> [Double]? {
        // With an out-of-scope label the centroids are the other labels' only.
        adapter.scope.map { Classifier.similarities(features, centroids: $0.centroids, labels: $0.centroids.count / max(features.columns, 1)) }
    }

    /// Highest cosine similarity of each row of `x` to the unit-length `centroids`.
    static func similarities(_ x: FeatureMatrix, centroids: [Float], labels: Int) -> [Double] {
        let unit = x.unitRows()
        return (0..<x.rows).map { i in
            var best = -Float.infinity
            for c in 0..<labels {
                var dot: Float = 0
                for (p, v) in zip(centroids[c * x.columns..<(c + 1) * x.columns], unit.row(i)) { dot += p * v }
                best = max(best, dot)
            }
            return Double(best)
        }
    }

    /// Checks an input before it reaches the model: not empty once whitespace and invisible characters are removed
    /// (``RuleText/isBlank(_:)``), at most `max_input_characters` Unicode scalars. The service applies the same rules.
    public func validate(_ text: String) throws {
        if let problem = InputProblem(text, maxCharacters: spec.maxInputCharacters) {
            throw InputError(message: problem.describe("the input", task: spec.name))
        }
    }

    /// Decides one input.
    public func decide(_ text: String) throws -> Decision { try decide(batch: [text])[0] }

    /// Decides several inputs with one backbone pass; each decision carries the batch's timings.
    public func decide(batch texts: [String]) throws -> [Decision] {
        for text in texts { try validate(text) }
        let clock = ContinuousClock(), start = clock.now
        let x = try extractor.features(uncached: texts)
        let afterBackbone = clock.now
        let p = probabilities(x, texts: texts)
        let similarity = similarities(x)
        let afterHead = clock.now
        let classes = adapter.head.classes
        var decisions = texts.indices.map { i in
            decision(Array(p[i * classes..<(i + 1) * classes]), text: texts[i], similarity: similarity?[i])
        }
        let end = clock.now
        func ms(_ d: Duration) -> Double { d.seconds * 1e3 }
        for i in decisions.indices {
            decisions[i].timings = .init(backbone: ms(afterBackbone - start), head: ms(afterHead - afterBackbone),
                                         policy: ms(end - afterHead), total: ms(end - start))
            (decisions[i].inputTokens, decisions[i].tokensKept) = extractor.tokenCounts(texts[i])
        }
        return decisions
    }

    /// The decision for calibrated probabilities `p` of `text` with its scope similarity (no timings).
    public func decision(_ p: [Double], text: String, similarity: Double? = nil) -> Decision {
        let outcome = policy.decide(p, text: text, similarity: similarity)
        let ranked = p.indices.sorted { p[$0] > p[$1] }.prefix(3)
        let destination: String
        switch outcome.route {
        case .accept: destination = spec.tiers.small.name
        case .escalate: destination = [spec.tiers.large?.name, spec.tiers.large?.destination].compactMap { $0 }.joined(separator: " at ")
        case .review: destination = [spec.tiers.human.name, spec.tiers.human.destination].compactMap { $0 }.joined(separator: ": ")
        }
        return Decision(
            label: spec.labels[outcome.label].name, probability: outcome.probability, route: outcome.route,
            reason: outcome.reason, detail: outcome.detail, riskClass: spec.labels[outcome.label].risk,
            destination: destination, highRiskMass: policy.highRiskMass(p),
            alternatives: ranked.map { .init(label: spec.labels[$0].name, probability: p[$0]) },
            timings: .init(backbone: 0, head: 0, policy: 0, total: 0))
    }
}
