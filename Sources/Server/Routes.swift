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
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body.description)))
    }
}

/// Bearer keys: API keys open everything; reviewer keys open the review queue and the task list. Health, readiness,
/// metrics, the OpenAPI document and the review page's shell are open. Keys are compared by digest.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let apiKeys: Set<String>
    let reviewerKeys: Set<String>

    init(config: ServiceConfig) {
        apiKeys = Set(config.apiKeys.map(Digest.of))
        reviewerKeys = Set(config.reviewerKeys.map(Digest.of))
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if openPaths.contains(path) || (apiKeys.isEmpty && reviewerKeys.isEmpty) { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError(statusCode: 401, type: "unauthorized", message: "send an API key as 'Authorization: Bearer KEY'")
        }
        let key = Digest.of(String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces))
        if apiKeys.contains(key) { return try await next(request, context) }
        if reviewerKeys.contains(key) {
            if path.hasPrefix("/v1/review/") || (path == "/v1/tasks" && request.method == .get) { return try await next(request, context) }
            throw APIError(statusCode: 403, type: "forbidden", message: "a reviewer key opens only the review queue")
        }
        throw APIError(statusCode: 401, type: "unauthorized", message: "the API key is not valid")
    }
}

/// The routes as (method, path pattern), for 405 answers: a path that exists under another method.
let routeTable = RouteTable([
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.yaml"), ("GET", "/review"), ("GET", "/v1/tasks"),
    ("POST", "/v1/tasks/:task/decide"), ("GET", "/v1/decisions/:id"), ("GET", "/v1/review/items"), ("POST", "/v1/review/claim"),
    ("POST", "/v1/review/items/:id/resolve"), ("GET", "/v1/review/examples"), ("GET", "/v1/models"), ("POST", "/v1/chat/completions"),
])

struct RouteTable: Sendable {
    let routes: [(method: String, segments: [Substring])]
    init(_ routes: [(String, String)]) { self.routes = routes.map { ($0.0, $0.1.split(separator: "/")) } }

    /// The methods routed for `path`.
    func methods(for path: String) -> [String] {
        let parts = path.split(separator: "/")
        return routes.filter { r in
            r.segments.count == parts.count && zip(r.segments, parts).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
        }.map(\.method)
    }
}

/// Paths that need no key.
private let openPaths: Set<String> = ["/healthz", "/readyz", "/metrics", "/openapi.yaml", "/review"]

/// Turns every error into the API's JSON error body: request-size refusals into 413, anything unexpected into 500
/// (logged, with no internals in the answer).
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            if error.statusCode >= 400 && error.statusCode < 500 {
                Counter(label: "microscale_rejected_total", dimensions: [("reason", error.type)]).increment()
            }
            throw error
        } catch let error as HTTPError where error.status == .notFound && error.body == nil {
            let methods = routeTable.methods(for: request.uri.path)
            guard !methods.isEmpty else { throw APIError(statusCode: 404, type: "not_found", message: "Not Found") }
            var e = APIError(statusCode: 405, type: "method_not_allowed", message: "\(request.method) is not allowed here; use \(methods.joined(separator: " or "))")
            e.allow = methods.joined(separator: ", ")
            throw e
        } catch let error as HTTPError {
            let type = switch error.status.code {
            case 413: "payload_too_large"
            case 404: "not_found"
            case 405: "method_not_allowed"
            default: "invalid_request"
            }
            throw APIError(statusCode: error.status.code, type: type, message: error.body ?? error.status.reasonPhrase)
        } catch let error as StoreError {
            logger.error("store error", metadata: ["error": "\(error)"])
            throw APIError.unavailable("the store failed: \(error)")
        } catch {
            logger.error("unhandled error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw APIError(statusCode: 500, type: "internal", message: "internal error; the server log has the details")
        }
    }
}

/// JSON responses.
func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: try encodeJSON(value))))
}

func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: value.description)))
}

extension Request {
    /// The body as strict JSON, within the size limit.
    mutating func json(limit: Int) async throws -> JSONValue {
        let buffer: ByteBuffer
        do { buffer = try await collectBody(upTo: limit) } catch where error is NIOTooManyBytesError || (error as? HTTPError)?.status == .contentTooLarge {
            throw APIError(statusCode: 413, type: "payload_too_large", message: "the request body is larger than \(limit) bytes")
        }
        return try parseBody(Array(buffer.readableBytesView))
    }

}

/// Decodes a parsed body as `T` (for OpenAI-shaped requests, whose unknown members are ignored).
func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
    do { return try JSONDecoder().decode(T.self, from: Data(value.description.utf8)) } catch let e as APIError { throw e } catch let e as DecodingError {
        throw APIError.invalid("the request does not have the expected shape: \(describe(e))")
    }
}

/// A decoding error in words, with the path of the member at fault.
func describe(_ error: DecodingError) -> String {
    func path(_ c: DecodingError.Context) -> String {
        c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }
    switch error {
    case let .keyNotFound(key, c): return "missing member '\(key.stringValue)'" + (c.codingPath.isEmpty ? "" : " in \(path(c))")
    case let .typeMismatch(_, c), let .valueNotFound(_, c), let .dataCorrupted(c): return "\(path(c)): \(c.debugDescription)"
    @unknown default: return "\(error)"
    }
}

/// A file shipped with the server (the OpenAPI document, the review page).
func resource(_ name: String) -> String? {
    guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Resources") else { return nil }
    return try? String(contentsOf: url, encoding: .utf8)
}

/// The router: every endpoint of openapi.yaml.
public func makeRouter(service: CascadeService, logger: Logger) -> Router<BasicRequestContext> {
    let router = Router()
    let limits = service.config.limits
    router.add(middleware: ErrorMiddleware(logger: logger))
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: AuthMiddleware(config: service.config))

    router.get("/healthz") { _, _ in jsonResponse(.object([("status", .string("ok"))])) }
    router.get("/readyz") { _, _ -> Response in
        do { try await service.store.ping() } catch {
            throw APIError.unavailable("the store does not answer: \(error)")
        }
        return jsonResponse(.object([("status", .string("ready")), ("tasks", .array(service.tasks.keys.sorted().map { .string($0) })),
                                     ("store", .string(service.store.kind)), ("queue", .integer(await service.engine.depth))]))
    }
    router.get("/metrics") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: Telemetry.registry.emitToBuffer())))
    }
    router.get("/openapi.yaml") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: resource("openapi.yaml") ?? "")))
    }
    router.get("/review") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"],
                 body: .init(byteBuffer: ByteBuffer(string: resource("review.html") ?? "")))
    }

    router.get("/v1/tasks") { _, _ -> Response in
        let tasks: [JSONValue] = service.tasks.keys.sorted().map { name in
            let task = service.tasks[name]!
            var members: [(key: String, value: JSONValue)] = [("name", .string(name))]
            switch task {
            case let .classification(c, _, _):
                members += [("kind", .string("classification")), ("description", .string(c.spec.summary)),
                            ("labels", .array(c.spec.labels.map { .string($0.name) }))]
            case let .extraction(t, _):
                members += [("kind", .string("extraction")), ("description", .string(t.name)), ("schema", t.schema.document)]
            }
            members += [("model_version", .string(task.modelVersion)), ("adapter_version", task.adapterVersion.map(JSONValue.string) ?? .null)]
            return .object(members)
        }
        return jsonResponse(.object([("tasks", .array(tasks))]))
    }

    router.post("/v1/tasks/:task/decide") { request, context -> Response in
        var request = request
        let task = try context.parameters.require("task")
        let body = try await request.json(limit: limits.maxBodyBytes).members(allowing: ["text", "inputs"], context: "decide request")
        switch (body["text"], body["inputs"]) {
        case let (.string(text)?, nil):
            return try jsonResponse(try await service.decide(taskName: task, texts: [text])[0])
        case let (nil, .array(items)?):
            let texts = try items.enumerated().map { i, item in
                guard let s = item.stringValue else { throw APIError.invalid("inputs[\(i)] is not a string", param: "inputs") }
                return s
            }
            struct Batch: Encodable { var decisions: [DecisionResponse] }
            return try jsonResponse(Batch(decisions: try await service.decide(taskName: task, texts: texts)))
        case (_?, _?):
            throw APIError.invalid("send either 'text' or 'inputs', not both")
        case (nil, nil):
            throw APIError.invalid("send 'text' (a string) or 'inputs' (a list of strings)")
        default:
            throw APIError.invalid("'text' must be a string and 'inputs' a list of strings")
        }
    }

    router.get("/v1/decisions/:id") { _, context -> Response in
        let id = try context.parameters.require("id")
        guard let record = try await service.store.decision(id: id) else { throw APIError.notFound("no decision \(id)") }
        let review = try await service.store.reviewItem(decisionId: id).map { ReviewItemResponse($0, labels: service.labels(of: $0.task)) }
        return try jsonResponse(DecisionRecordResponse(record, review: review))
    }

    router.get("/v1/review/items") { request, _ -> Response in
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
    }

    router.post("/v1/review/claim") { request, _ -> Response in
        var request = request
        let body = try await request.json(limit: limits.maxBodyBytes).members(allowing: ["reviewer", "task"], context: "claim request")
        guard let reviewer = body["reviewer"]?.stringValue, !reviewer.isEmpty, reviewer.count <= 200 else {
            throw APIError.invalid("give 'reviewer', your name (1 to 200 characters)", param: "reviewer")
        }
        let task = body["task"]?.stringValue
        guard let item = try await service.store.claim(reviewer: reviewer, task: task, now: Date(), lease: service.config.claimMinutes * 60) else {
            return Response(status: .noContent)
        }
        return try jsonResponse(ReviewItemResponse(item, labels: service.labels(of: item.task)))
    }

    router.post("/v1/review/items/:id/resolve") { request, context -> Response in
        var request = request
        let id = try context.parameters.require("id")
        let body = try await request.json(limit: limits.maxBodyBytes).members(allowing: ["reviewer", "label", "fields"], context: "resolve request")
        guard let reviewer = body["reviewer"]?.stringValue, !reviewer.isEmpty else { throw APIError.invalid("give 'reviewer'", param: "reviewer") }
        if let label = body["label"], label.stringValue == nil { throw APIError.invalid("'label' must be a string", param: "label") }
        let item = try await service.resolve(decisionId: id, reviewer: reviewer, label: body["label"]?.stringValue, fields: body["fields"])
        return try jsonResponse(ReviewItemResponse(item, labels: service.labels(of: item.task)))
    }

    router.get("/v1/review/examples") { request, _ -> Response in
        let q = request.uri.queryParameters
        let limit = try boundedInt(q["limit"].map(String.init), name: "limit", default: 1000, range: 1...100_000)
        let examples = try await service.store.examples(task: q["task"].map(String.init), limit: limit)
        struct Examples: Encodable { var examples: [ExampleResponse] }
        return try jsonResponse(Examples(examples: examples.map(ExampleResponse.init)))
    }

    router.get("/v1/models") { _, _ -> Response in
        let created = Int(Date().timeIntervalSince1970)
        let data: [JSONValue] = service.chatModels.keys.sorted().map {
            .object([("id", .string($0)), ("object", .string("model")), ("created", .integer(created)),
                     ("owned_by", .string("microscale"))])
        }
        return jsonResponse(.object([("object", .string("list")), ("data", .array(data))]))
    }

    router.post("/v1/chat/completions") { request, _ -> Response in
        var request = request
        let raw = try await request.json(limit: limits.maxBodyBytes)
        var chatRequest = try decode(ChatRequest.self, from: raw)
        // The schema as written: member order is the order the model must produce them in.
        chatRequest.response_format?.json_schema?.schema = raw["response_format"]?["json_schema"]?["schema"]
        let prepared = try service.prepareChat(chatRequest)
        let id = "chatcmpl-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let created = Int(Date().timeIntervalSince1970)
        let model = chatRequest.model
        if chatRequest.stream == true {
            let (pieces, continuation) = AsyncStream<ChatPiece>.makeStream(bufferingPolicy: .unbounded)
            // The response starts with the first piece, so a refusal (429 from a full queue, an error before any
            // token) is still an HTTP status and not an error inside an open stream.
            let started = AsyncStream<Result<Void, any Error>>.makeStream()
            Task {
                // The engine calls the closure on its thread one piece at a time; the flag is read again only after.
                let admitted = Flag()
                do {
                    try await service.runChat(prepared) { piece in
                        if !admitted.value { admitted.value = true; started.continuation.yield(.success(())) }
                        if case .terminated = continuation.yield(piece) { return false }
                        return true
                    }
                    if !admitted.value { started.continuation.yield(.success(())) }
                } catch {
                    if !admitted.value { started.continuation.yield(.failure(error)) }
                }
                started.continuation.finish()
                continuation.finish()
            }
            var first = started.stream.makeAsyncIterator()
            if case let .failure(error)? = await first.next() { throw mapEngineError(error) }
            let body = ResponseBody { writer in
                func send(_ delta: JSONValue, finish: String?, usage: JSONValue? = nil) async throws {
                    var chunk: [(key: String, value: JSONValue)] = [
                        ("id", .string(id)), ("object", .string("chat.completion.chunk")), ("created", .integer(created)),
                        ("model", .string(model)),
                        ("choices", .array([.object([("index", .integer(0)), ("delta", delta), ("finish_reason", finish.map(JSONValue.string) ?? .null)])])),
                    ]
                    if let usage { chunk.append(("usage", usage)) }
                    try await writer.write(ByteBuffer(string: "data: " + JSONValue.object(chunk).description + "\n\n"))
                }
                try await send(.object([("role", .string("assistant")), ("content", .string(""))]), finish: nil)
                for await piece in pieces {
                    switch piece {
                    case let .text(t): try await send(.object([("content", .string(t))]), finish: nil)
                    case let .finished(reason, p, c): try await send(.object([]), finish: reason, usage: usage(p, c))
                    }
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
        }
        let collected = Collector()
        do { try await service.runChat(prepared) { collected.add($0) } } catch { throw mapEngineError(error) }
        let (text, finish) = collected.result
        return jsonResponse(.object([
            ("id", .string(id)), ("object", .string("chat.completion")), ("created", .integer(created)),
            ("model", .string(model)),
            ("choices", .array([.object([
                ("index", .integer(0)),
                ("message", .object([("role", .string("assistant")), ("content", .string(text))])),
                ("finish_reason", .string(finish?.reason ?? "stop")),
            ])])),
            ("usage", usage(finish?.prompt ?? 0, finish?.completion ?? 0)),
        ]))
    }
    return router
}

private func usage(_ prompt: Int, _ completion: Int) -> JSONValue {
    .object([("prompt_tokens", .integer(prompt)), ("completion_tokens", .integer(completion)),
             ("total_tokens", .integer(prompt + completion))])
}

private func mapEngineError(_ error: any Error) -> any Error {
    if let e = error as? Overloaded { return APIError(statusCode: 429, type: "overloaded", message: e.description, retryAfter: e.retryAfter) }
    return error
}

/// A flag set on the engine thread and read after the engine is done with it.
private final class Flag: @unchecked Sendable { var value = false }

/// Collects a non-streamed completion (written from the engine thread, read after it finishes).
private final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""
    private var finish: (reason: String, prompt: Int, completion: Int)?

    func add(_ piece: ChatPiece) -> Bool {
        lock.withLock {
            switch piece {
            case let .text(t): text += t
            case let .finished(reason, p, c): finish = (reason, p, c)
            }
        }
        return true
    }

    var result: (String, (reason: String, prompt: Int, completion: Int)?) { lock.withLock { (text, finish) } }
}

private func boundedInt(_ text: String?, name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
    guard let text else { return value }
    guard let n = Int(text), range.contains(n) else {
        throw APIError.invalid("\(name) must be a whole number in \(range.lowerBound)…\(range.upperBound)", param: name)
    }
    return n
}
