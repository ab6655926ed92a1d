import GGUF
import Tokenizers

/// A model ready to run: weights, tokenizer and chat template from one GGUF file.
public struct LoadedModel: Sendable {
    /// The parsed file (keeps the weights mapped).
    public let file: GGUFFile
    /// The network.
    public let model: any LanguageModel
    /// The tokenizer the file describes.
    public let tokenizer: BPETokenizer
    /// The recognised chat template, if the file carries one this engine can apply.
    public let chatTemplate: ChatTemplate?
    /// Prompt prefixes evaluated once and reused by later prompts that start with them.
    public let prefixes: PrefixCache

    /// Loads the model at `path`, running forward passes on `threads` threads.
    public init(path: String, threads: Int = 2) throws {
        let file = try GGUFFile(path: path)
        try self.init(file: file, threads: threads)
    }

    /// Builds the model described by `file`.
    public init(file: GGUFFile, threads: Int = 2) throws {
        self.file = file
        guard let arch = file.architecture else { throw GGUFError.missingKey("general.architecture") }
        guard let make = ModelRegistry.architectures[arch] else {
            throw InferenceError.unsupportedArchitecture(arch, supported: ModelRegistry.architectures.keys.sorted())
        }
        model = try make(file, threads)
        tokenizer = try BPETokenizer(gguf: file)
        chatTemplate = tokenizer.chatTemplate.flatMap { try? ChatTemplate(template: $0) }
        prefixes = PrefixCache(model: model)
    }

    /// The prompt tokens for a conversation through the file's chat template, message text kept literal (special-token
    /// text in a message is never read as a special token); a typed error when the file has no template this engine applies.
    public func chatTokens(_ messages: [ChatMessage]) throws -> [Int] {
        guard let template = chatTemplate else {
            throw TokenizerError.unsupportedChatTemplate(tokenizer.chatTemplate == nil ? "the model carries no chat template" : "the model's template is not ChatML")
        }
        return try tokenizer.encode(template.segments(messages))
    }
}

/// Maps `general.architecture` to the type that implements it.
public enum ModelRegistry {
    /// Constructors by architecture name.
    public static let architectures: [String: @Sendable (GGUFFile, Int) throws -> any LanguageModel] = [
        "llama": { try LlamaModel(file: $0, threads: $1) },
    ]
}
