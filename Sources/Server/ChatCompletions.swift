import Foundation
import Inference
import Metrics
import StructuredOutput
import Tokenizers

/// An OpenAI chat-completions request, read member by member so that every refusal names its parameter.
///
/// Policy (also in README.md and openapi.yaml): every parameter OpenAI documents is either implemented as documented
/// or refused with a 400 whose `param` names it; members OpenAI does not know are refused too, as OpenAI refuses them.
/// Implemented: model, messages, max_tokens, max_completion_tokens (both given: the smaller wins), temperature, top_p,
/// seed (any 64-bit integer), stop (1 to 4 non-empty strings; refused with a JSON response format, whose output must
/// stay valid), stream, stream_options.include_usage, n (1 only), response_format (text, json_object, json_schema),
/// logprobs, top_logprobs (0 to 20), presence_penalty, frequency_penalty, logit_bias, user (accepted; written to the
/// server log only). Refused: tools, tool_choice, functions, function_call, parallel_tool_calls and everything else.
struct ChatRequest: Sendable {
    enum Format: Sendable {
        case text
        /// Any JSON object (`json_object`).
        case jsonObject
        /// The schema as written: member order is the order the model produces them in.
        case jsonSchema(JSONValue)

        var isJSON: Bool { if case .text = self { false } else { true } }
    }

    var model: String
    var messages: [ChatMessage]
    var maxTokens: Int?
    /// Which parameter set ``maxTokens`` (for messages).
    var maxTokensParam = "max_tokens"
    var temperature: Double?
    var topP: Double?
    var seed: UInt64?
    var stop: [String] = []
    var stream = false
    var includeUsage = false
    var format = Format.text
    var logprobs = false
    var topLogprobs = 0
    var presencePenalty = 0.0
    var frequencyPenalty = 0.0
    /// Token id → bias, as sent (checked against the model's vocabulary when prepared).
    var logitBias: [Int: Float] = [:]
    var user: String?

    static let implemented: Set<String> = [
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stop", "stream",
        "stream_options", "n", "response_format", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty",
        "logit_bias", "user",
    ]
    static let toolParameters: Set<String> = ["tools", "tool_choice", "functions", "function_call", "parallel_tool_calls"]

    /// Reads a parsed body; every error names the parameter at fault.
    init(_ body: JSONValue) throws {
        let p = try Members(body, path: nil)
        for key in p.keys where !Self.implemented.contains(key) && p[key] != .null {
            if Self.toolParameters.contains(key) {
                throw APIError.unsupported(key, "tool calling is not supported ('\(key)'); use response_format json_schema for structured output")
            }
            throw APIError.unsupported(key, "unsupported parameter '\(key)'; supported: \(Self.implemented.sorted().joined(separator: ", "))")
        }
        guard let model = try p.string("model") else { throw APIError.invalid("'model' is required", param: "model") }
        self.model = model
        guard case let .array(items)? = p["messages"] else {
            throw APIError.invalid("'messages' is required: a list of {role, content}", param: "messages", code: p["messages"] == nil ? "invalid_request" : "invalid_type")
        }
        messages = try items.enumerated().map { try Self.message($1, path: "messages[\($0)]") }
        guard !messages.isEmpty else { throw APIError.invalid("'messages' is empty", param: "messages") }

        let maxTokens = try p.int("max_tokens", in: 1...Int(Int32.max))
        let maxCompletionTokens = try p.int("max_completion_tokens", in: 1...Int(Int32.max))
        self.maxTokens = [maxTokens, maxCompletionTokens].compactMap { $0 }.min()
        maxTokensParam = maxCompletionTokens != nil && (maxTokens == nil || maxCompletionTokens! < maxTokens!) ? "max_completion_tokens" : "max_tokens"
        temperature = try p.number("temperature", in: 0...2)
        topP = try p.number("top_p", in: 0...1)
        seed = try p.int64("seed").map { UInt64(bitPattern: $0) }
        switch p["stop"] {
        case nil, .null?: break
        case let .string(s)?: stop = [s]
        case let .array(list)?:
            stop = try list.enumerated().map { i, v in
                guard let s = v.stringValue else { throw APIError.invalid("stop[\(i)] must be a string", param: "stop", code: "invalid_type") }
                return s
            }
        default: throw APIError.invalid("'stop' must be a string or a list of strings", param: "stop", code: "invalid_type")
        }
        guard stop.count <= 4 else { throw APIError.invalid("'stop' has \(stop.count) strings; at most 4 are allowed", param: "stop") }
        guard !stop.contains("") else { throw APIError.invalid("'stop' strings must not be empty", param: "stop") }
        stream = try p.bool("stream") ?? false
        if let options = p["stream_options"], options != .null {
            guard stream else { throw APIError.invalid("'stream_options' is only allowed with stream: true", param: "stream_options") }
            let o = try Members(options, path: "stream_options")
            for key in o.keys where key != "include_usage" && o[key] != .null {
                throw APIError.unsupported("stream_options.\(key)", "unsupported stream option '\(key)'; supported: include_usage")
            }
            includeUsage = try o.bool("include_usage") ?? false
        }
        if let n = try p.int("n", in: 1...128), n != 1 { throw APIError.invalid("only n = 1 is supported", param: "n") }
        if let format = p["response_format"], format != .null { self.format = try Self.format(format) }
        logprobs = try p.bool("logprobs") ?? false
        if let top = try p.int("top_logprobs", in: 0...20) {
            guard logprobs else { throw APIError.invalid("top_logprobs requires logprobs: true", param: "top_logprobs") }
            topLogprobs = top
        }
        presencePenalty = try p.number("presence_penalty", in: -2...2) ?? 0
        frequencyPenalty = try p.number("frequency_penalty", in: -2...2) ?? 0
        if let bias = p["logit_bias"], bias != .null {
            let b = try Members(bias, path: "logit_bias")
            for key in b.keys {
                guard let token = Int(key), token >= 0 else {
                    throw APIError.invalid("logit_bias keys are token ids (whole numbers as strings), not '\(key)'", param: "logit_bias")
                }
                guard let value = try b.number(key, in: -100...100) else {
                    throw APIError.invalid("logit_bias.\(key) must be a number from -100 to 100, not null", param: "logit_bias.\(key)", code: "invalid_type")
                }
                logitBias[token] = Float(value)
            }
        }
        user = try p.string("user")
        if !stop.isEmpty, format.isJSON {
            throw APIError.invalid("'stop' cannot be used with a JSON response_format: a stop string would cut the JSON, so the output could not be valid",
                                   param: "stop")
        }
    }

    private static func message(_ value: JSONValue, path: String) throws -> ChatMessage {
        let m = try Members(value, path: path)
        for key in m.keys where !["role", "content"].contains(key) && m[key] != .null {
            throw APIError.unsupported("\(path).\(key)", "message member '\(key)' is not supported; a message has role and content")
        }
        guard let role = try m.string("role") else { throw APIError.invalid("\(path).role is required", param: "\(path).role") }
        guard ["system", "user", "assistant", "developer"].contains(role) else {
            throw APIError.invalid("unsupported role '\(role)'; use system, developer, user or assistant", param: "\(path).role")
        }
        let content: String
        switch m["content"] {
        case let .string(s)?: content = s
        case .null?, nil:
            guard role == "assistant" else { throw APIError.invalid("\(path).content is required", param: "\(path).content") }
            content = ""
        case let .array(parts)?:
            content = try parts.enumerated().map { j, part in
                let at = "\(path).content[\(j)]"
                let q = try Members(part, path: at)
                guard q["type"]?.stringValue == "text" else {
                    throw APIError.unsupported("\(at).type", "only text content parts are supported, not '\(q["type"]?.description ?? "none")'")
                }
                for key in q.keys where key != "type" && key != "text" && q[key] != .null {
                    throw APIError.unsupported("\(at).\(key)", "content part member '\(key)' is not supported")
                }
                guard let text = try q.string("text") else { throw APIError.invalid("\(at).text is required", param: "\(at).text") }
                return text
            }.joined()
        default:
            throw APIError.invalid("\(path).content must be a string or a list of text parts", param: "\(path).content", code: "invalid_type")
        }
        return ChatMessage(role: role == "developer" ? "system" : role, content: content)
    }

    private static func format(_ value: JSONValue) throws -> Format {
        let f = try Members(value, path: "response_format")
        switch try f.string("type") {
        case "text"?:
            for key in f.keys where key != "type" && f[key] != .null { throw APIError.unsupported("response_format.\(key)", "'\(key)' is not a member of a text response_format") }
            return .text
        case "json_object"?:
            for key in f.keys where key != "type" && f[key] != .null { throw APIError.unsupported("response_format.\(key)", "'\(key)' is not a member of a json_object response_format") }
            return .jsonObject
        case "json_schema"?:
            for key in f.keys where key != "type" && key != "json_schema" && f[key] != .null {
                throw APIError.unsupported("response_format.\(key)", "'\(key)' is not a member of a json_schema response_format")
            }
            guard let inner = f["json_schema"] else {
                throw APIError.invalid("response_format.json_schema is required", param: "response_format.json_schema")
            }
            let s = try Members(inner, path: "response_format.json_schema")
            for key in s.keys where !["name", "description", "schema", "strict"].contains(key) && s[key] != .null {
                throw APIError.unsupported("response_format.json_schema.\(key)", "unsupported member '\(key)'; supported: name, description, schema, strict")
            }
            // OpenAI's rule for the name: letters, digits, underscores and dashes, at most 64.
            if let name = try s.string("name"), name.isEmpty || name.unicodeScalars.count > 64
                || !name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-") }) {
                throw APIError.invalid("response_format.json_schema.name must match ^[a-zA-Z0-9_-]{1,64}$, not '\(name)'",
                                       param: "response_format.json_schema.name")
            }
            _ = try s.string("description")
            // strict: false still gets valid output (the constraint is always on), which strict: false permits.
            _ = try s.bool("strict")
            guard let schema = s["schema"] else {
                throw APIError.invalid("response_format.json_schema.schema is required", param: "response_format.json_schema.schema")
            }
            return .jsonSchema(schema)
        case let other?:
            throw APIError.invalid("response_format type '\(other)' is not supported; use text, json_object or json_schema", param: "response_format.type")
        case nil:
            throw APIError.invalid("response_format.type is required", param: "response_format.type")
        }
    }
}

/// The members of a JSON object, read with typed accessors whose errors name the member's path.
struct Members {
    private let members: [String: JSONValue]
    private let path: String?
    /// Member names in the order written.
    let keys: [String]

    init(_ value: JSONValue, path: String?) throws {
        guard case let .object(list) = value else {
            throw APIError.invalid("\(path ?? "the request body") must be a JSON object", param: path, code: "invalid_type")
        }
        var members: [String: JSONValue] = [:]
        for (k, v) in list {
            guard members.updateValue(v, forKey: k) == nil else {
                throw APIError.invalid("member '\(k)' appears twice", param: name(k, path))
            }
        }
        self.members = members
        self.path = path
        keys = list.map(\.key)
    }

    subscript(key: String) -> JSONValue? { members[key] }

    /// A member's value unless absent or null.
    private func present(_ key: String) -> JSONValue? {
        guard let v = members[key], v != .null else { return nil }
        return v
    }

    private func mismatch(_ key: String, _ expected: String) -> APIError {
        APIError.invalid("'\(name(key, path))' must be \(expected), not \(members[key]!.description.prefix(40))", param: name(key, path), code: "invalid_type")
    }

    func string(_ key: String) throws -> String? {
        guard let v = present(key) else { return nil }
        guard let s = v.stringValue else { throw mismatch(key, "a string") }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = present(key) else { return nil }
        guard case let .bool(b) = v else { throw mismatch(key, "true or false") }
        return b
    }

    func number(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let v = present(key) else { return nil }
        guard case let .number(x, _) = v, x.isFinite else { throw mismatch(key, "a number") }
        guard range.contains(x) else {
            throw APIError.invalid("'\(name(key, path))' must be between \(range.lowerBound.formatted()) and \(range.upperBound.formatted()), not \(v)",
                                   param: name(key, path))
        }
        return x
    }

    func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = present(key) else { return nil }
        guard case let .number(x, text) = v, v.isInteger else { throw mismatch(key, "a whole number") }
        guard let n = Int(exactly: x) ?? Int(text) else {
            throw APIError.invalid("'\(name(key, path))' must be between \(range.lowerBound) and \(range.upperBound), not \(text)", param: name(key, path))
        }
        guard range.contains(n) else {
            let bounds = range.upperBound >= Int(Int32.max) ? "at least \(range.lowerBound)" : "between \(range.lowerBound) and \(range.upperBound)"
            throw APIError.invalid("'\(name(key, path))' must be \(bounds), not \(n)", param: name(key, path))
        }
        return n
    }

    func int64(_ key: String) throws -> Int64? {
        guard let v = present(key) else { return nil }
        guard case let .number(_, text) = v, v.isInteger, let n = Int64(text) else {
            throw mismatch(key, "a whole number between \(Int64.min) and \(Int64.max)")
        }
        return n
    }
}

private func name(_ key: String, _ path: String?) -> String { path.map { "\($0).\(key)" } ?? key }

/// One generated token as OpenAI's `logprobs.content` shows it: its text, log-probability and bytes, and the most
/// probable alternatives at that position.
struct TokenLogprob: Sendable, Encodable {
    struct Alternative: Sendable, Encodable { var token: String; var logprob: Double; var bytes: [UInt8] }
    var token: String
    var logprob: Double
    var bytes: [UInt8]
    var top_logprobs: [Alternative]
}

/// One piece of a completion as it is produced.
enum ChatPiece: Sendable {
    case text(String, logprobs: [TokenLogprob])
    case finished(reason: String, promptTokens: Int, completionTokens: Int)
}

extension CascadeService {
    /// A validated chat request ready for the engine.
    struct PreparedChat: Sendable {
        var model: ServedModel
        var prompt: [Int]
        var parameters: GenerateParameters
        var constraint: TokenConstraint?
        /// Log-probabilities requested, and how many alternatives per token.
        var logprobs: Bool
        var topLogprobs: Int
    }

    /// Checks a chat request against the served models and the limits, and tokenizes its prompt.
    func prepareChat(_ request: ChatRequest) throws -> PreparedChat {
        guard let model = chatModels[request.model] else {
            throw APIError(statusCode: 404, code: "model_not_found",
                           message: "no model '\(request.model)'; models: \(chatModels.keys.sorted().joined(separator: ", "))", param: "model")
        }
        let limit = config.limits.maxCompletionTokens
        let maxTokens = request.maxTokens ?? min(256, limit)
        guard maxTokens <= limit else {
            throw APIError.invalid("\(request.maxTokensParam) is \(maxTokens); this server allows at most \(limit) (limits.max_completion_tokens)",
                                   param: request.maxTokensParam)
        }
        let vocabulary = model.loaded.tokenizer.vocabularySize
        if let bad = request.logitBias.keys.first(where: { $0 >= vocabulary }) {
            throw APIError.invalid("logit_bias names token \(bad); \(request.model)'s vocabulary has ids 0 to \(vocabulary - 1)", param: "logit_bias")
        }
        let prompt: [Int]
        do { prompt = try model.loaded.chatTokens(request.messages) } catch {
            throw APIError.invalid("the messages cannot be formatted for \(request.model): \(error)", param: "messages")
        }
        guard prompt.count <= config.limits.maxPromptTokens else {
            throw APIError.invalid("the prompt has \(prompt.count) tokens; the limit is \(config.limits.maxPromptTokens)", param: "messages",
                                   code: "context_length_exceeded")
        }
        let context = model.loaded.model.contextLength
        guard prompt.count < context else {
            throw APIError.invalid("the prompt has \(prompt.count) tokens; \(request.model)'s context holds \(context)", param: "messages",
                                   code: "context_length_exceeded")
        }
        var constraint: TokenConstraint?
        let whitespace = config.jsonWhitespace
        switch request.format {
        case .text: break
        case .jsonObject:
            constraint = model.constraints.constraint(for: Schema.anyObject, maxWhitespace: whitespace)
        case let .jsonSchema(document):
            do { constraint = model.constraints.constraint(for: try Schema(document: document), maxWhitespace: whitespace) } catch let e as SchemaError {
                throw APIError.invalid("the schema is not supported: \(e.description)", param: "response_format.json_schema.schema")
            }
        }
        let parameters = GenerateParameters(
            maxTokens: maxTokens, temperature: Float(request.temperature ?? 1), topP: Float(request.topP ?? 1),
            seed: request.seed ?? UInt64.random(in: 0...UInt64.max), stop: request.stop,
            presencePenalty: Float(request.presencePenalty), frequencyPenalty: Float(request.frequencyPenalty), logitBias: request.logitBias)
        return PreparedChat(model: model, prompt: prompt, parameters: parameters, constraint: constraint, logprobs: request.logprobs,
                            topLogprobs: request.topLogprobs)
    }

    /// Queue places a generation takes: one per 16 tokens of budget, never more than half the queue, so a long
    /// generation is admitted whenever the queue is at most half full instead of being refused forever.
    func chatWeight(_ chat: PreparedChat) -> Int { min(max(1, config.limits.maxQueue / 2), max(1, chat.parameters.maxTokens / 16)) }

    /// Generates on the engine thread, handing each piece to `emit`. `isCancelled` says that nobody waits for the
    /// answer any more (the client disconnected); it is asked before the prompt is evaluated and after every token,
    /// and generation then stops at once. Returns whether it was cancelled.
    @discardableResult
    func runChat(_ chat: PreparedChat, isCancelled: @escaping @Sendable () -> Bool,
                 emit: @escaping @Sendable (ChatPiece) -> Void) async throws -> Bool {
        let cancelled = try await engine.run(weight: chatWeight(chat)) { () throws -> Bool in
            if isCancelled() { return true }
            var processor = chat.constraint.map { SchemaLogitProcessor(constraint: $0) }
            let processors: [any LogitProcessor] = processor.map { [$0] } ?? []
            let tokenizer = chat.model.loaded.tokenizer
            var generator = try TokenGenerator(model: chat.model.loaded.model, tokenizer: tokenizer,
                                               prompt: chat.prompt, parameters: chat.parameters, processors: processors,
                                               prefixes: chat.model.loaded.prefixes)
            func entry(_ token: Int) -> (String, [UInt8]) {
                let bytes = tokenizer.bytes(of: token, special: false)
                return (String(decoding: bytes, as: UTF8.self), bytes)
            }
            while true {
                let alternatives = chat.topLogprobs > 0 ? generator.topLogProbabilities(chat.topLogprobs) : []
                guard let event = try generator.next() else { break }
                if isCancelled() { return true }
                switch event {
                case let .token(id, text, logprob):
                    processor?.didSample(id)
                    var logprobs: [TokenLogprob] = []
                    if chat.logprobs, !tokenizer.isEndOfGeneration(id) {
                        let (token, bytes) = entry(id)
                        logprobs = [TokenLogprob(token: token, logprob: logprob, bytes: bytes, top_logprobs: alternatives.map {
                            let (t, b) = entry($0.token)
                            return .init(token: t, logprob: $0.logProbability, bytes: b)
                        })]
                    }
                    if !text.isEmpty || !logprobs.isEmpty { emit(.text(text, logprobs: logprobs)) }
                case let .finished(summary):
                    var reason = summary.reason == .maxTokens || summary.reason == .contextFull ? "length" : "stop"
                    // A constrained value cut off by the budget is closed with its shortest completion, so it parses.
                    if let tail = processor?.completion, !tail.isEmpty {
                        emit(.text(String(decoding: tail, as: UTF8.self), logprobs: []))
                        reason = "length"
                    }
                    emit(.finished(reason: reason, promptTokens: summary.promptTokens, completionTokens: summary.tokens.count))
                }
            }
            return false
        }
        Counter(label: "microscale_chat_completions_total", dimensions: [("model", chat.model.name), ("outcome", cancelled ? "cancelled" : "completed")])
            .increment()
        return cancelled
    }
}
