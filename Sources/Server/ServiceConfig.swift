import Cascade
import Foundation

/// What `microscale serve` runs: address, keys, store, tasks, chat models, the escalation tier, limits and drift alerts.
/// Loaded from YAML; secrets may be given as `env:NAME` so the file can be committed.
public struct ServiceConfig: Sendable {
    /// How much of an input the decision log keeps.
    public enum InputLogging: String, Sendable, CaseIterable {
        /// The text as received.
        case full
        /// E-mail addresses, long digit runs and IBAN/card-like strings masked.
        case redacted
        /// Only the SHA-256 (always stored).
        case hash
    }

    /// A task to serve: a classification spec (with its adapter) or an extraction task.
    public struct TaskEntry: Sendable {
        /// Path of the task file.
        public var path: String
        /// Adapter file (classification; default: the spec's).
        public var adapter: String?
    }

    /// The larger tier: any OpenAI-compatible chat-completions endpoint.
    public struct Escalation: Sendable {
        /// Base URL, up to and including `/v1`.
        public var baseURL: String
        /// Model name sent in requests.
        public var model: String
        /// Bearer key (nil: none).
        public var apiKey: String?
        /// Seconds before one attempt is abandoned.
        public var timeout: Double = 10
        /// Attempts after the first.
        public var retries: Int = 2
        /// First back-off, doubled per retry (with jitter).
        public var backoff: Double = 0.2
        /// Consecutive failures that open the circuit.
        public var breakerFailures: Int = 5
        /// Seconds the circuit stays open before one probe is let through.
        public var breakerCooldown: Double = 30
        /// Most tokens the tier may answer with.
        public var maxTokens: Int = 200
        /// Most requests to the tier at once; more escalations wait (at most `timeout`) for one to finish.
        public var maxConcurrent: Int = 8

        /// A tier with the default timeouts, retries and breaker.
        public init(baseURL: String, model: String) { self.baseURL = baseURL; self.model = model }
    }

    /// Request limits.
    public struct Limits: Sendable {
        /// Largest request body, in bytes.
        public var maxBodyBytes = 1 << 20
        /// Most inputs in one batch request.
        public var maxBatchInputs = 64
        /// Most prompt tokens for chat completions.
        public var maxPromptTokens = 1536
        /// Most tokens generated per completion.
        public var maxCompletionTokens = 512
        /// Most inputs waiting for the engine before requests are refused with 429.
        public var maxQueue = 256
        /// Most inputs classified in one engine pass.
        public var maxBatch = 32
    }

    /// Drift windows and alert thresholds.
    public struct Drift: Sendable {
        /// Decisions per window.
        public var window = 500
        /// Seconds between recomputations.
        public var interval: Double = 10
        /// Fewest decisions (and, for the correction rate, resolved reviews) before an alert may fire.
        public var minSamples = 30
        /// Alert when the escalation rate goes above this.
        public var escalationRate: Double?
        /// Alert when the share of escalations the larger tier did not answer goes above this.
        public var escalationFailureRate: Double?
        /// Alert when the review rate goes above this.
        public var reviewRate: Double?
        /// Alert when the share of reviewed items corrected goes above this.
        public var correctionRate: Double?
        /// Alert when the mean confidence falls below this.
        public var meanConfidence: Double?
    }

    /// The learning loop: teacher checks, adapter polling, retraining (`learning:`).
    public struct Learning: Sendable {
        /// Share of teacher labels (the larger tier's answers, distilled labels) sent to a person to check,
        /// disagreements with the small model first (0: none).
        public var reviewShare: Double = 0
        /// Seconds between looks at the store for a promoted (or shadowed) adapter version.
        public var pollSeconds: Double = 2
        /// Share of human-labelled texts a retrain holds out to compare adapters.
        public var holdout = 0.2
        /// Share of the other human-labelled texts a retrain calibrates and certifies on.
        public var calibrationShare = 0.5
        /// Fewest holdout items the promotion gate compares on.
        public var minHoldout = 30
        /// Reviewers' agreement with a teacher below which the teacher is flagged.
        public var agreementFloor = 0.9
    }

    /// Audits of accepted decisions (`audit:`): the guarantee watched on live traffic.
    public struct Audit: Sendable {
        /// Share of the small model's accepted decisions also sent to review, chosen by a hash of the decision id
        /// (0: none).
        public var share: Double = 0
        /// Newest audits per risk class the realised error and its bounds are computed over.
        public var window = 300
        /// Fewest audits in the window before it may alert.
        public var minAudits = AuditStatus.defaultMinAudits
        /// No audits, a window of 300.
        public init() {}
    }

    /// Host to bind.
    public var host = "127.0.0.1"
    /// Port (0: any free port; the chosen one is printed).
    public var port = 8080
    /// Keys for the whole API.
    public var apiKeys: [String] = []
    /// Keys for the review queue only.
    public var reviewerKeys: [String] = []
    /// `sqlite:PATH` or `postgres://…`.
    public var store = "sqlite:reports/decisions.sqlite"
    /// What the log keeps of inputs.
    public var inputLogging = InputLogging.full
    /// Tasks.
    public var tasks: [TaskEntry] = []
    /// Chat models by name (GGUF paths) for `/v1/chat/completions`.
    public var chatModels: [(name: String, path: String)] = []
    /// The larger tier, if any (else each task's `tiers.large`, if it names an endpoint).
    public var escalation: Escalation?
    /// `escalation: none`: no larger tier at all; what the policy would escalate goes to review.
    public var escalationDisabled = false
    /// Limits.
    public var limits = Limits()
    /// Drift.
    public var drift = Drift()
    /// Audits of accepted decisions.
    public var audit = Audit()
    /// Engine threads.
    public var threads = 2
    /// Whitespace bytes allowed at each structural position of JSON generated under a schema (0: compact, the default;
    /// `structured_output.max_whitespace`).
    public var jsonWhitespace: UInt8 = 0
    /// `MICROSCALE_ESCALATION_KEY`: the bearer key for every escalation endpoint (overrides a task's tiers.large.api_key).
    public var escalationKey: String?
    /// Minutes a review claim is held.
    public var claimMinutes: Double = 10
    /// The learning loop.
    public var learning = Learning()

    /// An empty configuration (tests build theirs in code).
    public init() {}

    /// Loads a configuration file; relative paths are relative to the file. Environment variables override:
    /// `MICROSCALE_STORE_URL`, `MICROSCALE_PORT`, `MICROSCALE_ESCALATION_URL`, `MICROSCALE_ESCALATION_MODEL`,
    /// `MICROSCALE_ESCALATION_KEY`. With `requireSecrets` false, an `env:NAME` key whose variable is not set is left
    /// out instead of refused: for commands that use no keys (`drift`), never for serving.
    public static func load(
        _ file: String, environment: [String: String] = ProcessInfo.processInfo.environment, requireSecrets: Bool = true
    ) throws -> ServiceConfig {
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path
        func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : folder + "/" + path }
        func secret(_ r: YAMLReader) throws -> String? {
            let value = try r.string()
            guard value.hasPrefix("env:") else { return value }
            let name = String(value.dropFirst(4))
            guard let v = environment[name], !v.isEmpty else {
                if !requireSecrets { return nil }
                throw r.error("environment variable \(name) is not set")
            }
            return v
        }
        let r = try YAMLReader.load(file)
        try r.only(["listen", "auth", "store", "log_inputs", "tasks", "chat_models", "escalation", "limits", "drift", "threads", "review",
                    "structured_output", "learning", "audit"])
        var c = ServiceConfig()
        if let l = r.child("listen") {
            try l.only(["host", "port"])
            if let h = l.child("host") { c.host = try h.string() }
            if let p = l.child("port") { c.port = try p.int(in: 0...65535) }
        }
        if let a = r.child("auth") {
            try a.only(["api_keys", "reviewer_keys"])
            c.apiKeys = try a.child("api_keys")?.items().compactMap(secret) ?? []
            c.reviewerKeys = try a.child("reviewer_keys")?.items().compactMap(secret) ?? []
        }
        if let s = r.child("store") {
            let url = try s.string()
            c.store = url.hasPrefix("sqlite:") && !url.hasPrefix("sqlite:/") ? "sqlite:" + resolve(String(url.dropFirst(7))) : url
        }
        if let i = r.child("log_inputs") { c.inputLogging = try i.enumeration(InputLogging.self) }
        for item in try r.child("tasks")?.items() ?? [] {
            if item.child("path") != nil {
                try item.only(["path", "adapter"])
                c.tasks.append(TaskEntry(path: resolve(try item.required("path").string()), adapter: try item.child("adapter").map { resolve(try $0.string()) }))
            } else {
                c.tasks.append(TaskEntry(path: resolve(try item.string()), adapter: nil))
            }
        }
        if let m = r.child("chat_models") {
            c.chatModels = try m.entries().map { ($0, resolve(try $1.string())) }
        }
        if let e = r.child("escalation"), (try? e.string()) == "none" {
            c.escalationDisabled = true
        } else if let e = r.child("escalation") {
            try e.only(["base_url", "model", "api_key", "timeout_seconds", "retries", "backoff_seconds", "breaker_failures",
                        "breaker_cooldown_seconds", "max_tokens", "max_concurrent"])
            var tier = Escalation(baseURL: try e.required("base_url").string(), model: try e.required("model").string())
            tier.apiKey = try e.child("api_key").flatMap(secret)
            if let v = e.child("timeout_seconds") { tier.timeout = try v.double(in: 0.05...600) }
            if let v = e.child("retries") { tier.retries = try v.int(in: 0...10) }
            if let v = e.child("backoff_seconds") { tier.backoff = try v.double(in: 0...60) }
            if let v = e.child("breaker_failures") { tier.breakerFailures = try v.int(in: 1...1000) }
            if let v = e.child("breaker_cooldown_seconds") { tier.breakerCooldown = try v.double(in: 0.1...3600) }
            if let v = e.child("max_tokens") { tier.maxTokens = try v.int(in: 1...4096) }
            if let v = e.child("max_concurrent") { tier.maxConcurrent = try v.int(in: 1...64) }
            c.escalation = tier
        }
        if let l = r.child("limits") {
            try l.only(["max_body_bytes", "max_batch_inputs", "max_prompt_tokens", "max_completion_tokens", "max_queue", "max_batch"])
            if let v = l.child("max_body_bytes") { c.limits.maxBodyBytes = try v.int(in: 1024...(256 << 20)) }
            if let v = l.child("max_batch_inputs") { c.limits.maxBatchInputs = try v.int(in: 1...10_000) }
            if let v = l.child("max_prompt_tokens") { c.limits.maxPromptTokens = try v.int(in: 1...1_000_000) }
            if let v = l.child("max_completion_tokens") { c.limits.maxCompletionTokens = try v.int(in: 1...1_000_000) }
            if let v = l.child("max_queue") { c.limits.maxQueue = try v.int(in: 1...1_000_000) }
            if let v = l.child("max_batch") { c.limits.maxBatch = try v.int(in: 1...1024) }
        }
        if let d = r.child("drift") {
            try d.only(["window", "interval_seconds", "min_samples", "alert"])
            if let v = d.child("min_samples") { c.drift.minSamples = try v.int(in: 1...1_000_000) }
            if let v = d.child("window") { c.drift.window = try v.int(in: 10...1_000_000) }
            if let v = d.child("interval_seconds") { c.drift.interval = try v.double(in: 0.1...86_400) }
            if let a = d.child("alert") {
                try a.only(["escalation_rate", "escalation_failure_rate", "review_rate", "correction_rate", "mean_confidence_below"])
                c.drift.escalationRate = try a.child("escalation_rate")?.double(in: 0...1)
                c.drift.escalationFailureRate = try a.child("escalation_failure_rate")?.double(in: 0...1)
                c.drift.reviewRate = try a.child("review_rate")?.double(in: 0...1)
                c.drift.correctionRate = try a.child("correction_rate")?.double(in: 0...1)
                c.drift.meanConfidence = try a.child("mean_confidence_below")?.double(in: 0...1)
            }
        }
        if let o = r.child("structured_output") {
            try o.only(["max_whitespace"])
            if let w = o.child("max_whitespace") { c.jsonWhitespace = UInt8(try w.int(in: 0...64)) }
        }
        if let l = r.child("learning") {
            try l.only(["review_share", "poll_seconds", "holdout", "calibration_share", "min_holdout", "agreement_floor"])
            if let v = l.child("review_share") { c.learning.reviewShare = try v.double(in: 0...1) }
            if let v = l.child("poll_seconds") { c.learning.pollSeconds = try v.double(in: 0.05...3600) }
            if let v = l.child("holdout") { c.learning.holdout = try v.double(in: 0.01...0.9) }
            if let v = l.child("calibration_share") { c.learning.calibrationShare = try v.double(in: 0.05...0.95) }
            if let v = l.child("min_holdout") { c.learning.minHoldout = try v.int(in: 1...1_000_000) }
            if let v = l.child("agreement_floor") { c.learning.agreementFloor = try v.double(in: 0...1) }
        }
        if let a = r.child("audit") {
            try a.only(["share", "window", "min_audits"])
            if let v = a.child("share") { c.audit.share = try v.double(in: 0...1) }
            if let v = a.child("window") { c.audit.window = try v.int(in: 10...1_000_000) }
            if let v = a.child("min_audits") {
                c.audit.minAudits = try v.int(in: 1...1_000_000)
                if c.audit.minAudits > c.audit.window {
                    throw v.error("min_audits (\(c.audit.minAudits)) cannot exceed window (\(c.audit.window)): no alert could ever fire")
                }
            } else {
                c.audit.minAudits = min(c.audit.minAudits, c.audit.window)
            }
        }
        if let t = r.child("threads") { c.threads = try t.int(in: 1...256) }
        if let v = r.child("review") {
            try v.only(["claim_minutes"])
            if let m = v.child("claim_minutes") { c.claimMinutes = try m.double(in: 0.1...10_080) }
        }
        try c.applyEnvironment(environment)
        return c
    }

    /// Applies the `MICROSCALE_*` environment overrides.
    public mutating func applyEnvironment(_ environment: [String: String]) throws {
        if let s = environment["MICROSCALE_STORE_URL"], !s.isEmpty { store = s }
        if let p = environment["MICROSCALE_PORT"], !p.isEmpty {
            guard let port = Int(p), (0...65535).contains(port) else { throw SpecError(file: "environment", path: "MICROSCALE_PORT", line: nil, message: "'\(p)' is not a port") }
            self.port = port
        }
        if let url = environment["MICROSCALE_ESCALATION_URL"], !url.isEmpty {
            let model = environment["MICROSCALE_ESCALATION_MODEL"] ?? escalation?.model ?? "default"
            var tier = escalation ?? Escalation(baseURL: url, model: model)
            tier.baseURL = url
            tier.model = model
            escalation = tier
        }
        if let key = environment["MICROSCALE_ESCALATION_KEY"], !key.isEmpty {
            escalation?.apiKey = key
            // Without an escalation block each task's tiers.large endpoint is used: the key applies there too.
            escalationKey = key
        }
    }
}
