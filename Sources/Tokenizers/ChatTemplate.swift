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

    /// The prompt for `messages`, ending with the opening of the assistant's turn when `addGenerationPrompt`.
    public func apply(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        var out = ""
        if let system = defaultSystem, messages.first?.role != "system" {
            out += "<|im_start|>system\n\(system)<|im_end|>\n"
        }
        for m in messages {
            out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n"
        }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
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
