import ArgumentParser

/// The `microscale` command line.
@main
struct Microscale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "microscale",
        abstract: "A small language model on the hot path: calibrated decisions with certified thresholds, in-process inference, and the tools around them.",
        subcommands: [
            TrialCommand.self, Train.self, Decide.self, Eval.self, Run.self, Embed.self, Tokenize.self, Inspect.self,
            PerplexityCommand.self, Bench.self, Extract.self, Serve.self, DriftCommand.self, LoadTest.self,
            Distill.self, Retrain.self, Adapters.self, TeacherStubCommand.self, Simulate.self, BenchSchemas.self,
        ]
    )
}
