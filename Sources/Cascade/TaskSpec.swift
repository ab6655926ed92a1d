import Foundation
import Datasets
import Yams

/// A classification task as configured in a YAML file: the pinned template and backbone, the labels with their risk
/// classes, the error targets and confidence of the guarantee, the rules applied after the model, and the tiers
/// decisions can go to with their costs.
public struct TaskSpec: Sendable {
    /// Task name (also the adapter's).
    public var name: String
    /// What the task is for.
    public var summary: String
    /// The spec file this was read from.
    public var file: String
    /// The feature extractor.
    public var backbone: BackboneSpec
    /// Text shown to the backbone, with `{text}` where the input goes.
    public var template: String
    /// Inputs are truncated to this many tokens.
    public var maxInputTokens: Int
    /// Longer inputs are refused outright (they are not what the task is for, and cost time).
    public var maxInputCharacters: Int
    /// Confidence of each risk guarantee (1 − δ).
    public var confidence: Double
    /// The labels, in order.
    public var labels: [LabelSpec]
    /// The risk classes, by name.
    public var riskClasses: [RiskClass]
    /// Below this top probability an input is treated as out of scope.
    public var outOfScopeBelow: Double
    /// Share of in-scope calibration inputs the similarity check may flag as out of scope (0: no check).
    public var outOfScopeQuantile: Double
    /// Out-of-scope inputs as data: a label for "none of these", learnt, answered and certified like the others
    /// (nil: not declared). Its label is the last of `labels`, in a risk class of the same name that is never accepted.
    public var outOfScope: OutOfScope?
    /// Labels whose predictions always go to review.
    public var alwaysReview: [String]
    /// Deterministic checks applied after the model.
    public var rules: [Rule]
    /// Where decisions go and what each costs.
    public var tiers: Tiers
    /// Where the trained adapter is written and read.
    public var adapterPath: String
    /// Column names in training and evaluation files.
    public var textColumn: String, labelColumn: String
    /// Training settings.
    public var training: TrainingSettings

    /// δ, the allowed probability that a guarantee fails.
    public var delta: Double { 1 - confidence }

    /// Index of the out-of-scope label, when the task declares one.
    public var outOfScopeIndex: Int? { outOfScope.flatMap { labelIndex($0.label) } }

    /// Index of each label name.
    public func labelIndex(_ name: String) -> Int? { labels.firstIndex { $0.name == name } }

    /// The index in `riskClasses` of each label's risk class, in label order.
    public var riskClassIndices: [Int] { labels.map { label in riskClasses.firstIndex { $0.name == label.risk }! } }
}

/// How a task treats inputs that none of its labels fits (the spec's `out_of_scope` mapping).
///
/// Rows of the training file with `label` are out-of-scope examples; reviewers and the larger tier may answer it.
/// Certification counts an accepted out-of-scope input as an error, over calibration data in which out-of-scope items
/// make up `expectedShare` (or their share in the data), and chooses the scope check's similarity floor together with
/// the thresholds.
public struct OutOfScope: Sendable, Equatable {
    /// The label meaning "none of the task's labels" (default `out_of_scope`).
    public var label: String
    /// Expected share of out-of-scope inputs in traffic; calibration items are subsampled to it (nil: the data's share).
    public var expectedShare: Double?
    /// Where an input predicted out of scope goes (escalate, or review; escalate becomes review without a larger tier).
    /// An out-of-scope answer of the larger tier stands under escalate and goes to a person under review.
    public var route: Route
    /// The similarity floors tried, as quantiles of the fitted in-scope items' similarity to their nearest label centroid.
    public var floorQuantiles: [Double]
    /// A column of the training file naming each out-of-scope row's kind (its source: an intent, a dataset). With it,
    /// each out-of-scope calibration item is scored by a head fitted without its kind, so the certificate covers kinds
    /// the training data lacks (nil: scored by the served head, which has seen every kind in the file).
    public var kindColumn: String?
    /// Folds the kinds are held out in (each fold costs one more fit of the head).
    public var kindFolds: Int
}

/// One label.
public struct LabelSpec: Sendable, Equatable {
    /// The label as it appears in data.
    public var name: String
    /// Its risk class.
    public var risk: String
    /// A sentence describing it (used for zero-shot starts and in reports).
    public var description: String?
}

/// A group of labels with one error target.
public struct RiskClass: Sendable, Equatable {
    /// Class name.
    public var name: String
    /// The error rate to stay under among accepted predictions of these labels.
    public var targetError: Double
    /// Where a prediction of these labels goes when it is not accepted.
    public var onReject: Route
    /// For high-risk classes: the highest acceptable rate at which an item of this class is auto-accepted as a label
    /// outside every high-risk class. Setting it makes the class high-risk.
    public var missTarget: Double?
    /// For high-risk classes: the largest probability mass on this class that a low-risk acceptance may carry.
    public var maxMass: Double

    /// Whether the class is protected by the asymmetric rule.
    public var isHighRisk: Bool { missTarget != nil }
}

/// A deterministic check on the input text, applied after the model; it can only make a route stricter.
public struct Rule: Sendable {
    /// Rule name (shown as the reason).
    public var name: String
    /// Regular expression (ICU syntax) searched in the input.
    public var pattern: String
    /// The compiled pattern.
    public var expression: NSRegularExpression
    /// The route when it matches.
    public var route: Route
    /// Only for these predicted labels (empty: any).
    public var labels: [String]
}

/// The tiers decisions go to, with costs per 1,000 requests.
public struct Tiers: Sendable {
    /// One tier.
    public struct Tier: Sendable {
        /// Display name.
        public var name: String
        /// Cost per 1,000 requests it handles (any currency; the report shows it as given).
        public var costPer1k: Double
        /// Where requests go: an OpenAI-compatible base URL for the large tier, a queue name for review.
        public var destination: String?
        /// Model name at the destination.
        public var model: String?
        /// Bearer key for the destination (the large tier), as written: a key, or `env:NAME` to read it from the
        /// environment when the service starts (so the spec can be committed).
        public var apiKey: String? = nil

        /// The key with `env:NAME` read from `environment`; nil when none is set. Throws when the variable is missing,
        /// naming `file` (the spec).
        public func resolvedAPIKey(_ environment: [String: String], file: String = "task spec") throws -> String? {
            guard let apiKey else { return nil }
            guard apiKey.hasPrefix("env:") else { return apiKey }
            let name = String(apiKey.dropFirst(4))
            guard let value = environment[name], !value.isEmpty else {
                throw SpecError(file: file, path: "tiers.large.api_key", line: nil, message: "environment variable \(name) is not set")
            }
            return value
        }
    }
    /// The in-process small model.
    public var small: Tier
    /// The larger model escalations go to (nil: escalations go to review).
    public var large: Tier?
    /// Human review.
    public var human: Tier
    /// Currency symbol or code shown with costs.
    public var currency: String
}

/// How `microscale train` fits the head.
public struct TrainingSettings: Sendable {
    /// Share of each label held out for calibration.
    public var calibrationFraction: Double
    /// Seed of every split.
    public var seed: UInt64
    /// Cross-validation folds for choosing the L2 strength.
    public var folds: Int
    /// L2 strengths tried (on standardised features).
    public var l2Grid: [Double]
    /// A label with fewer calibration items than this is never auto-accepted.
    public var minLabelItems: Int
    /// Lexical TF-IDF features beside the backbone's (nil: none).
    public var lexical: Lexical?

    /// Settings of the lexical features.
    public struct Lexical: Sendable {
        /// A term enters the vocabulary when this many training texts contain it.
        public var minDocuments: Int
        /// L2 strengths tried on the lexical weights.
        public var l2Grid: [Double]
    }
}

/// The feature extractor named by a spec.
public struct BackboneSpec: Sendable, Equatable {
    /// What kind of model.
    public enum Kind: String, Sendable { case bert, gguf }
    /// Model kind.
    public var kind: Kind
    /// Model folder (bert) or file (gguf), resolved.
    public var path: String
    /// Pooling for a decoder.
    public var pooling: String
    /// For a decoder: the block whose residual stream is pooled (nil: the final layer).
    public var layer: Int?
    /// For an encoder: the blocks whose mean-pooled outputs are concatenated (nil: the last).
    public var layers: [Int]?
}

extension TaskSpec {
    /// Reads and checks a spec; relative paths in it are resolved against its folder.
    public static func load(_ file: String) throws -> TaskSpec {
        try parse(YAMLReader.load(file), folder: URL(fileURLWithPath: file).deletingLastPathComponent().path)
    }

    static func parse(_ r: YAMLReader, folder: String) throws -> TaskSpec {
        try r.only([
            "name", "description", "backbone", "template", "max_input_tokens", "max_input_characters", "confidence",
            "labels", "risk_classes", "out_of_scope", "out_of_scope_below", "out_of_scope_quantile", "always_review", "rules", "tiers", "adapter", "data", "training",
        ])
        let name = try r.required("name").string()
        guard name.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]*$", options: .regularExpression) != nil else {
            throw try r.required("name").error("use letters, digits, '.', '_' or '-' (it names files)")
        }
        func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : folder + "/" + path }

        // Risk classes first: labels refer to them.
        var riskClasses = [RiskClass]()
        for (className, c) in try r.required("risk_classes").entries() {
            try c.only(["target_error", "on_reject", "miss_target", "max_mass"])
            riskClasses.append(RiskClass(
                name: className,
                targetError: try c.required("target_error").double(in: 0.0001...0.5),
                onReject: try c.child("on_reject")?.enumeration(Route.self) ?? .escalate,
                missTarget: try c.child("miss_target")?.double(in: 0.0001...0.5),
                maxMass: try c.child("max_mass")?.double(in: 0...1) ?? 0.5))
            if riskClasses.last!.onReject == .accept { throw try c.required("on_reject").error("a rejected prediction cannot be accepted") }
        }
        if riskClasses.isEmpty { throw try r.required("risk_classes").error("define at least one risk class") }

        var labels = [LabelSpec]()
        for (labelName, l) in try r.required("labels").entries() {
            let label: LabelSpec
            if l.node.scalar != nil {
                label = LabelSpec(name: labelName, risk: try l.string(), description: nil)  // `billing: standard`
            } else {
                try l.only(["risk", "description"])
                label = LabelSpec(name: labelName, risk: try l.required("risk").string(), description: try l.child("description")?.string())
            }
            guard riskClasses.contains(where: { $0.name == label.risk }) else {
                throw l.error("unknown risk class '\(label.risk)'; defined: \(riskClasses.map(\.name).joined(separator: ", "))")
            }
            labels.append(label)
        }
        if labels.count < 2 { throw try r.required("labels").error("a classification task needs at least two labels") }

        var outOfScope: OutOfScope?
        if let o = r.child("out_of_scope") {
            if let q = r.child("out_of_scope_quantile") {
                throw q.error("with out_of_scope declared, the scope floor is chosen with the thresholds: set out_of_scope.floor_quantiles instead")
            }
            try o.only(["label", "description", "expected_share", "route", "floor_quantiles", "kind_column", "kind_folds"])
            let label = try o.child("label")?.string() ?? "out_of_scope"
            if labels.contains(where: { $0.name == label }) {
                throw o.error("'\(label)' is also under labels: declare the out-of-scope label under out_of_scope only")
            }
            if riskClasses.contains(where: { $0.name == label }) {
                throw o.error("'\(label)' is also a risk class name; the out-of-scope label gets a risk class of its own name")
            }
            let route = try o.child("route")?.enumeration(Route.self) ?? .escalate
            if route == .accept { throw try o.required("route").error("an out-of-scope prediction cannot be accepted: use escalate or review") }
            let quantiles = try o.child("floor_quantiles")?.items().map { try $0.double(in: 0...0.5) } ?? [0, 0.01, 0.05]
            if quantiles.isEmpty || quantiles.count > 10 { throw try o.required("floor_quantiles").error("give 1 to 10 quantiles") }
            outOfScope = OutOfScope(
                label: label, expectedShare: try o.child("expected_share")?.double(in: 0.001...0.9), route: route,
                floorQuantiles: Array(Set(quantiles)).sorted(), kindColumn: try o.child("kind_column")?.string(),
                kindFolds: try o.child("kind_folds")?.int(in: 2...50) ?? 5)
            // Never accepted, so its target only labels reports: the strictest of the task's.
            riskClasses.append(RiskClass(name: label, targetError: riskClasses.map(\.targetError).min()!, onReject: route, missTarget: nil, maxMass: 1))
            labels.append(LabelSpec(
                name: label, risk: label,
                description: try o.child("description")?.string() ?? "None of the other labels applies: the message is outside this task."))
        }

        let alwaysReview = try r.child("always_review")?.strings() ?? []
        for label in alwaysReview where !labels.contains(where: { $0.name == label }) {
            throw try r.required("always_review").error("'\(label)' is not a label of this task")
        }

        var rules = [Rule]()
        for item in try r.child("rules")?.items() ?? [] {
            try item.only(["name", "pattern", "route", "labels"])
            let pattern = try item.required("pattern").string()
            let expression: NSRegularExpression
            do { expression = try NSRegularExpression(pattern: pattern) } catch {
                throw try item.required("pattern").error("not a valid regular expression: \(pattern)")
            }
            let rule = Rule(
                name: try item.required("name").string(), pattern: pattern, expression: expression,
                route: try item.required("route").enumeration(Route.self), labels: try item.child("labels")?.strings() ?? [])
            for label in rule.labels where !labels.contains(where: { $0.name == label }) {
                throw try item.required("labels").error("'\(label)' is not a label of this task")
            }
            rules.append(rule)
        }

        let template = try r.child("template")?.string() ?? "{text}"
        guard template.contains("{text}") else { throw try r.required("template").error("the template must contain {text}") }

        let tiers = try parseTiers(try r.required("tiers"))
        let dataColumns = r.child("data")
        try dataColumns?.only(["text_column", "label_column"])
        let training = r.child("training")
        try training?.only(["calibration_fraction", "seed", "folds", "l2_grid", "min_label_items", "lexical"])
        let lexical = training?.child("lexical")
        try lexical?.only(["min_documents", "l2_grid"])

        return TaskSpec(
            name: name,
            summary: try r.child("description")?.string() ?? "",
            file: r.file,
            backbone: try parseBackbone(try r.required("backbone"), resolve: resolve),
            template: template,
            maxInputTokens: try r.child("max_input_tokens")?.int(in: 8...512) ?? 128,
            maxInputCharacters: try r.child("max_input_characters")?.int(in: 1...1_000_000) ?? 20_000,
            confidence: try r.child("confidence")?.double(in: 0.5...0.9999) ?? 0.95,
            labels: labels,
            riskClasses: riskClasses,
            outOfScopeBelow: try r.child("out_of_scope_below")?.double(in: 0...1) ?? 0,
            outOfScopeQuantile: try r.child("out_of_scope_quantile")?.double(in: 0...0.5) ?? 0.01,
            outOfScope: outOfScope,
            alwaysReview: alwaysReview,
            rules: rules,
            tiers: tiers,
            adapterPath: resolve(try r.child("adapter")?.string() ?? "\(name).adapter.json"),
            textColumn: try dataColumns?.child("text_column")?.string() ?? "text",
            labelColumn: try dataColumns?.child("label_column")?.string() ?? "label",
            training: TrainingSettings(
                calibrationFraction: try training?.child("calibration_fraction")?.double(in: 0.05...0.8) ?? 0.25,
                seed: UInt64(try training?.child("seed")?.int(in: 0...Int.max) ?? 7),
                folds: try training?.child("folds")?.int(in: 2...20) ?? 5,
                l2Grid: try training?.child("l2_grid").map { try $0.items().map { try $0.double(in: 0...100) } }
                    ?? [1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
                minLabelItems: try training?.child("min_label_items")?.int(in: 1...10_000) ?? 10,
                lexical: try lexical.map { l in
                    TrainingSettings.Lexical(
                        minDocuments: try l.child("min_documents")?.int(in: 1...1_000) ?? 2,
                        l2Grid: try l.child("l2_grid").map { try $0.items().map { try $0.double(in: 0...100) } } ?? [1e-5, 3e-5, 1e-4])
                }))
    }

    static func parseBackbone(_ b: YAMLReader, resolve: (String) -> String) throws -> BackboneSpec {
        var spec: BackboneSpec
        if b.node.scalar != nil {
            spec = try backbone(named: try b.string(), at: b, resolve: resolve)
        } else {
            try b.only(["model", "pooling", "layer", "layers"])
            spec = try backbone(named: try b.required("model").string(), at: b, resolve: resolve)
            spec.pooling = try b.child("pooling")?.string() ?? spec.pooling
            guard ["mean", "last"].contains(spec.pooling) else { throw try b.required("pooling").error("use mean or last") }
            spec.layer = try b.child("layer")?.int(in: 1...256)
            spec.layers = try b.child("layers")?.items().map { try $0.int(in: 1...256) }
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: spec.path, isDirectory: &isFolder) else {
            throw b.error("the model \(spec.path) does not exist (run `make models` to fetch the bundled ones)")
        }
        if spec.kind == .bert, !isFolder.boolValue { throw b.error("\(spec.path) is not a folder of a sentence-transformers model") }
        return spec
    }

    static func backbone(named name: String, at b: YAMLReader, resolve: (String) -> String) throws -> BackboneSpec {
        if name == "minilm" { return BackboneSpec(kind: .bert, path: ProjectPaths.models + "/all-MiniLM-L6-v2", pooling: "mean") }
        if name.hasPrefix("bert:") { return BackboneSpec(kind: .bert, path: resolve(String(name.dropFirst(5))), pooling: "mean") }
        if name.hasPrefix("gguf:") { return BackboneSpec(kind: .gguf, path: resolve(String(name.dropFirst(5))), pooling: "mean") }
        throw b.error("unknown backbone '\(name)': use minilm, bert:FOLDER or gguf:FILE")
    }

    static func parseTiers(_ t: YAMLReader) throws -> Tiers {
        try t.only(["small", "large", "human", "currency"])
        func tier(_ key: String, defaultName: String) throws -> Tiers.Tier? {
            guard let r = t.child(key) else { return nil }
            try r.only(["name", "cost_per_1k", "endpoint", "model", "queue"] + (key == "large" ? ["api_key"] : []))
            return Tiers.Tier(
                name: try r.child("name")?.string() ?? defaultName,
                costPer1k: try r.required("cost_per_1k").double(in: 0...1e9),
                destination: try (r.child("endpoint") ?? r.child("queue"))?.string(),
                model: try r.child("model")?.string(),
                apiKey: try r.child("api_key")?.string())
        }
        guard let small = try tier("small", defaultName: "small model") else { throw t.error("missing required key 'small'") }
        guard let human = try tier("human", defaultName: "human review") else { throw t.error("missing required key 'human'") }
        return Tiers(
            small: small, large: try tier("large", defaultName: "large model"), human: human,
            currency: try t.child("currency")?.string() ?? "$")
    }
}
