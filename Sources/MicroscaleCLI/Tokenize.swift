import ArgumentParser
import GGUF
import Tokenizers

/// `microscale tokenize --model FILE "text"`: token ids and pieces.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the token ids (and pieces) of a text under a GGUF model's tokenizer.")

    @Option(help: "Path of a .gguf model file.")
    var model: String

    @Flag(help: "Treat special-token text such as <|im_end|> as the special token.")
    var parseSpecial = false

    @Flag(help: "Print only the ids, space-separated.")
    var idsOnly = false

    @Argument(help: "The text to tokenize.")
    var text: String

    func run() throws {
        let tokenizer = try BPETokenizer(gguf: GGUFFile(path: model))
        let ids = tokenizer.encode(text, parseSpecial: parseSpecial)
        if idsOnly {
            print(ids.map(String.init).joined(separator: " "))
            return
        }
        for id in ids {
            print("\(id)\t\(String(reflecting: tokenizer.decode([id], special: true)))")
        }
        print("\(ids.count) tokens")
    }
}
