import AsyncHTTPClient
import Cascade
import Foundation
import Logging
import Metrics
import Store
import StructuredOutput

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
        return try CascadeService(config: config, tasks: tasks, chatModels: chat, store: store, logger: logger)
    }

    /// Stops the engine after its work in hand, closes the HTTP client and the store.
    public func shutdown() async {
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
            try await store.record(try DecisionRecord(response, text: text, logging: config.inputLogging), review: ReviewItem(queueing: response, text: text))
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
