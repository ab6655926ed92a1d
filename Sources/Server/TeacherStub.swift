import Cascade
import Foundation
import Hummingbird
import Logging
import StructuredOutput
import Synchronization

/// A stand-in teacher for simulations and trials without a large model: an OpenAI-compatible chat-completions
/// endpoint that answers `{"label": …}` with the true label of the user message, looked up in a labelled file, and
/// with a wrong one at a stated error rate. Which inputs get a wrong label, and which wrong label, is drawn from the
/// SHA-256 of the seed and the text, so the same input always gets the same answer. The wrong label is one of the
/// `enum` of the request's `response_format` schema; an input not in the file is answered 404.
public struct TeacherStub: Sendable {
    /// True labels by text (exact bytes).
    public let truth: [ExactText: String]
    /// Share of answers that are wrong.
    public let errorRate: Double
    /// Seed of the errors.
    public let seed: UInt64
    /// Time each answer takes (a slow teacher, for trials of timeouts and interrupted runs).
    public let latency: Duration
    /// Requests answered, and per text (`GET /v1/stub/stats` reports them).
    let asked = Counts()

    final class Counts: Sendable {
        let state = Mutex<(requests: Int, byText: [ExactText: Int])>((0, [:]))
    }

    /// A stub over `truth`.
    public init(truth: [ExactText: String], errorRate: Double, seed: UInt64 = 7, latency: Duration = .zero) {
        self.truth = truth; self.errorRate = errorRate; self.seed = seed; self.latency = latency
    }

    /// Two uniforms in [0, 1) from the text.
    func uniforms(_ text: String) -> (Double, Double) {
        let hex = Digest.of("\(seed)\u{0}\(text)")
        func u(_ from: Int) -> Double {
            let start = hex.index(hex.startIndex, offsetBy: from)
            return Double(UInt64(hex[start..<hex.index(start, offsetBy: 12)], radix: 16)!) / Double(1 << 48)
        }
        return (u(0), u(12))
    }

    /// The stub's label for `text` among `labels`, or nil for an unknown text.
    public func answer(_ text: String, labels: [String]) -> String? {
        guard let label = truth[ExactText(text)] else { return nil }
        let (flip, pick) = uniforms(text)
        let others = labels.filter { $0 != label }
        guard flip < errorRate, !others.isEmpty else { return label }
        return others[min(others.count - 1, Int(pick * Double(others.count)))]
    }

    /// The router: `POST /v1/chat/completions`.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/v1/chat/completions") { request, _ -> Response in
            var request = request
            let buffer = try await request.collectBody(upTo: 1 << 20)
            guard let body = try? JSONValue.parse(Array(buffer.readableBytesView)),
                  case let .array(messages)? = body["messages"],
                  let text = messages.last(where: { $0["role"]?.stringValue == "user" })?["content"]?.stringValue
            else { return Self.error(400, "the body is not a chat completion request with a user message") }
            var labels: [String] = []
            if case let .array(values)? = body["response_format"]?["json_schema"]?["schema"]?["properties"]?["label"]?["enum"] {
                labels = values.compactMap(\.stringValue)
            }
            asked.state.withLock { $0.requests += 1; $0.byText[ExactText(text), default: 0] += 1 }
            if latency > .zero { try await Task.sleep(for: latency) }
            guard let label = answer(text, labels: labels) else { return Self.error(404, "the stub teacher has no label for this input") }
            let content = JSONValue.object([("label", .string(label))]).description
            let reply = JSONValue.object([
                ("id", .string("stub-" + UUID().uuidString.lowercased())), ("object", .string("chat.completion")),
                ("created", .integer(Int(Date().timeIntervalSince1970))), ("model", .string(body["model"]?.stringValue ?? "stub")),
                ("choices", .array([.object([
                    ("index", .integer(0)), ("finish_reason", .string("stop")),
                    ("message", .object([("role", .string("assistant")), ("content", .string(content))])),
                ])])),
                ("usage", .object([("prompt_tokens", .integer(text.utf8.count / 4 + 100)), ("completion_tokens", .integer(8)),
                                   ("total_tokens", .integer(text.utf8.count / 4 + 108))])),
            ])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: reply.description)))
        }
        router.get("/v1/stub/stats") { _, _ -> Response in
            let (requests, byText) = asked.state.withLock { $0 }
            let body = JSONValue.object([("requests", .integer(requests)), ("distinct", .integer(byText.count)),
                                         ("asked_more_than_once", .integer(byText.values.count { $0 > 1 }))]).description
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        return router
    }

    static func error(_ status: Int, _ message: String) -> Response {
        let body = JSONValue.object([("error", .object([("message", .string(message)), ("type", .string("invalid_request_error"))]))]).description
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// The application on `host:port` (0: any free port); `onRunning` gets the port once listening.
    public func application(host: String = "127.0.0.1", port: Int, logger: Logger, onRunning: @escaping @Sendable (Int) -> Void) -> some ApplicationProtocol {
        Application(router: router(), configuration: .init(address: .hostname(host, port: port), serverName: "microscale-teacher-stub"),
                    onServerRunning: { channel in onRunning(channel.localAddress?.port ?? port) }, logger: logger)
    }
}
