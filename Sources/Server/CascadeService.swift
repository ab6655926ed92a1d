import AsyncHTTPClient
import Cascade
import Foundation
import Logging
import Metrics
import Store
import StructuredOutput
import Synchronization

/// The cascade as a service: decides inputs with the small model through the engine, has the ``Escalator`` ask the
/// larger tier what the policy sends up, queues what needs a person, and logs every decision durably before it is
/// answered. What differs between kinds of task lives in their ``ServedTask`` types.
public final class CascadeService: Sendable {
    /// The configuration.
    public let config: ServiceConfig
    /// Tasks by name.
    let tasks: [String: any ServedTask]
    /// Chat models by name.
    public let chatModels: [String: ServedModel]
    /// The model worker.
    public let engine: Engine
    /// The decision log and review queue.
    public let store: any DecisionStore
    /// The larger tier of each task.
    let escalator: Escalator
    let logger: Logger
    /// Per task, the larger tier's answers seen and those sent to a person to check (this process's share budget).
    private let teacherChecks = Mutex<[String: (answered: Int, checked: Int)]>([:])
    /// The loop that looks for promoted and shadowed adapter versions in the store.
    private let adapterWatch = Mutex<Task<Void, Never>?>(nil)
    /// Versions that failed to load, so a bad one is reported once, not at every poll.
    private let unloadable = Mutex<Set<String>>([])

    /// Names of the tasks served.
    public var taskNames: [String] { tasks.keys.sorted() }

    /// A service over loaded parts.
    init(config: ServiceConfig, tasks: [any ServedTask], chatModels: [ServedModel], store: any DecisionStore, logger: Logger) throws {
        // Metrics made before swift-metrics is bootstrapped would go nowhere: bootstrap first.
        _ = Telemetry.registry
        self.config = config
        self.tasks = Dictionary(tasks.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.chatModels = Dictionary(chatModels.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.store = store
        self.logger = logger
        engine = Engine(maxQueue: config.limits.maxQueue, maxBatch: config.limits.maxBatch)
        escalator = try Escalator(config: config, tasks: tasks, environment: ProcessInfo.processInfo.environment, logger: logger)
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
        var tasks: [any ServedTask] = []
        for entry in config.tasks {
            let task = try loadTask(entry, threads: config.threads, models: &models)
            logger.info("task loaded", metadata: ["task": "\(task.name)", "model": "\(task.modelVersion.prefix(12))"])
            tasks.append(task)
        }
        let store = try await openStore(url: config.store)
        let service = try CascadeService(config: config, tasks: tasks, chatModels: chat, store: store, logger: logger)
        try await service.syncAdapters(starting: true)
        service.watchAdapters()
        return service
    }

    // MARK: Adapter versions

    /// Brings each classification task to the store's active (and shadow) adapter version. At start, the adapter file
    /// a task names becomes its first active version when the store has none, and is registered as a candidate when
    /// the store's active version differs (the store decides what serves, so every replica serves the same version).
    func syncAdapters(starting: Bool = false) async throws {
        var serving = try await store.servingAdapters()
        for case let task as ServedClassification in tasks.values {
            if starting {
                let file = Digest.of(task.fileBody)
                let active = serving.first { $0.task == task.name && $0.status == .active }?.version
                try await store.addAdapter(AdapterVersion(task: task.name, version: file, createdAt: Date(), status: .candidate,
                                                          source: "file", body: task.fileBody, report: task.adapterFile))
                if active == nil {
                    try await store.activate(task: task.name, version: file)
                    logger.info("adapter registered as the first active version", metadata: ["task": "\(task.name)", "version": "\(file.prefix(12))"])
                    serving = try await store.servingAdapters()
                } else if active != file {
                    logger.notice("serving the store's active adapter version, not the adapter file's (registered as a candidate)",
                                  metadata: ["task": "\(task.name)", "active": "\(active!.prefix(12))", "file": "\(file.prefix(12))"])
                }
            }
            let now = task.serving
            let active = serving.first { $0.task == task.name && $0.status == .active }?.version
            let shadow = serving.first { $0.task == task.name && $0.status == .shadow }?.version
            var newActive: (Classifier, String)?
            if let active, active != now.version, let loaded = await loadVersion(task, active) { newActive = (loaded, active) }
            var newShadow: (Classifier, String)??
            if shadow != now.shadow?.version {
                if let shadow {
                    if let loaded = await loadVersion(task, shadow) { newShadow = .some((loaded, shadow)) }
                } else {
                    newShadow = .some(nil)
                }
            }
            if newActive != nil || newShadow != nil {
                task.swap(active: newActive, shadow: newShadow)
                logger.info("adapter versions changed", metadata: ["task": "\(task.name)", "active": "\(task.serving.version.prefix(12))",
                                                                   "shadow": "\(task.serving.shadow.map { String($0.version.prefix(12)) } ?? "none")"])
                Counter(label: "microscale_adapter_swaps_total", dimensions: [("task", task.name)]).increment()
            }
        }
    }

    /// A stored version as a classifier; nil when the store cannot be read now (tried again at the next poll) or the
    /// version cannot serve this task (logged once, never tried again).
    private func loadVersion(_ task: ServedClassification, _ version: String) async -> Classifier? {
        guard !unloadable.withLock({ $0.contains(version) }) else { return nil }
        let stored: AdapterVersion?
        do { stored = try await store.adapterVersion(task: task.name, version: version) } catch {
            logger.warning("could not read an adapter version from the store; trying again at the next poll",
                           metadata: ["task": "\(task.name)", "version": "\(version.prefix(12))", "error": "\(error)"])
            return nil
        }
        guard let stored else { return nil }
        do {
            return try task.classifier(body: stored.body, version: version)
        } catch {
            unloadable.withLock { _ = $0.insert(version) }
            Counter(label: "microscale_adapter_load_failures_total", dimensions: [("task", task.name)]).increment()
            logger.error("adapter version not loaded; the current one keeps serving", metadata: ["task": "\(task.name)", "version": "\(version.prefix(12))", "error": "\(error)"])
            return nil
        }
    }

    /// Polls the store every `learning.poll_seconds` for adapter changes.
    private func watchAdapters() {
        let seconds = config.learning.pollSeconds
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                guard let self else { return }
                do { try await self.syncAdapters() } catch {
                    self.logger.warning("could not read adapter versions from the store", metadata: ["error": "\(error)"])
                }
            }
        }
        adapterWatch.withLock { $0 = task }
    }

    /// Stops the engine after its work in hand, closes the HTTP client and the store.
    public func shutdown() async {
        adapterWatch.withLock { $0?.cancel() }
        await engine.shutdown()
        await escalator.shutdown()
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
        for (i, text) in texts.enumerated() {
            let at = batch ? "inputs[\(i)]" : "text"
            // (A text with U+0000 is never blank, so checking it first keeps blank, NUL, length as the order of refusals.)
            try refuseNUL(text, param: at)
            if let problem = InputProblem(text, maxCharacters: task.maxInputCharacters) {
                throw APIError.invalid(problem.describe(at, task: taskName), param: at)
            }
        }
        let start = ContinuousClock.now
        let drafts: [Drafted]
        do {
            drafts = try await task.drafts(texts, engine: engine, config: config)
        } catch let e as Overloaded {
            throw APIError.overloaded(e)
        } catch let e as InputError {
            throw APIError.invalid(e.message)
        }
        if let classification = task as? ServedClassification, let shadow = classification.serving.shadow {
            shadowDecide(drafts.map(\.response.id), texts: texts, task: classification.name, shadow: shadow)
        }
        return try await withThrowingTaskGroup(of: (Int, DecisionResponse).self) { group in
            for (i, draft) in drafts.enumerated() {
                group.addTask { (i, try await self.finish(draft, text: texts[i], task: task, start: start)) }
            }
            var out = [DecisionResponse?](repeating: nil, count: drafts.count)
            for try await (i, r) in group { out[i] = r }
            return out.map { $0! }
        }
    }

    /// Escalates if needed, then stores and returns the decision.
    private func finish(_ draft: Drafted, text: String, task: any ServedTask, start: ContinuousClock.Instant) async throws -> DecisionResponse {
        var response = draft.response
        if draft.needsTier {
            let escalationStart = ContinuousClock.now
            await escalator.escalate(&response, text: text, task: task)
            response.latencyMs.escalation = (ContinuousClock.now - escalationStart).seconds * 1e3
        }
        response.latencyMs.queue = draft.timing.queueMs
        response.latencyMs.model = draft.timing.modelMs
        // The log keeps the latency up to the write; the answer adds the write itself.
        response.latencyMs.total = (ContinuousClock.now - start).seconds * 1e3
        response.latencyMs = response.latencyMs.rounded
        let storeStart = ContinuousClock.now
        do {
            let review = ReviewItem(queueing: response, text: text) ?? teacherCheck(response, text: text) ?? audit(response, text: text)
            try await store.record(try DecisionRecord(response, text: text, logging: config.inputLogging), review: review)
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
        Counter(label: "microscale_decisions_total", dimensions: [("task", task.name), ("route", response.route.outcome),
                                                                  ("reason", response.reason.rawValue), ("tier", response.tier.rawValue)]).increment()
        Timer(label: "microscale_decision_seconds", dimensions: [("task", task.name)]).recordNanoseconds(Int64(response.latencyMs.total * 1e6))
        return response
    }

    /// Has a shadowed candidate decide the same inputs in its own engine turn, after the live answers (never on
    /// their path): a failure, or a full queue, costs the shadow log its entries and nothing else.
    private func shadowDecide(_ ids: [String], texts: [String], task: String, shadow: (classifier: Classifier, version: String)) {
        Task {
            do {
                let decisions = try await engine.run(weight: texts.count) { try shadow.classifier.decide(batch: texts) }
                try await store.recordShadow(zip(ids, decisions).map { id, d in
                    ShadowDecision(decisionId: id, task: task, adapterVersion: shadow.version, label: d.label, confidence: d.probability,
                                   route: d.route.outcome, reason: d.reason.apiName, createdAt: Date())
                })
            } catch {
                Counter(label: "microscale_shadow_failures_total", dimensions: [("task", task)]).increment()
                logger.warning("shadow decisions not made or not stored", metadata: ["task": "\(task)", "error": "\(error)"])
            }
        }
    }

    /// A review item checking the larger tier's label (`learning.review_share`), or nil. Half the share is a sample
    /// by the input's hash (`teacher_sample`: independent of both models, so the agreement measured on it is
    /// unbiased); the other half goes to answers that disagree with the small model's draft (`teacher_check`), as long
    /// as they stay within it. The budget is this process's own.
    private func teacherCheck(_ r: DecisionResponse, text: String) -> ReviewItem? {
        let share = config.learning.reviewShare
        guard share > 0, r.escalation?.outcome == .answered, let teacher = r.label, r.route != .review else { return nil }
        let disagrees = r.draft?.label != teacher
        let sampled = Digest.uniform("teacher-sample\u{0}" + text) < share / 2
        let chosen = teacherChecks.withLock { counts -> Bool in
            var c = counts[r.task] ?? (0, 0)
            c.answered += 1
            let take = !sampled && disagrees && Double(c.checked + 1) <= share / 2 * Double(c.answered)
            if take { c.checked += 1 }
            counts[r.task] = c
            return take || sampled
        }
        guard chosen else { return nil }
        let drafted = "the small model said \(r.draft?.label ?? "nothing") (confidence \(String(format: "%.3f", r.draft?.confidence ?? 0)))"
        return ReviewItem(decisionId: r.id, task: r.task, text: text, draftLabel: teacher, draftFieldsJSON: nil, confidence: r.draft?.confidence,
                          reason: sampled ? teacherSampleReason : teacherCheckReason,
                          detail: (sampled ? "teacher sample: the larger tier answered \(teacher); " : "teacher check: the larger tier answered \(teacher); ") + drafted,
                          createdAt: Date())
    }

    /// A review item auditing an accepted decision of the small model (`audit.share`), or nil. Chosen by a hash of the
    /// decision id, so independently of the input and of both models: the reviewers' answers are an unbiased sample of
    /// accepted decisions, which is what the realised error and its bounds need (``AuditStatus``).
    private func audit(_ r: DecisionResponse, text: String) -> ReviewItem? {
        let share = config.audit.share
        guard share > 0, r.route == .accept, r.tier == .small, let label = r.label else { return nil }
        guard Digest.uniform("audit\u{0}" + r.id) < share else { return nil }
        Counter(label: "microscale_audits_queued_total", dimensions: [("task", r.task)]).increment()
        return ReviewItem(decisionId: r.id, task: r.task, text: text, draftLabel: label, draftFieldsJSON: nil, confidence: r.confidence,
                          reason: auditReason,
                          detail: "audit: a random \(String(format: "%g", share * 100))% of accepted decisions is checked; choose the right label without looking at the model's",
                          createdAt: Date())
    }

    /// The task specs of the classification tasks served, by name (audits and their figures need the risk classes).
    var classificationSpecs: [String: TaskSpec] {
        tasks.compactMapValues { ($0 as? ServedClassification)?.spec }
    }

    // MARK: Review

    /// The labels a reviewer chooses from for a task (empty for extraction).
    func labels(of task: String) -> [String] { tasks[task]?.labels ?? [] }

    /// Records a reviewer's answer: a confirmation if it equals the draft, else a correction.
    func resolve(decisionId: String, reviewer: String, label: String?, fields: JSONValue?) async throws -> ReviewItem {
        guard let item = try await store.reviewItem(decisionId: decisionId) else {
            throw APIError.notFound("no review item for decision \(decisionId)")
        }
        guard let task = tasks[item.task] else {
            throw APIError.conflict("task \(item.task) is not served here, so its answer cannot be checked")
        }
        let outcome = try task.reviewOutcome(label: label, fields: fields, item: item)
        do {
            let resolved = try await store.resolve(decisionId: decisionId, reviewer: reviewer, label: label, fieldsJSON: fields?.description,
                                                   outcome: outcome.rawValue, now: Date())
            Counter(label: "microscale_reviews_total", dimensions: [("task", item.task), ("outcome", outcome.rawValue)]).increment()
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
