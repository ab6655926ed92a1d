import Cascade
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import Store
import StructuredOutput

/// The metrics registry `/metrics` reads; swift-metrics is bootstrapped with it once per process.
public enum Telemetry {
    /// The registry.
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

extension APIError: HTTPResponseError {
    public var status: HTTPResponse.Status { HTTPResponse.Status(code: statusCode) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if statusCode == 401 { headers[.wwwAuthenticate] = "Bearer" }
        if let allow { headers[.allow] = allow }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(data: try encodeJSON(body))))
    }
}

/// The request context: Hummingbird's core storage plus the connection, so a handler can tell when its client has
/// gone away (the connection closed) and stop work nobody waits for.
public struct ServiceContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's connection.
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Watches the client's connection while a request is being worked on (stop it when done).
    func watchConnection() -> ConnectionWatch { ConnectionWatch(channel: channel) }
}

/// Tells when a client has gone away while its answer is being computed. The HTTP/1 pipeline stops reading from a
/// connection while a response is pending (and the server allows half-closed connections), so a client's FIN is not
/// seen as an event; the kernel's TCP state is (CLOSE_WAIT once the peer closed, Linux's `TCP_INFO`), polled every
/// 100 ms.
final class ConnectionWatch: Sendable {
    /// Set once the client is gone.
    let gone = Flag()
    private let task: Task<Void, Never>

    init(channel: any Channel) {
        let gone = self.gone
        task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                if !channel.isActive { gone.set(); return }
                #if os(Linux)
                // TCP_CLOSE_WAIT (8): the peer closed its side; TCP_CLOSE (7): the connection is gone.
                if let provider = channel as? any SocketOptionProvider, let info = try? await provider.getTCPInfo().get(),
                   info.tcpi_state == 8 || info.tcpi_state == 7 {
                    gone.set()
                    return
                }
                #endif
            }
        }
    }

    /// Stops watching.
    func stop() { task.cancel() }
}

/// Who may call an endpoint.
enum Access: Sendable {
    /// Anyone (health, metrics, the OpenAPI document, the review page's shell).
    case open
    /// API keys and reviewer keys (the review queue, the task list).
    case reviewer
    /// API keys only.
    case api
}

/// One endpoint, declared once: the router, the authorization rules and the 405 table all come from the list.
struct Endpoint: Sendable {
    var method: HTTPRequest.Method
    var path: String
    var access: Access
    var handler: @Sendable (Request, ServiceContext) async throws -> Response

    fileprivate var segments: [Substring] { path.split(separator: "/") }

    /// Whether `path` is this endpoint's path (`:name` segments match anything).
    func matches(_ path: String) -> Bool {
        let parts = path.split(separator: "/")
        let mine = segments
        return mine.count == parts.count && zip(mine, parts).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
    }
}

/// The endpoints of a service: what the 405 answers, the authorization rules and the OpenAPI check read.
struct EndpointTable: Sendable {
    let endpoints: [Endpoint]

    init(_ endpoints: [Endpoint]) { self.endpoints = endpoints }

    /// The methods routed for `path`.
    func methods(for path: String) -> [String] { endpoints.filter { $0.matches(path) }.map(\.method.rawValue) }

    /// Who may call `method` on `path` (nil: no such endpoint; the router answers 404 or 405).
    func access(_ method: HTTPRequest.Method, _ path: String) -> Access? {
        endpoints.first { $0.method == method && $0.matches(path) }?.access
    }
}

/// Bearer keys: API keys open everything; reviewer keys open the endpoints marked `reviewer`; `open` endpoints need
/// none, and neither does anything when no key is configured. Keys are compared by digest.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let apiKeys: Set<String>
    let reviewerKeys: Set<String>
    let table: EndpointTable

    init(config: ServiceConfig, table: EndpointTable) {
        apiKeys = Set(config.apiKeys.map(Digest.of))
        reviewerKeys = Set(config.reviewerKeys.map(Digest.of))
        self.table = table
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let access = table.access(request.method, request.uri.path)
        if access == .open || (apiKeys.isEmpty && reviewerKeys.isEmpty) { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError(statusCode: 401, code: "unauthorized", message: "send an API key as 'Authorization: Bearer KEY'")
        }
        let key = Digest.of(String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces))
        if apiKeys.contains(key) { return try await next(request, context) }
        if reviewerKeys.contains(key) {
            if access == .reviewer { return try await next(request, context) }
            throw APIError(statusCode: 403, code: "forbidden", message: "a reviewer key opens only the review queue")
        }
        throw APIError(statusCode: 401, code: "unauthorized", message: "the API key is not valid")
    }
}

/// Turns every error into the API's JSON error body: request-size refusals into 413, a path routed under other
/// methods into 405 with Allow, anything unexpected into 500 (logged, with no internals in the answer).
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let table: EndpointTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            if error.statusCode >= 400 && error.statusCode < 500 {
                Counter(label: "microscale_rejected_total", dimensions: [("reason", error.code)]).increment()
            }
            throw error
        } catch let error as HTTPError where error.status == .notFound && error.body == nil {
            let methods = table.methods(for: request.uri.path)
            guard !methods.isEmpty else { throw APIError(statusCode: 404, code: "not_found", message: "Not Found") }
            var e = APIError(statusCode: 405, code: "method_not_allowed", message: "\(request.method) is not allowed here; use \(methods.joined(separator: " or "))")
            e.allow = methods.joined(separator: ", ")
            throw e
        } catch let error as HTTPError {
            let code = switch error.status.code {
            case 413: "payload_too_large"
            case 404: "not_found"
            case 405: "method_not_allowed"
            default: "invalid_request"
            }
            throw APIError(statusCode: error.status.code, code: code, message: error.body ?? error.status.reasonPhrase)
        } catch is ClientGone {
            logger.info("request stopped: the client disconnected", metadata: ["path": "\(request.uri.path)"])
            throw APIError(statusCode: 499, code: "client_closed_request", message: "the client disconnected before the answer was ready")
        } catch let error as StoreError {
            logger.error("store error", metadata: ["error": "\(error)"])
            throw APIError.unavailable("the store failed: \(error)")
        } catch {
            logger.error("unhandled error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw APIError(statusCode: 500, code: "internal", message: "internal error; the server log has the details")
        }
    }
}

/// JSON responses.
func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: try encodeJSON(value))))
}

extension Request {
    /// The body as strict JSON, within the size limit.
    mutating func json(limit: Int) async throws -> JSONValue {
        let buffer: ByteBuffer
        do { buffer = try await collectBody(upTo: limit) } catch where error is NIOTooManyBytesError || (error as? HTTPError)?.status == .contentTooLarge {
            throw APIError(statusCode: 413, code: "payload_too_large", message: "the request body is larger than \(limit) bytes")
        }
        // A body sent as something else (a form, text) is refused rather than read as JSON; no Content-Type is read as JSON.
        if let type = headers[.contentType] {
            let media = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard media == "application/json" || (media.hasPrefix("application/") && media.hasSuffix("+json")) else {
                throw APIError(statusCode: 415, code: "unsupported_media_type", message: "the body must be JSON sent as Content-Type: application/json, not \(type)")
            }
        }
        return try parseBody(Array(buffer.readableBytesView))
    }

}

/// A file shipped with the server (the OpenAPI document, the review page).
func resource(_ name: String) -> String? {
    guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Resources") else { return nil }
    return try? String(contentsOf: url, encoding: .utf8)
}

/// The router: every endpoint of ``endpoints(service:)`` (which openapi.yaml documents).
public func makeRouter(service: CascadeService, logger: Logger) -> Router<ServiceContext> {
    let list = endpoints(service: service)
    let table = EndpointTable(list)
    let router = Router(context: ServiceContext.self)
    router.add(middleware: ErrorMiddleware(logger: logger, table: table))
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: AuthMiddleware(config: service.config, table: table))
    for e in list { router.on(RouterPath(e.path), method: e.method, use: e.handler) }
    return router
}

/// Every endpoint, declared once.
func endpoints(service: CascadeService) -> [Endpoint] {
    let limits = service.config.limits
    return [
        Endpoint(method: .get, path: "/healthz", access: .open) { _, _ in try jsonResponse(["status": "ok"]) },
        Endpoint(method: .get, path: "/readyz", access: .open) { _, _ in
            do { try await service.store.ping() } catch {
                throw APIError.unavailable("the store does not answer: \(error)")
            }
            struct Ready: Encodable { var status = "ready", tasks: [String], store: String, queue: Int }
            return try jsonResponse(Ready(tasks: service.taskNames, store: service.store.kind, queue: await service.engine.depth))
        },
        Endpoint(method: .get, path: "/metrics", access: .open) { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: Telemetry.registry.emitToBuffer())))
        },
        Endpoint(method: .get, path: "/openapi.yaml", access: .open) { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: resource("openapi.yaml") ?? "")))
        },
        Endpoint(method: .get, path: "/review", access: .open) { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"],
                     body: .init(byteBuffer: ByteBuffer(string: resource("review.html") ?? "")))
        },
        Endpoint(method: .get, path: "/v1/tasks", access: .reviewer) { _, _ in
            struct Tasks: Encodable { var tasks: [TaskResponse] }
            return try jsonResponse(Tasks(tasks: service.taskNames.compactMap { service.tasks[$0]?.listing }))
        },
        Endpoint(method: .get, path: "/v1/audit", access: .reviewer) { _, _ in
            struct TaskAudit: Encodable {
                var task: String, share: Double, window: Int, min_audits: Int, adapter_version: String?, risk_classes: [AuditStatus]
            }
            struct Audits: Encodable { var tasks: [TaskAudit] }
            var tasks: [TaskAudit] = []
            for (name, spec) in service.classificationSpecs.sorted(by: { $0.key < $1.key }) {
                let (statuses, version) = try await auditStatuses(spec: spec, store: service.store, audit: service.config.audit)
                tasks.append(TaskAudit(task: name, share: service.config.audit.share, window: service.config.audit.window,
                                       min_audits: service.config.audit.minAudits, adapter_version: version, risk_classes: statuses))
            }
            return try jsonResponse(Audits(tasks: tasks))
        },
        Endpoint(method: .post, path: "/v1/tasks/:task/decide", access: .api) { request, context in
            var request = request
            let task = try context.parameters.require("task")
            let body = try await request.json(limit: limits.maxBodyBytes).members(allowing: ["text", "inputs"], context: "decide request")
            switch (body["text"], body["inputs"]) {
            case let (.string(text)?, nil):
                return try jsonResponse(try await service.decide(taskName: task, inputs: [text], batch: false)[0])
            case let (nil, .array(items)?):
                let texts = try items.enumerated().map { i, item in
                    guard let s = item.stringValue else { throw APIError.invalid("inputs[\(i)] is not a string", param: "inputs[\(i)]", code: "invalid_type") }
                    return s
                }
                struct Batch: Encodable { var decisions: [DecisionResponse] }
                return try jsonResponse(Batch(decisions: try await service.decide(taskName: task, inputs: texts, batch: true)))
            case (_?, _?):
                throw APIError.invalid("send either 'text' or 'inputs', not both")
            case (nil, nil):
                throw APIError.invalid("send 'text' (a string) or 'inputs' (a list of strings)")
            case (_?, nil):
                throw APIError.invalid("'text' must be a string", param: "text", code: "invalid_type")
            case (nil, _?):
                throw APIError.invalid("'inputs' must be a list of strings", param: "inputs", code: "invalid_type")
            }
        },
        Endpoint(method: .get, path: "/v1/decisions/:id", access: .api) { _, context in
            let id = try context.parameters.require("id")
            guard let record = try await service.store.decision(id: id) else { throw APIError.notFound("no decision \(id)") }
            let review = try await service.store.reviewItem(decisionId: id).map { ReviewItemResponse($0, labels: service.labels(of: $0.task)) }
            return try jsonResponse(DecisionRecordResponse(record, review: review))
        },
        Endpoint(method: .get, path: "/v1/review/items", access: .reviewer) { request, _ in
            let q = request.uri.queryParameters
            var status: ReviewStatus? = .pending
            if let s = q["status"].map(String.init) {
                guard let parsed = ReviewStatus(rawValue: s) else { throw APIError.invalid("status must be pending, claimed or resolved", param: "status") }
                status = parsed
            }
            let limit = try boundedInt(q["limit"].map(String.init), name: "limit", default: 50, range: 1...1000)
            let items = try await service.store.reviewItems(task: q["task"].map(String.init), status: status, limit: limit)
            struct Items: Encodable { var items: [ReviewItemResponse] }
            return try jsonResponse(Items(items: items.map { ReviewItemResponse($0, labels: service.labels(of: $0.task)) }))
        },
        Endpoint(method: .post, path: "/v1/review/claim", access: .reviewer) { request, _ in
            var request = request
            let body = try await request.json(limit: limits.maxBodyBytes).members(allowing: ["reviewer", "task"], context: "claim request")
            let reviewer = try reviewerName(body["reviewer"])
            let task = body["task"]?.stringValue
            guard let item = try await service.store.claim(reviewer: reviewer, task: task, now: Date(), lease: service.config.claimMinutes * 60) else {
                return Response(status: .noContent)
            }
            return try jsonResponse(ReviewItemResponse(item, labels: service.labels(of: item.task)))
        },
        Endpoint(method: .post, path: "/v1/review/items/:id/resolve", access: .reviewer) { request, context in
            var request = request
            let id = try context.parameters.require("id")
            let body = try await request.json(limit: limits.maxBodyBytes).members(allowing: ["reviewer", "label", "fields"], context: "resolve request")
            let reviewer = try reviewerName(body["reviewer"])
            if let label = body["label"], label.stringValue == nil { throw APIError.invalid("'label' must be a string", param: "label", code: "invalid_type") }
            let item = try await service.resolve(decisionId: id, reviewer: reviewer, label: body["label"]?.stringValue, fields: body["fields"])
            return try jsonResponse(ReviewItemResponse(item, labels: service.labels(of: item.task)))
        },
        Endpoint(method: .get, path: "/v1/review/examples", access: .reviewer) { request, _ in
            let q = request.uri.queryParameters
            let limit = try boundedInt(q["limit"].map(String.init), name: "limit", default: 1000, range: 1...100_000)
            let examples = try await service.store.examples(task: q["task"].map(String.init), limit: limit)
            struct Examples: Encodable { var examples: [ExampleResponse] }
            return try jsonResponse(Examples(examples: examples.map(ExampleResponse.init)))
        },
        Endpoint(method: .get, path: "/v1/models", access: .api) { _, _ in
            struct Model: Encodable { var id: String, object = "model", created: Int, owned_by = "microscale" }
            struct Models: Encodable { var object = "list", data: [Model] }
            let created = Int(Date().timeIntervalSince1970)
            return try jsonResponse(Models(data: service.chatModels.keys.sorted().map { Model(id: $0, created: created) }))
        },
        Endpoint(method: .post, path: "/v1/chat/completions", access: .api) { request, context in
            var request = request
            let chat = try ChatRequest(try await request.json(limit: limits.maxBodyBytes))
            let prepared = try service.prepareChat(chat)
            if let user = chat.user { context.logger.info("chat completion", metadata: ["user": "\(user)", "model": "\(chat.model)"]) }
            let completion = Completion(model: chat.model)
            if chat.stream { return try await streamChat(service: service, prepared: prepared, completion: completion, includeUsage: chat.includeUsage) }
            // Not streamed: the answer is written at the end, so a closed connection is how a client says it is gone.
            let watch = context.watchConnection()
            defer { watch.stop() }
            let collected = Collector()
            let cancelled: Bool
            do {
                cancelled = try await service.runChat(prepared, isCancelled: { watch.gone.isSet }) { collected.add($0) }
            } catch { throw mapEngineError(error) }
            if cancelled { throw ClientGone() }
            let (text, logprobs, finish) = collected.result
            return try jsonResponse(completion.response(text: text, logprobs: prepared.logprobs ? logprobs : nil, finish: finish))
        },
    ]
}

/// A reviewer's name from a request body: 1 to 200 characters.
private func reviewerName(_ value: JSONValue?) throws -> String {
    guard let reviewer = value?.stringValue, !reviewer.isEmpty, reviewer.unicodeScalars.count <= 200, !RuleText.isBlank(reviewer) else {
        throw APIError.invalid("give 'reviewer', your name (1 to 200 characters)", param: "reviewer")
    }
    try refuseNUL(reviewer, param: "reviewer")
    return reviewer
}

/// A task as `GET /v1/tasks` lists it.
struct TaskResponse: Encodable {
    var name: String, kind: String, description: String
    var labels: [String]?, schema: JSONValue?
    var model_version: String, adapter_version: String?
    /// The label meaning "none of these" (a classification task that declares one).
    var out_of_scope_label: String? = nil
}

/// The identity of one chat completion and its answers in OpenAI's shapes.
struct Completion: Sendable {
    let id = "chatcmpl-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    let created = Int(Date().timeIntervalSince1970)
    let model: String

    struct Usage: Encodable { var prompt_tokens: Int, completion_tokens: Int, total_tokens: Int }
    struct Logprobs: Encodable { var content: [TokenLogprob]; var refusal: [TokenLogprob]? = nil }
    struct Message: Encodable { var role: String? = "assistant", content: String?, refusal: String? = nil }
    struct Choice: Encodable {
        var index = 0, message: Message?, delta: Message?, logprobs: Logprobs?, finish_reason: String?
        func encode(to encoder: any Encoder) throws {
            enum K: String, CodingKey { case index, message, delta, logprobs, finish_reason }
            var c = encoder.container(keyedBy: K.self)
            try c.encode(index, forKey: .index)
            try c.encodeIfPresent(message, forKey: .message)
            try c.encodeIfPresent(delta, forKey: .delta)
            try c.encode(logprobs, forKey: .logprobs)
            try c.encode(finish_reason, forKey: .finish_reason)
        }
    }
    struct Body: Encodable {
        var id: String, object: String, created: Int, model: String, choices: [Choice], usage: Usage?
        /// Whether `usage` is written even when null (streams with include_usage: OpenAI sends `"usage": null` on
        /// every chunk but the last).
        var explicitUsage = false
        enum K: String, CodingKey { case id, object, created, model, choices, usage }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: K.self)
            try c.encode(id, forKey: .id)
            try c.encode(object, forKey: .object)
            try c.encode(created, forKey: .created)
            try c.encode(model, forKey: .model)
            try c.encode(choices, forKey: .choices)
            if explicitUsage { try c.encode(usage, forKey: .usage) } else { try c.encodeIfPresent(usage, forKey: .usage) }
        }
    }

    func usage(_ f: (reason: String, prompt: Int, completion: Int)?) -> Usage {
        Usage(prompt_tokens: f?.prompt ?? 0, completion_tokens: f?.completion ?? 0, total_tokens: (f?.prompt ?? 0) + (f?.completion ?? 0))
    }

    func response(text: String, logprobs: [TokenLogprob]?, finish: (reason: String, prompt: Int, completion: Int)?) -> Body {
        Body(id: id, object: "chat.completion", created: created, model: model,
             choices: [Choice(message: Message(content: text), delta: nil, logprobs: logprobs.map { Logprobs(content: $0) }, finish_reason: finish?.reason ?? "stop")],
             usage: usage(finish))
    }

    /// One server-sent event of a stream: a chunk with one choice, or (`usage`, OpenAI's `include_usage`) the
    /// extra last chunk with no choices.
    func chunk(_ delta: Message?, logprobs: [TokenLogprob]? = nil, finish: String? = nil, usage: Usage? = nil, includeUsage: Bool) throws -> ByteBuffer {
        let choices = usage == nil ? [Choice(message: nil, delta: delta ?? Message(role: nil, content: nil), logprobs: logprobs.map { Logprobs(content: $0) }, finish_reason: finish)] : []
        let body = Body(id: id, object: "chat.completion.chunk", created: created, model: model, choices: choices, usage: usage, explicitUsage: includeUsage)
        return ByteBuffer(string: "data: " + String(decoding: try encodeJSON(body), as: UTF8.self) + "\n\n")
    }
}

/// A streamed chat completion (server-sent events). The response starts with the first piece, so a refusal (429 from a
/// full queue, an error before any token) is still an HTTP status and not an error inside an open stream; a client
/// that goes away stops the generation at its next token.
private func streamChat(service: CascadeService, prepared: CascadeService.PreparedChat, completion: Completion, includeUsage: Bool) async throws -> Response {
    let (pieces, continuation) = AsyncStream<ChatPiece>.makeStream(bufferingPolicy: .unbounded)
    let started = AsyncStream<Result<Void, any Error>>.makeStream()
    // The stream ends when the response body's writer stops reading it (the client went away, or the answer is
    // complete): that is the generation's cancellation signal.
    let gone = Flag()
    continuation.onTermination = { _ in gone.set() }
    Task {
        // The engine calls the closure on its thread one piece at a time.
        let admitted = Flag()
        do {
            try await service.runChat(prepared, isCancelled: { gone.isSet }) { piece in
                if !admitted.isSet { admitted.set(); started.continuation.yield(.success(())) }
                continuation.yield(piece)
            }
            if !admitted.isSet { started.continuation.yield(.success(())) }
        } catch {
            if !admitted.isSet { started.continuation.yield(.failure(error)) }
        }
        started.continuation.finish()
        continuation.finish()
    }
    var first = started.stream.makeAsyncIterator()
    if case let .failure(error)? = await first.next() { throw mapEngineError(error) }
    let logprobs = prepared.logprobs
    let body = ResponseBody { writer in
        try await writer.write(try completion.chunk(Completion.Message(role: "assistant", content: ""), logprobs: logprobs ? [] : nil, includeUsage: includeUsage))
        for await piece in pieces {
            switch piece {
            case let .text(t, entries):
                try await writer.write(try completion.chunk(Completion.Message(role: nil, content: t), logprobs: logprobs ? entries : nil, includeUsage: includeUsage))
            case let .finished(reason, p, c):
                try await writer.write(try completion.chunk(Completion.Message(role: nil, content: nil), finish: reason, includeUsage: includeUsage))
                if includeUsage { try await writer.write(try completion.chunk(nil, usage: completion.usage((reason, p, c)), includeUsage: true)) }
            }
        }
        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        try await writer.finish(nil)
    }
    return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
}

private func mapEngineError(_ error: any Error) -> any Error {
    if let e = error as? Overloaded { return APIError.overloaded(e) }
    return error
}

/// The client disconnected while its answer was being computed; the work stopped.
struct ClientGone: Error {}

/// A flag set on one thread and read on another.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// Collects a non-streamed completion (written from the engine thread, read after it finishes).
private final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""
    private var logprobs: [TokenLogprob] = []
    private var finish: (reason: String, prompt: Int, completion: Int)?

    func add(_ piece: ChatPiece) {
        lock.withLock {
            switch piece {
            case let .text(t, entries): text += t; logprobs += entries
            case let .finished(reason, p, c): finish = (reason, p, c)
            }
        }
    }

    var result: (String, [TokenLogprob], (reason: String, prompt: Int, completion: Int)?) { lock.withLock { (text, logprobs, finish) } }
}

private func boundedInt(_ text: String?, name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
    guard let text else { return value }
    guard let n = Int(text), range.contains(n) else {
        throw APIError.invalid("\(name) must be a whole number in \(range.lowerBound)…\(range.upperBound)", param: name)
    }
    return n
}
