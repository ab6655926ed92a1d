import ArgumentParser
import Foundation
import Inference
import Tokenizers

/// `microscale run --model FILE "prompt"`: stream a model's answer.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate text from a GGUF model, streaming tokens as they come.")

    @Option(help: "Path of a .gguf model file.")
    var model: String

    @Flag(help: "Send the prompt as it is, without the model's chat template.")
    var raw = false

    @Flag(help: "With --raw, read special-token text such as <|im_start|> in the prompt as those tokens (never do this with untrusted text).")
    var parseSpecial = false

    @Option(help: "System message (chat mode only; defaults to the template's own; --system \"\" sends an empty one, which suits SmolLM2-135M better).")
    var system: String?

    @Option(name: [.customShort("n"), .long], help: "Most tokens to generate.")
    var maxTokens = 256

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(help: "Top-k filter (0 = off).")
    var topK = 0

    @Option(help: "Top-p filter (1 = off).")
    var topP: Float = 1

    @Option(help: "Random seed for sampling.")
    var seed: UInt64 = 0

    @Option(help: "Stop before this string (repeatable). Backslash escapes are read: \\n, \\t, \\r, \\\\, \\u{HEX}; so --stop '\\n\\n' stops at a blank line.")
    var stop: [String] = []

    @Option(name: [.customShort("t"), .long], help: "Threads.")
    var threads = 2

    @Flag(help: "Print the generated token ids after the text.")
    var showTokens = false

    @Argument(help: "The prompt.")
    var prompt: String

    func run() async throws {
        let loaded = try LoadedModel(path: model, threads: threads)
        let tokens: [Int]
        if raw {
            tokens = loaded.tokenizer.encode(prompt, parseSpecial: parseSpecial)
        } else {
            var messages = [ChatMessage(role: "user", content: prompt)]
            if let system { messages.insert(ChatMessage(role: "system", content: system), at: 0) }
            tokens = try loaded.chatTokens(messages)
        }
        let parameters = GenerateParameters(maxTokens: maxTokens, temperature: temperature, topK: topK, topP: topP,
                                            seed: seed, stop: try stop.map(unescape))
        for try await event in generate(loaded.model, tokenizer: loaded.tokenizer, prompt: tokens, parameters: parameters) {
            switch event {
            case let .token(_, piece, _):
                FileHandle.standardOutput.write(Data(piece.utf8))
            case let .finished(summary):
                print("")
                if showTokens { print("tokens: " + summary.tokens.map(String.init).joined(separator: " ")) }
                let rate = summary.tokens.count > 1 ? Double(summary.tokens.count - 1) / summary.generationSeconds : 0
                let promptRate = Double(summary.promptTokens) / summary.promptSeconds
                FileHandle.standardError.write(Data(String(format: "[%d prompt tokens at %.1f t/s, %d generated at %.1f t/s, stop: %@]\n",
                    summary.promptTokens, promptRate, summary.tokens.count, rate, String(describing: summary.reason)).utf8))
            }
        }
    }
}

/// A command-line string with backslash escapes read (`\n`, `\t`, `\r`, `\\`, `\u{HEX}`): shells pass `"\n"` as a
/// backslash and an n. An unknown escape is an error naming it.
func unescape(_ text: String) throws -> String {
    var out = ""
    var scalars = text.unicodeScalars.makeIterator()
    while let c = scalars.next() {
        guard c == "\\" else { out.unicodeScalars.append(c); continue }
        switch scalars.next() {
        case "n": out += "\n"
        case "t": out += "\t"
        case "r": out += "\r"
        case "\\": out += "\\"
        case "u":
            guard scalars.next() == "{" else { throw ValidationError("\\u needs braces: \\u{HEX} in '\(text)'") }
            var hex = ""
            var closed = false
            while let h = scalars.next() {
                if h == "}" { closed = true; break }
                hex.unicodeScalars.append(h)
            }
            guard closed else { throw ValidationError("\\u{\(hex) has no closing brace in '\(text)'") }
            guard let value = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(value) else {
                throw ValidationError("\\u{\(hex)} is not a Unicode scalar in '\(text)'")
            }
            out.unicodeScalars.append(scalar)
        case let other?: throw ValidationError("unknown escape \\\(other) in '\(text)' (known: \\n \\t \\r \\\\ \\u{HEX})")
        case nil: throw ValidationError("'\(text)' ends with a lone backslash")
        }
    }
    return out
}
