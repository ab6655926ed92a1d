import AsyncHTTPClient
import Cascade
import Foundation
import Logging
import Metrics
import Store
import StructuredOutput

/// The cascade as a service: decides inputs with the small model through the engine, escalates what the policy sends
/// up, queues what needs a person, and logs every decision durably before it is answered.
public final class CascadeService: Sendable {
    /// The configuration.
    public let config: ServiceConfig
    /// Tasks by name.
    public let tasks: [String: ServedTask]
    /// Chat models by name.
    public let chatModels: [String: ServedModel]
    /// The model worker.
    public let engine: Engine
    /// The decision log and review queue.
    public let store: any DecisionStore
    /// Escalation clients by task.
    let escalation: [String: EscalationClient]
    /// The HTTP client escalations go through. It does not retry connections itself: the escalation client's own
    /// bounded retries and circuit breaker decide, so a refused connection fails at once instead of at the deadline.
    let http: HTTPClient
    let logger: Logger

    /// A service over loaded parts.
    public init(config: ServiceConfig, tasks: [ServedTask], chatModels: [ServedModel], store: any DecisionStore, logger: Logger) {
        // Metrics made before swift-metrics is bootstrapped would go nowhere: bootstrap first.
        _ = Telemetry.registry
        self.config = config
        self.tasks = Dictionary(tasks.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.chatModels = Dictionary(chatModels.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.store = store
        self.logger = logger
        engine = Engine(maxQueue: config.limits.maxQueue, maxBatch: config.limits.maxBatch)
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.connectionPool.retryConnectionEstablishment = false
        // Each escalation client sends at most its max_concurrent (≤ 64) requests at once, so the pool always has a
        // connection for them and no attempt waits on the pool under its own deadline.
        httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        httpConfiguration.timeout.connect = .milliseconds(Int64(min(config.escalation?.timeout ?? 5, 5) * 1000))
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        let http = self.http
        // One client (and one circuit breaker) per endpoint, shared by the tasks that use it.
        var byEndpoint: [String: EscalationClient] = [:]
        var clients: [String: EscalationClient] = [:]
        for task in tasks where !config.escalationDisabled {
            var tier = config.escalation
            if tier == nil, case let .classification(c, _, _) = task, let large = c.spec.tiers.large, let url = large.destination,
               url.hasPrefix("http") {
                tier = ServiceConfig.Escalation(baseURL: url, model: large.model ?? "default")
                // Checked when the service loads: a missing env: variable is an error there.
                tier?.apiKey = config.escalationKey ?? (try? large.resolvedAPIKey(ProcessInfo.processInfo.environment)) ?? nil
            }
            guard let tier else { continue }
            let key = tier.baseURL + "\u{0}" + tier.model + "\u{0}" + Digest.of(tier.apiKey ?? "")
            let client = byEndpoint[key] ?? EscalationClient(tier: tier, http: http, logger: logger)
            byEndpoint[key] = client
            clients[task.name] = client
        }
        escalation = clients
    }

    /// Loads everything a configuration names: tasks (with their backbones and adapters), chat models and the store.
    public static func load(_ config: ServiceConfig, logger: Logger) async throws -> CascadeService {
        var models: [String: ServedModel] = [:]
        var chat: [ServedModel] = []
        for (name, path) in config.chatModels {
            let standardized = URL(fileURLWithPath: path).standardizedFileURL.path
            let model = try ServedModel(name: name, path: standardized, threads: config.threads)
            models[standardized] = model
            chat.append(model)
        }
        var tasks: [ServedTask] = []
        for entry in config.tasks {
            let task = try ServedTask.load(entry, threads: config.threads, models: &models)
            logger.info("task loaded", metadata: ["task": "\(task.name)", "model": "\(task.modelVersion.prefix(12))"])
            tasks.append(task)
        }
        for case let .classification(c, _, _) in tasks where config.escalation == nil && config.escalationKey == nil {
            _ = try c.spec.tiers.large?.resolvedAPIKey(ProcessInfo.processInfo.environment)
        }
        let store = try await openStore(url: config.store)
        return CascadeService(config: config, tasks: tasks, chatModels: chat, store: store, logger: logger)
    }

    /// Stops the engine after its work in hand, closes the HTTP client and the store.
    public func shutdown() async {
        await engine.shutdown()
        try? await http.shutdown()
        await store.close()
    }

    // MARK: Deciding

    /// Decides `inputs` for `taskName`; each decision is stored (and queued for review when it goes there) before it
    /// is returned. Errors name the input at fault: `text` for a single input, `inputs[i]` in a batch.
    public func decide(taskName: String, inputs texts: [String], batch: Bool) async throws -> [DecisionResponse] {
        guard let task = tasks[taskName] else {
            throw APIError.notFound("no task '\(taskName)'; tasks: \(tasks.keys.sorted().joined(separator: ", "))")
        }
        guard !texts.isEmpty else { throw APIError.invalid("'inputs' is empty", param: "inputs") }
        guard texts.count <= config.limits.maxBatchInputs else {
            throw APIError.invalid("\(texts.count) inputs in one request; the limit is \(config.limits.maxBatchInputs)", param: "inputs")
        }
        // A batch larger than the whole queue could never be admitted: say so instead of 429 forever.
        guard texts.count <= config.limits.maxQueue else {
            throw APIError(statusCode: 413, code: "queue_limit_exceeded",
                           message: "\(texts.count) inputs cannot fit the engine queue of \(config.limits.maxQueue) (limits.max_queue); send at most \(config.limits.maxQueue) per request",
                           param: "inputs")
        }
        let limit: Int
        switch task {
        case let .classification(c, _, _): limit = c.spec.maxInputCharacters
        case let .extraction(t, _): limit = t.maxInputCharacters
        }
        for (i, text) in texts.enumerated() {
            let at = batch ? "inputs[\(i)]" : "text"
            // Empty after normalisation (only whitespace, zero-width and format characters) is empty: nothing to decide.
            if RuleText.isBlank(text) { throw APIError.invalid("\(at) is empty (nothing but whitespace or invisible characters)", param: at) }
            try refuseNUL(text, param: at)
            let scalars = text.unicodeScalars.count
            if scalars > limit {
                throw APIError.invalid("\(at) has \(scalars) characters (Unicode scalars); task \(taskName) accepts at most \(limit)", param: at)
            }
        }
        let start = ContinuousClock.now
        let drafts: [Drafted]
        do {
            switch task {
            case let .classification(c, _, _):
                drafts = try await engine.classify(task: taskName, classifier: c, texts: texts).enumerated().map {
                    Drafted(text: texts[$0], classification: $1.0, extraction: nil, timing: $1.1)
                }
            case let .extraction(t, model):
                drafts = try await withThrowingTaskGroup(of: (Int, Drafted).self) { group in
                    for (i, text) in texts.enumerated() {
                        group.addTask {
                            let enqueued = ContinuousClock.now
                            let (result, timing) = try await self.engine.run {
                                let begin = ContinuousClock.now
                                let r = try t.extract(text, model: model.loaded, constraints: model.constraints, maxWhitespace: self.config.jsonWhitespace)
                                return (r, Engine.Timing(queueMs: (begin - enqueued).seconds * 1e3, modelMs: (ContinuousClock.now - begin).seconds * 1e3))
                            }
                            return (i, Drafted(text: text, classification: nil, extraction: result, timing: timing))
                        }
                    }
                    var out = [Drafted?](repeating: nil, count: texts.count)
                    for try await (i, d) in group { out[i] = d }
                    return out.map { $0! }
                }
            }
        } catch let e as Overloaded {
            throw APIError(statusCode: 429, code: "overloaded", message: e.description, retryAfter: e.retryAfter)
        } catch let e as InputError {
            throw APIError.invalid(e.message)
        }
        return try await withThrowingTaskGroup(of: (Int, DecisionResponse).self) { group in
            for (i, draft) in drafts.enumerated() {
                group.addTask { (i, try await self.finish(draft, task: task, start: start)) }
            }
            var out = [DecisionResponse?](repeating: nil, count: drafts.count)
            for try await (i, r) in group { out[i] = r }
            return out.map { $0! }
        }
    }

    /// The small model's output for one input.
    struct Drafted: Sendable {
        var text: String
        var classification: Decision?
        var extraction: ExtractionResult?
        var timing: Engine.Timing
    }

    /// Escalates if needed, then stores and returns the decision.
    private func finish(_ draft: Drafted, task: ServedTask, start: ContinuousClock.Instant) async throws -> DecisionResponse {
        var response: DecisionResponse
        var needsTier = false
        let policyStart = ContinuousClock.now
        switch task {
        case .classification:
            let d = draft.classification!
            response = DecisionResponse(
                id: UUID().uuidString.lowercased(), task: task.name, label: d.label, fields: nil, fieldChecks: nil, confidence: d.probability,
                route: d.route.outcome, reason: d.reason.apiName, detail: d.detail, riskClass: d.riskClass,
                tier: d.route.tier, alternatives: d.alternatives.map { AlternativeLabel(label: $0.label, probability: $0.probability) },
                draft: nil, escalation: nil, latencyMs: Latency(), modelVersion: task.modelVersion, adapterVersion: task.adapterVersion,
                truncated: d.inputTokens == nil ? nil : d.truncated, highRiskMass: d.highRiskMass,
                inputTokens: d.inputTokens, tokensKept: d.tokensKept)
            needsTier = d.route == .escalate
        case .extraction:
            let r = draft.extraction!
            response = DecisionResponse(
                id: UUID().uuidString.lowercased(), task: task.name, label: nil, fields: r.value, fieldChecks: Self.checks(r), confidence: nil,
                route: "accepted", reason: "valid", detail: "every field passed its checks", riskClass: nil, tier: "small", alternatives: [],
                draft: nil, escalation: nil, latencyMs: Latency(), modelVersion: task.modelVersion, adapterVersion: nil)
            if !r.valid {
                response.reason = "validation_failed"
                response.detail = "failed checks: " + Self.failedChecks(r)
                needsTier = true
            }
        }
        response.latencyMs.policy = (ContinuousClock.now - policyStart).seconds * 1e3
        if needsTier {
            let escalationStart = ContinuousClock.now
            await escalate(&response, text: draft.text, task: task)
            response.latencyMs.escalation = (ContinuousClock.now - escalationStart).seconds * 1e3
        }
        response.latencyMs.queue = draft.timing.queueMs
        response.latencyMs.model = draft.timing.modelMs
        // The log keeps the latency up to the write; the answer adds the write itself.
        response.latencyMs.total = (ContinuousClock.now - start).seconds * 1e3
        response.latencyMs = response.latencyMs.rounded
        let storeStart = ContinuousClock.now
        do {
            try await store.record(record(response, text: draft.text), review: reviewItem(response, text: draft.text))
        } catch {
            logger.error("decision not stored", metadata: ["task": "\(task.name)", "error": "\(error)"])
            Counter(label: "microscale_rejected_total", dimensions: [("reason", "store_failed")]).increment()
            throw APIError.unavailable("the decision could not be stored, so it is not acknowledged: \(error)")
        }
        // The tier's raw answer is for the log; the client gets the summary in `error`.
        response.escalation?.responseBody = nil
        response.latencyMs.store = (ContinuousClock.now - storeStart).seconds * 1e3
        response.latencyMs.total = (ContinuousClock.now - start).seconds * 1e3
        response.latencyMs = response.latencyMs.rounded
        Counter(label: "microscale_decisions_total", dimensions: [("task", task.name), ("route", response.route), ("reason", response.reason),
                                                                  ("tier", response.tier)]).increment()
        Timer(label: "microscale_decision_seconds", dimensions: [("task", task.name)]).recordNanoseconds(Int64(response.latencyMs.total * 1e6))
        return response
    }

    /// Asks the larger tier; its answer meets the same rules; failure sends the input to review.
    private func escalate(_ response: inout DecisionResponse, text: String, task: ServedTask) async {
        let draft = Draft(label: response.label, confidence: response.confidence, fields: response.fields)
        guard let client = escalation[task.name] else {
            response.sendToReview(detail: response.detail + "; no escalation tier is configured")
            return
        }
        let system: String, user: String, schema: Schema
        switch task {
        case let .classification(c, _, _):
            let labels = c.spec.labels
            do {
                schema = try Schema(document: .object([
                    ("type", .string("object")),
                    ("properties", .object([("label", .object([("type", .string("string")), ("enum", .array(labels.map { .string($0.name) }))]))])),
                    ("required", .array([.string("label")])), ("additionalProperties", .bool(false)),
                ]))
            } catch {
                response.sendToReview(reason: "escalation_failed", detail: response.detail + "; the answer schema could not be built: \(error)")
                return
            }
            let list = labels.map { "- \($0.name)" + ($0.description.map { ": " + $0 } ?? "") }.joined(separator: "\n")
            system = """
                Task: \(c.spec.summary)
                Choose exactly one label for the user's message. Labels:
                \(list)
                A smaller model proposed "\(response.label ?? "")" with calibrated confidence \(String(format: "%.3f", response.confidence ?? 0)), \
                not enough to decide alone (\(response.detail)). Keep it if it is right, replace it if not.
                Answer with JSON: {"label": "<one of the labels>"}
                """
            user = text
        case let .extraction(t, _):
            schema = t.schema
            let messages = t.messages(for: text)
            system = (messages.first { $0.role == "system" }?.content ?? "") + "\nA smaller model's answer failed these checks: \(response.detail)\nIts answer: \(response.fields?.description ?? "none")"
            user = messages.last?.content ?? text
        }
        var headers = [("Label", response.label ?? ""), ("Confidence", response.confidence.map { String(format: "%.4f", $0) } ?? "")]
        if let fields = response.fields { headers.append(("Fields", fields.description.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")) }
        let outcome = await client.ask(task: task.name, system: system, user: user, schema: schema, draft: headers)
        response.escalation = outcome
        response.draft = draft
        guard outcome.outcome == .answered, let answer = outcome.answer else {
            response.sendToReview(reason: "escalation_failed",
                                  detail: "the larger tier did not answer (\(outcome.error ?? outcome.outcome.rawValue)); before that: \(response.detail)")
            return
        }
        response.route = "escalated"
        response.tier = "large"
        switch task {
        case let .classification(c, _, _):
            guard let label = answer["label"]?.stringValue, let index = c.spec.labelIndex(label) else { return }
            response.label = label
            response.riskClass = c.spec.labels[index].risk
            // The larger tier's label meets the same review policy as the small model's: always-review labels, the
            // rules, and a risk class whose uncertain predictions go to a person (the larger tier is not certified).
            var outcome = Policy.Outcome(label: index, probability: response.confidence ?? 0, route: .escalate, reason: .belowThreshold, detail: response.detail)
            c.policy.applyToLargerTier(&outcome, text: text)
            if outcome.route == .review {
                response.sendToReview(reason: outcome.reason.apiName, detail: "the larger tier answered \(label); " + outcome.detail)
            }
        case let .extraction(t, _):
            let checked = t.check(StructuredGeneration(value: answer, schema: t.schema), input: text)
            response.fields = answer
            response.fieldChecks = Self.checks(checked)
            if !checked.valid {
                response.sendToReview(detail: "the larger tier's answer failed its checks too: " + Self.failedChecks(checked))
            }
        }
    }

    private func record(_ r: DecisionResponse, text: String) throws -> DecisionRecord {
        let input: String? = switch config.inputLogging {
        case .full: text
        case .redacted: redact(text)
        case .hash: nil
        }
        func json<T: Encodable>(_ v: T?) throws -> String? { try v.map { String(decoding: try encodeJSON($0), as: UTF8.self) } }
        return DecisionRecord(
            id: r.id, task: r.task, createdAt: Date(), input: input, inputSHA256: Digest.of(text), label: r.label,
            fieldsJSON: r.fields?.description, confidence: r.confidence, route: r.route, reason: r.reason, detail: r.detail, tier: r.tier,
            draftJSON: try json(r.draft), escalationJSON: try json(r.escalation), latencyJSON: try json(r.latencyMs) ?? "{}",
            modelVersion: r.modelVersion, adapterVersion: r.adapterVersion, inputTokens: r.inputTokens, tokensKept: r.tokensKept)
    }

    private func reviewItem(_ r: DecisionResponse, text: String) -> ReviewItem? {
        guard r.route == "review" else { return nil }
        return ReviewItem(decisionId: r.id, task: r.task, text: text, draftLabel: r.label, draftFieldsJSON: r.fields?.description,
                          confidence: r.confidence, reason: r.reason, detail: r.detail, createdAt: Date())
    }

    /// The fields (and other parts) that failed their checks, in words.
    static func failedChecks(_ r: ExtractionResult) -> String {
        (r.fields.filter { !$0.valid }.map { "\($0.name): \($0.reasons.joined(separator: ", "))" } + r.otherViolations).joined(separator: "; ")
    }

    static func checks(_ r: ExtractionResult) -> [FieldCheck] {
        r.fields.map { FieldCheck(name: $0.name, valid: $0.valid, reasons: $0.reasons) } +
            (r.otherViolations.isEmpty ? [] : [FieldCheck(name: "/", valid: false, reasons: r.otherViolations)])
    }

    // MARK: Review

    /// The labels a reviewer chooses from for a task (empty for extraction).
    func labels(of task: String) -> [String] {
        if case let .classification(c, _, _)? = tasks[task] { return c.spec.labels.map(\.name) }
        return []
    }

    /// Records a reviewer's answer: a confirmation if it equals the draft, else a correction.
    func resolve(decisionId: String, reviewer: String, label: String?, fields: JSONValue?) async throws -> ReviewItem {
        guard let item = try await store.reviewItem(decisionId: decisionId) else {
            throw APIError.notFound("no review item for decision \(decisionId)")
        }
        let outcome: String
        switch tasks[item.task] {
        case let .classification(c, _, _)?:
            guard let label else { throw APIError.invalid("give the label", param: "label") }
            guard c.spec.labelIndex(label) != nil else {
                throw APIError.invalid("'\(label)' is not a label of task \(item.task)", param: "label")
            }
            outcome = label == item.draftLabel ? "confirmed" : "corrected"
        case let .extraction(t, _)?:
            guard let fields else { throw APIError.invalid("give the fields", param: "fields") }
            let violations = t.schema.violations(of: fields)
            guard violations.isEmpty else {
                throw APIError.invalid("the fields do not match the schema: \(violations.map(\.description).joined(separator: "; "))", param: "fields")
            }
            outcome = fields.description == item.draftFieldsJSON.flatMap({ try? JSONValue.parse($0) })?.description ? "confirmed" : "corrected"
        case nil:
            throw APIError.conflict("task \(item.task) is not served here, so its answer cannot be checked")
        }
        do {
            let resolved = try await store.resolve(decisionId: decisionId, reviewer: reviewer, label: label, fieldsJSON: fields?.description,
                                                   outcome: outcome, now: Date())
            Counter(label: "microscale_reviews_total", dimensions: [("task", item.task), ("outcome", outcome)]).increment()
            return resolved
        } catch let e as StoreError {
            switch e {
            case let .notFound(m): throw APIError.notFound(m)
            case let .conflict(m): throw APIError.conflict(m)
            default: throw e
            }
        }
    }
}
