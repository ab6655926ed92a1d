/// What went wrong while building or using a tokenizer.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The model's tokenizer type is not implemented.
    case unsupportedModel(String)
    /// The pre-tokenizer named in the model is not implemented.
    case unsupportedPreTokenizer(String, supported: [String])
    /// The vocabulary or merges are malformed.
    case invalidVocabulary(String)
    /// A token id outside the vocabulary.
    case tokenOutOfRange(Int, vocabularySize: Int)
    /// The chat template is not one this engine can apply.
    case unsupportedChatTemplate(String)

    public var description: String {
        switch self {
        case let .unsupportedModel(name):
            return "tokenizer model '\(name)' is not supported (supported: gpt2 byte-level BPE)"
        case let .unsupportedPreTokenizer(name, supported):
            return "pre-tokenizer '\(name)' is not supported (supported: \(supported.joined(separator: ", ")))"
        case let .invalidVocabulary(reason):
            return "invalid tokenizer vocabulary: \(reason)"
        case let .tokenOutOfRange(id, size):
            return "token id \(id) is outside the vocabulary of \(size) tokens"
        case let .unsupportedChatTemplate(reason):
            return "unsupported chat template: \(reason); pass --raw and format the prompt yourself"
        }
    }
}
