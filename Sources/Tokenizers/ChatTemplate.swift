/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable, Codable {
    /// `system`, `user` or `assistant`.
    public var role: String
    /// The message text.
    public var content: String

    /// A message.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A piece of a formatted conversation: the template's own markers, or text (roles and message contents).
public enum ChatSegment: Sendable, Equatable {
    /// A special token the template writes, such as `<|im_start|>`.
    case marker(String)
    /// Ordinary text; special-token text inside it is never read as a special token.
    case text(String)
}

/// Formats a conversation into the prompt text a chat model was trained on.
///
/// Jinja templates are not interpreted; the template a file carries is recognised by its markers, and the recognised
/// family is applied, with the default system prompt the template inserts when the conversation has none.
public struct ChatTemplate: Sendable, Equatable {
    /// Template families this engine applies.
    public enum Family: String, Sendable { case chatML }

    /// The recognised family.
    public let family: Family
    /// The system message the template inserts when the conversation does not start with one.
    public let defaultSystem: String?

    /// Recognises `template` (the text of `tokenizer.chat_template`).
    public init(template: String) throws {
        guard template.contains("<|im_start|>") && template.contains("<|im_end|>") else {
            throw TokenizerError.unsupportedChatTemplate("only ChatML templates (<|im_start|>…<|im_end|>) are recognised")
        }
        family = .chatML
        defaultSystem = Self.defaultSystemMessage(in: template)
    }

    /// The ChatML family with an explicit default system message.
    public init(chatMLWithDefaultSystem system: String?) {
        family = .chatML
        defaultSystem = system
    }

    /// The prompt for `messages` as text, ending with the opening of the assistant's turn when `addGenerationPrompt`.
    public func apply(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        segments(messages, addGenerationPrompt: addGenerationPrompt).map { segment in
            switch segment {
            case let .marker(m): return m
            case let .text(t): return t
            }
        }.joined()
    }

    /// The prompt as segments, so a tokenizer can make the markers special tokens and keep message text literal:
    /// a message that contains `<|im_end|>` cannot close its turn early.
    public func segments(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> [ChatSegment] {
        var out: [ChatSegment] = []
        func turn(_ role: String, _ content: String) {
            out += [.marker("<|im_start|>"), .text("\(role)\n\(content)"), .marker("<|im_end|>"), .text("\n")]
        }
        if let system = defaultSystem, messages.first?.role != "system" { turn("system", system) }
        for m in messages { turn(m.role, m.content) }
        if addGenerationPrompt { out += [.marker("<|im_start|>"), .text("assistant\n")] }
        return out
    }

    /// The literal system text a ChatML template writes when the first message is not a system message.
    static func defaultSystemMessage(in template: String) -> String? {
        // The newline after the role is written either as a Jinja escape (backslash, n) or as a real newline.
        guard template.contains("!= 'system'") else { return nil }
        guard let start = template.firstRange(of: "<|im_start|>system\\n") ?? template.firstRange(of: "<|im_start|>system\n"),
              let end = template[start.upperBound...].firstRange(of: "<|im_end|>") else { return nil }
        return String(template[start.upperBound..<end.lowerBound])
    }
}
