import ArgumentParser
import Foundation
import Inference

/// `microscale perplexity --model FILE --file TEXT --ctx 512`.
struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a text file, by llama.cpp's chunking rule (score the second half of each chunk).")

    @Option(help: "Path of a .gguf model file.")
    var model: String

    @Option(help: "Path of a UTF-8 text file.")
    var file: String

    @Option(help: "Chunk (context) size in tokens.")
    var ctx = 512

    @Option(name: [.customShort("t"), .long], help: "Threads.")
    var threads = 2

    func run() throws {
        let loaded = try LoadedModel(path: model, threads: threads)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("cannot read \(file)")
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw ValidationError("\(file) is not valid UTF-8")
        }
        let tokens = loaded.tokenizer.encode(text, parseSpecial: false)
        print("\(tokens.count) tokens, \(tokens.count / ctx) chunks of \(ctx)")
        let start = ContinuousClock.now
        let bos = loaded.tokenizer.addsBOS ? loaded.tokenizer.bosToken : nil
        let result = try Perplexity.evaluate(loaded.model, tokens: tokens, context: ctx, bos: bos) { done, total in
            FileHandle.standardError.write(Data("[\(done)/\(total)]".utf8))
        }
        let seconds = Double((ContinuousClock.now - start).components.seconds)
        print("")
        print(result.runningEstimates.enumerated().map { String(format: "[%d]%.4f", $0.offset + 1, $0.element) }.joined(separator: ","))
        print(String(format: "Final estimate: PPL = %.4f +/- %.5f (%d tokens scored, %.0f s)", result.value, result.standardError, result.scoredTokens, seconds))
    }
}
