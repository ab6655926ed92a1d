import AsyncHTTPClient
import Cascade
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import Store
import StructuredOutput

/// What the larger tier did with one request.
public struct EscalationOutcome: Codable, Sendable {
    /// answered, failed or circuit_open.
    public enum Kind: String, Codable, Sendable { case answered, failed, circuitOpen = "circuit_open" }
    /// Base URL.
    public var endpoint: String
    /// Model asked.
    public var model: String
    /// Attempts made.
    public var attempts: Int
    /// What happened.
    public var outcome: Kind
    /// Why it failed, if it did.
    public var error: String?
    /// The answer (validated against the schema).
    public var answer: JSONValue?
    /// Milliseconds spent, back-offs included.
    public var latencyMs: Double
    /// The start of what the tier sent with its last failure: kept in the decision log for diagnosis, removed from
    /// the API answer (the client gets `error`, a summary).
    public var responseBody: String? = nil
    /// Tokens the tier reported for the answered attempt (`usage` of the chat completion), when it reported them.
    public var usage: TokenUsage? = nil
    /// SHA-256 of the system prompt and schema asked with: which question a stored label answers.
    public var promptSHA256: String? = nil

    /// A chat completion's `usage`.
    public struct TokenUsage: Codable, Sendable, Equatable {
        public var promptTokens: Int
        public var completionTokens: Int
        enum CodingKeys: String, CodingKey { case promptTokens = "prompt_tokens", completionTokens = "completion_tokens" }
    }

    enum CodingKeys: String, CodingKey {
        case endpoint, model, attempts, outcome, error, answer, usage
        case latencyMs = "latency_ms", responseBody = "response_body", promptSHA256 = "prompt_sha256"
    }
}

/// Opens after `threshold` consecutive failures, refuses calls for `cooldown` seconds, then lets one probe through:
/// its success closes the circuit, its failure opens it again.
public actor CircuitBreaker {
    enum State: Equatable { case closed(failures: Int), open(until: ContinuousClock.Instant), probing }
    private var state = State.closed(failures: 0)
    let threshold: Int
    let cooldown: Duration

    /// A closed breaker.
    public init(threshold: Int, cooldown: Duration) {
        self.threshold = threshold
        self.cooldown = cooldown
    }

    /// Whether a call may go out now.
    public func allow(now: ContinuousClock.Instant = .now) -> Bool {
        switch state {
        case .closed: return true
        case .probing: return false
        case let .open(until):
            guard now >= until else { return false }
            state = .probing
            return true
        }
    }

    /// Records a call's result.
    public func record(success: Bool, now: ContinuousClock.Instant = .now) {
        switch (state, success) {
        case (_, true): state = .closed(failures: 0)
        case (.probing, false), (.open, false): state = .open(until: now + cooldown)
        case let (.closed(failures), false):
            state = failures + 1 >= threshold ? .open(until: now + cooldown) : .closed(failures: failures + 1)
        }
    }

    /// Whether calls are being refused.
    public var isOpen: Bool { if case .closed = state { false } else { true } }
}

/// The larger tier: an OpenAI-compatible chat-completions endpoint asked for a schema-constrained JSON answer, with
/// the small model's draft in the prompt and in `X-Microscale-Draft-*` headers. Each attempt has a deadline; transport
/// failures, timeouts, 408, 429 and 5xx are retried with doubling, jittered back-off; every failed call counts toward
/// the circuit breaker. A wrong or unparseable answer fails without retry: the caller sends the input to review.
public struct EscalationClient: Sendable {
    /// The tier's settings.
    public let tier: ServiceConfig.Escalation
    let http: HTTPClient
    let breaker: CircuitBreaker
    let permits: Permits
    let logger: Logger

    /// A client for a tier.
    public init(tier: ServiceConfig.Escalation, http: HTTPClient, logger: Logger) {
        self.tier = tier
        self.http = http
        self.logger = logger
        breaker = CircuitBreaker(threshold: tier.breakerFailures, cooldown: .milliseconds(Int(tier.breakerCooldown * 1000)))
        permits = Permits(tier.maxConcurrent)
    }

    /// One failed attempt.
    struct AttemptError: Error {
        var message: String
        /// What the tier sent (kept in the decision log, never in the API answer).
        var body: String? = nil
        var retryable: Bool
        /// The failure was on this side (no pooled connection free in time), not the tier's.
        var local = false
    }

    /// Asks the tier; `schema` is the JSON Schema the answer must meet (its document is sent as `response_format`, and
    /// the answer is checked against it here).
    public func ask(task: String, system: String, user: String, schema: Schema, draft: [(String, String)]) async -> EscalationOutcome {
        // At most `max_concurrent` requests to the tier at once (within the HTTP client's connection pool, so no attempt
        // waits for a pooled connection under its own deadline). Waiting here is ours, not the tier's: it never counts
        // against the breaker, and it is bounded by the tier's timeout.
        let start = ContinuousClock.now
        guard await permits.acquire(timeout: tier.timeout) else {
            Counter(label: "microscale_escalations_total", dimensions: [("task", task), ("outcome", "failed")]).increment()
            return EscalationOutcome(endpoint: tier.baseURL, model: tier.model, attempts: 0, outcome: .failed,
                                     error: "no request slot to the tier was free within \(tier.timeout) s (\(tier.maxConcurrent) in flight); the tier itself was not asked",
                                     answer: nil, latencyMs: (ContinuousClock.now - start).seconds * 1e3)
        }
        let outcome = await askHoldingPermit(task: task, system: system, user: user, schema: schema, draft: draft, start: start)
        await permits.release()
        return outcome
    }

    private func askHoldingPermit(task: String, system: String, user: String, schema: Schema, draft: [(String, String)],
                                  start: ContinuousClock.Instant) async -> EscalationOutcome {
        var outcome = EscalationOutcome(endpoint: tier.baseURL, model: tier.model, attempts: 0, outcome: .failed, error: nil, answer: nil, latencyMs: 0)
        outcome.promptSHA256 = Digest.of(system + "\u{0}" + schema.document.description)
        defer { Counter(label: "microscale_escalations_total", dimensions: [("task", task), ("outcome", outcome.outcome.rawValue)]).increment() }
        let body = JSONValue.object([
            ("model", .string(tier.model)),
            ("messages", .array([
                .object([("role", .string("system")), ("content", .string(system))]),
                .object([("role", .string("user")), ("content", .string(user))]),
            ])),
            ("temperature", .integer(0)),
            ("max_tokens", .integer(tier.maxTokens)),
            ("response_format", .object([
                ("type", .string("json_schema")),
                ("json_schema", .object([("name", .string("answer")), ("strict", .bool(true)), ("schema", schema.document)])),
            ])),
        ]).description
        for attempt in 0...tier.retries {
            guard await breaker.allow() else {
                outcome.outcome = outcome.attempts == 0 ? .circuitOpen : .failed
                outcome.error = (outcome.error.map { $0 + "; " } ?? "") + "circuit open after repeated failures of \(tier.baseURL)"
                break
            }
            outcome.attempts += 1
            Counter(label: "microscale_escalation_attempts_total", dimensions: [("task", task)]).increment()
            do {
                let (answer, usage) = try await attemptOnce(body: body, schema: schema, task: task, draft: draft)
                await breaker.record(success: true)
                outcome.outcome = .answered
                outcome.answer = answer
                outcome.usage = usage
                outcome.error = nil
                outcome.responseBody = nil
                break
            } catch let error as AttemptError {
                // A wait for one of our own pooled connections says nothing about the tier: it does not open the breaker.
                if !error.local { await breaker.record(success: false) }
                outcome.error = error.message
                outcome.responseBody = error.body
                logger.warning("escalation attempt failed", metadata: ["task": "\(task)", "attempt": "\(attempt + 1)", "error": "\(error.message)"])
                guard error.retryable, attempt < tier.retries else { break }
                let backoff = tier.backoff * pow(2, Double(attempt)) * Double.random(in: 0.5...1.5)
                try? await Task.sleep(for: .milliseconds(Int(backoff * 1000)))
            } catch {
                await breaker.record(success: false)
                outcome.error = "\(error)"
                break
            }
        }
        outcome.latencyMs = (ContinuousClock.now - start).seconds * 1e3
        Gauge(label: "microscale_circuit_open", dimensions: [("endpoint", tier.baseURL)]).record(await breaker.isOpen ? 1 : 0)
        return outcome
    }

    private func attemptOnce(body: String, schema: Schema, task: String, draft: [(String, String)]) async throws
        -> (JSONValue, EscalationOutcome.TokenUsage?) {
        let base = tier.baseURL.hasSuffix("/") ? String(tier.baseURL.dropLast()) : tier.baseURL
        var request = HTTPClientRequest(url: base + "/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-Microscale-Task", value: task)
        for (name, value) in draft { request.headers.add(name: "X-Microscale-Draft-" + name, value: value) }
        if let key = tier.apiKey { request.headers.add(name: "Authorization", value: "Bearer " + key) }
        request.body = .bytes(ByteBuffer(string: body))
        let timeout = tier.timeout
        let prepared = request
        let payload: ByteBuffer
        let status: HTTPResponseStatus
        do {
            (status, payload) = try await withDeadline(seconds: timeout, orThrow: DeadlineExceeded()) {
                let response = try await http.execute(prepared, timeout: .milliseconds(Int64(timeout * 1000)))
                return (response.status, try await response.body.collect(upTo: 4 << 20))
            }
        } catch is DeadlineExceeded {
            throw AttemptError(message: "no answer within \(timeout) s", retryable: true)
        } catch let error as HTTPClientError where error == .getConnectionFromPoolTimeout {
            throw AttemptError(message: "no connection to the tier was free within \(timeout) s", retryable: true, local: true)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw AttemptError(message: "no answer within \(timeout) s", retryable: true)
        } catch {
            throw AttemptError(message: "request failed: \(error)", retryable: true)
        }
        let text = String(buffer: payload)
        guard status == .ok else {
            let retryable = status.code == 408 || status.code == 429 || status.code >= 500
            // The summary carries an OpenAI-style error's code (e.g. context_length_exceeded), never the body itself.
            let code = (try? JSONValue.parse(Array(payload.readableBytesView)))?["error"]?["code"]?.stringValue
                .map { $0.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || $0 == "_" } ? $0 : nil } ?? nil
            throw AttemptError(message: "HTTP \(status.code) from the tier" + (code.map { " (\($0))" } ?? ""), body: String(text.prefix(2000)),
                               retryable: retryable)
        }
        guard let envelope = try? JSONValue.parse(Array(payload.readableBytesView)),
              case let .array(choices)? = envelope["choices"], let content = choices.first?["message"]?["content"]?.stringValue
        else { throw AttemptError(message: "the response is not a chat completion", body: String(text.prefix(2000)), retryable: false) }
        guard let answer = try? JSONValue.parse(content) else {
            throw AttemptError(message: "the answer is not JSON", body: String(content.prefix(2000)), retryable: false)
        }
        let violations = schema.violations(of: answer)
        guard violations.isEmpty else {
            throw AttemptError(message: "the answer does not match the schema: \(violations.map(\.description).joined(separator: "; "))", retryable: false)
        }
        let usage = envelope["usage"].flatMap { u -> EscalationOutcome.TokenUsage? in
            func count(_ v: JSONValue?) -> Int? {
                guard case let .number(x, _)? = v, x >= 0, x == x.rounded(), x < 1e12 else { return nil }
                return Int(x)
            }
            guard let p = count(u["prompt_tokens"]), let c = count(u["completion_tokens"]) else { return nil }
            return EscalationOutcome.TokenUsage(promptTokens: p, completionTokens: c)
        }
        return (answer, usage)
    }
}

/// An operation ran past its deadline.
struct DeadlineExceeded: Error {}

/// A counting semaphore with a timeout: `acquire` waits in arrival order for one of `count` permits.
actor Permits {
    private var available: Int
    private var waiters: [(id: Int, continuation: CheckedContinuation<Bool, Never>)] = []
    private var nextID = 0

    init(_ count: Int) { available = max(1, count) }

    /// Takes a permit, waiting at most `timeout` seconds; false when none came in time.
    func acquire(timeout: Double) async -> Bool {
        if available > 0 {
            available -= 1
            return true
        }
        let id = nextID
        nextID += 1
        return await withCheckedContinuation { continuation in
            waiters.append((id, continuation))
            Task {
                try? await Task.sleep(for: .milliseconds(Int(timeout * 1000)))
                self.expire(id)
            }
        }
    }

    private func expire(_ id: Int) {
        guard let i = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: i).continuation.resume(returning: false)
    }

    /// Returns a permit (to the longest waiter, if any).
    func release() {
        if waiters.isEmpty { available += 1 } else { waiters.removeFirst().continuation.resume(returning: true) }
    }
}
