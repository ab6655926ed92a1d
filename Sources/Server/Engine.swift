import Cascade
import Foundation
import Metrics
import NIOPosix

/// The engine refused work because its queue is full.
public struct Overloaded: Error, CustomStringConvertible, Sendable {
    /// Seconds after which a retry is likely to be accepted.
    public var retryAfter: Int
    /// Inputs waiting.
    public var queued: Int
    public var description: String { "the engine has \(queued) inputs waiting; retry after \(retryAfter) s" }
}

/// The one place model work runs. Models and their kernels are not re-entrant, so a single worker thread (outside
/// Swift's cooperative pool, which must stay free for I/O) takes work in arrival order. Classification inputs that
/// wait together are decided together: the first waiting input's task gathers every waiting input of that task, up to
/// `maxBatch`, into one backbone pass. The queue is bounded; past it, work is refused with a retry hint.
public actor Engine {
    /// Timings of one input's trip through the engine.
    public struct Timing: Sendable {
        /// Milliseconds waiting for the worker.
        public var queueMs: Double
        /// Milliseconds of model work (the whole batch's).
        public var modelMs: Double
    }

    private enum Entry {
        case classify(task: String, classifier: Classifier, text: String, enqueued: ContinuousClock.Instant,
                      continuation: CheckedContinuation<(Decision, Timing), any Error>)
        case job(weight: Int, run: @Sendable () -> Void)
    }

    private let pool: NIOThreadPool
    private let maxQueue: Int
    private let maxBatch: Int
    private var queue: [Entry] = []
    private var queued = 0
    private var running = false
    private var secondsPerInput = 0.01
    private let depthGauge = Gauge(label: "microscale_queue_depth")
    private let batchSizes = Recorder(label: "microscale_batch_size")

    /// An engine with a bounded queue.
    public init(maxQueue: Int, maxBatch: Int) {
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        self.maxQueue = maxQueue
        self.maxBatch = maxBatch
    }

    /// Inputs waiting or running.
    public var depth: Int { queued }

    private func admit(_ weight: Int) throws {
        guard queued + weight <= maxQueue else {
            let wait = Double(queued) * secondsPerInput
            throw Overloaded(retryAfter: max(1, Int(wait.rounded(.up))), queued: queued)
        }
        queued += weight
        depthGauge.record(queued)
    }

    /// Decides `texts` of a task (validated by the caller), batched with whatever else waits for the same task.
    public func classify(task: String, classifier: Classifier, texts: [String]) async throws -> [(Decision, Timing)] {
        try admit(texts.count)
        let now = ContinuousClock.now
        return try await withThrowingTaskGroup(of: (Int, (Decision, Timing)).self) { group in
            for (i, text) in texts.enumerated() {
                group.addTask {
                    (i, try await self.enqueueClassification(task: task, classifier: classifier, text: text, enqueued: now))
                }
            }
            var results = [(Decision, Timing)?](repeating: nil, count: texts.count)
            for try await (i, r) in group { results[i] = r }
            return results.map { $0! }
        }
    }

    private func enqueueClassification(task: String, classifier: Classifier, text: String,
                                       enqueued: ContinuousClock.Instant) async throws -> (Decision, Timing) {
        try await withCheckedThrowingContinuation { continuation in
            queue.append(.classify(task: task, classifier: classifier, text: text, enqueued: enqueued, continuation: continuation))
            startIfIdle()
        }
    }

    /// Runs `work` on the worker thread in its turn; `weight` is how many queue places it takes.
    public func run<T: Sendable>(weight: Int = 1, _ work: @escaping @Sendable () throws -> T) async throws -> T {
        try admit(weight)
        return try await withCheckedThrowingContinuation { continuation in
            queue.append(.job(weight: weight) { continuation.resume(with: Result { try work() }) })
            startIfIdle()
        }
    }

    private func startIfIdle() {
        guard !running else { return }
        running = true
        Task { await drain() }
    }

    private func drain() async {
        while !queue.isEmpty {
            let head = queue.removeFirst()
            switch head {
            case let .job(weight, work):
                let start = ContinuousClock.now
                try? await pool.runIfActive { work() }
                finished(weight, seconds: (ContinuousClock.now - start).seconds)
            case let .classify(task, classifier, _, _, _):
                var batch = [head]
                var rest: [Entry] = []
                for entry in queue {
                    if batch.count < maxBatch, case let .classify(t, _, _, _, _) = entry, t == task { batch.append(entry) } else { rest.append(entry) }
                }
                queue = rest
                await runBatch(batch, classifier: classifier)
            }
        }
        running = false
    }

    private func runBatch(_ batch: [Entry], classifier: Classifier) async {
        var texts: [String] = [], waits: [Double] = [], continuations: [CheckedContinuation<(Decision, Timing), any Error>] = []
        let start = ContinuousClock.now
        for case let .classify(_, _, text, enqueued, continuation) in batch {
            texts.append(text)
            waits.append((start - enqueued).seconds * 1e3)
            continuations.append(continuation)
        }
        batchSizes.record(batch.count)
        let inputs = texts
        let result: Result<[Decision], any Error>
        do { result = .success(try await pool.runIfActive { try classifier.decide(batch: inputs) }) } catch { result = .failure(error) }
        let seconds = (ContinuousClock.now - start).seconds
        finished(batch.count, seconds: seconds)
        for (i, continuation) in continuations.enumerated() {
            switch result {
            case let .success(decisions):
                continuation.resume(returning: (decisions[i], Timing(queueMs: waits[i], modelMs: seconds * 1e3)))
            case let .failure(error):
                continuation.resume(throwing: error)
            }
        }
    }

    private func finished(_ weight: Int, seconds: Double) {
        queued -= weight
        depthGauge.record(queued)
        // A smoothed cost per queue place, for the Retry-After hint.
        secondsPerInput = 0.8 * secondsPerInput + 0.2 * seconds / Double(max(weight, 1))
    }

    /// Stops the worker after the work in hand.
    public func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
