import ArgumentParser

/// The `microscale` command line.
@main
struct Microscale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "microscale",
        abstract: "A small language model on the hot path: in-process GGUF inference, tokenizers and tools.",
        subcommands: [Inspect.self, Tokenize.self, Run.self, PerplexityCommand.self, Embed.self, Bench.self]
    )
}
