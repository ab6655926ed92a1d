import Foundation
import Inference
import StructuredOutput
import Tokenizers

/// An OpenAI chat-completions request (the members Microscale uses; others are ignored, as OpenAI clients send many).
struct ChatRequest: Decodable, Sendable {
    struct Message: Decodable, Sendable {
        var role: String
        var content: String

        struct Part: Decodable { var type: String; var text: String? }
        enum CodingKeys: String, CodingKey { case role, content }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            role = try c.decode(String.self, forKey: .role)
            if let s = try? c.decode(String.self, forKey: .content) {
                content = s
            } else if let parts = try? c.decode([Part].self, forKey: .content) {
                guard parts.allSatisfy({ $0.type == "text" }) else {
                    throw APIError.invalid("only text content parts are supported", param: "messages")
                }
                content = parts.compactMap(\.text).joined()
            } else if try c.decodeNil(forKey: .content) {
                content = ""
            } else {
                throw APIError.invalid("a message's content must be a string or a list of text parts", param: "messages")
            }
        }
    }

    struct ResponseFormat: Decodable, Sendable {
        struct JSONSchemaFormat: Decodable, Sendable { var name: String?; var schema: JSONValue?; var strict: Bool? }
        var type: String
        var json_schema: JSONSchemaFormat?
    }

    enum Stop: Decodable, Sendable {
        case one(String), many([String])
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .one(s) } else { self = .many(try c.decode([String].self)) }
        }
        var list: [String] { switch self { case let .one(s): [s]; case let .many(l): l } }
    }

    var model: String
    var messages: [Message]
    var max_tokens: Int?
    var max_completion_tokens: Int?
    var temperature: Double?
    var top_p: Double?
    var seed: UInt64?
    var stop: Stop?
    var stream: Bool?
    var n: Int?
    var response_format: ResponseFormat?
}

/// One piece of a completion as it is produced.
enum ChatPiece: Sendable {
    case text(String)
    case finished(reason: String, promptTokens: Int, completionTokens: Int)
}

extension CascadeService {
    /// A validated chat request ready for the engine.
    struct PreparedChat: Sendable {
        var model: ServedModel
        var prompt: [Int]
        var parameters: GenerateParameters
        var constraint: TokenConstraint?
    }

    /// Checks a chat request against the served models and the limits, and tokenizes its prompt.
    func prepareChat(_ request: ChatRequest) throws -> PreparedChat {
        guard let model = chatModels[request.model] else {
            throw APIError(statusCode: 404, type: "not_found", message: "no model '\(request.model)'; models: \(chatModels.keys.sorted().joined(separator: ", "))",
                           param: "model")
        }
        guard !request.messages.isEmpty else { throw APIError.invalid("'messages' is empty", param: "messages") }
        if let n = request.n, n != 1 { throw APIError.invalid("only n = 1 is supported", param: "n") }
        for m in request.messages where !["system", "user", "assistant", "developer"].contains(m.role) {
            throw APIError.invalid("unsupported role '\(m.role)'", param: "messages")
        }
        let maxTokens = request.max_completion_tokens ?? request.max_tokens ?? min(256, config.limits.maxCompletionTokens)
        guard maxTokens >= 1, maxTokens <= config.limits.maxCompletionTokens else {
            throw APIError.invalid("max_tokens must be between 1 and \(config.limits.maxCompletionTokens)", param: "max_tokens")
        }
        let temperature = request.temperature ?? 1
        guard (0...2).contains(temperature) else { throw APIError.invalid("temperature must be between 0 and 2", param: "temperature") }
        let topP = request.top_p ?? 1
        guard topP > 0, topP <= 1 else { throw APIError.invalid("top_p must be in (0, 1]", param: "top_p") }
        let messages = request.messages.map { ChatMessage(role: $0.role == "developer" ? "system" : $0.role, content: $0.content) }
        let prompt: [Int]
        do { prompt = try model.loaded.chatTokens(messages) } catch {
            throw APIError.invalid("the messages cannot be formatted for \(request.model): \(error)", param: "messages")
        }
        guard prompt.count <= config.limits.maxPromptTokens else {
            throw APIError.invalid("the prompt has \(prompt.count) tokens; the limit is \(config.limits.maxPromptTokens)", param: "messages")
        }
        var constraint: TokenConstraint?
        switch request.response_format?.type ?? "text" {
        case "text": break
        case "json_schema":
            guard let document = request.response_format?.json_schema?.schema else {
                throw APIError.invalid("response_format.json_schema.schema is missing", param: "response_format")
            }
            do { constraint = model.constraints.constraint(for: try Schema(document: document)) } catch let e as SchemaError {
                throw APIError.invalid("the schema is not supported: \(e.description)", param: "response_format")
            }
        case let other:
            throw APIError.invalid("response_format type '\(other)' is not supported; use text or json_schema", param: "response_format")
        }
        let parameters = GenerateParameters(maxTokens: maxTokens, temperature: Float(temperature), topP: Float(topP),
                                            seed: request.seed ?? UInt64.random(in: 0...UInt64.max), stop: request.stop?.list ?? [])
        return PreparedChat(model: model, prompt: prompt, parameters: parameters, constraint: constraint)
    }

    /// Generates on the engine thread, handing each piece to `emit` (which returns false when the client is gone).
    func runChat(_ chat: PreparedChat, emit: @escaping @Sendable (ChatPiece) -> Bool) async throws {
        let weight = max(1, chat.parameters.maxTokens / 16)
        try await engine.run(weight: weight) {
            var processor = chat.constraint.map { SchemaLogitProcessor(constraint: $0) }
            let processors: [any LogitProcessor] = processor.map { [$0] } ?? []
            var generator = try TokenGenerator(model: chat.model.loaded.model, tokenizer: chat.model.loaded.tokenizer,
                                               prompt: chat.prompt, parameters: chat.parameters, processors: processors,
                                               prefixes: chat.model.loaded.prefixes)
            while let event = try generator.next() {
                switch event {
                case let .token(id, text, _):
                    processor?.didSample(id)
                    if !text.isEmpty, !emit(.text(text)) { return }
                case let .finished(summary):
                    var reason = summary.reason == .maxTokens || summary.reason == .contextFull ? "length" : "stop"
                    // A constrained value cut off by the budget is closed with its shortest completion, so it parses.
                    if let tail = processor?.completion, !tail.isEmpty {
                        _ = emit(.text(String(decoding: tail, as: UTF8.self)))
                        reason = "length"
                    }
                    _ = emit(.finished(reason: reason, promptTokens: summary.promptTokens, completionTokens: summary.tokens.count))
                }
            }
        }
    }
}
