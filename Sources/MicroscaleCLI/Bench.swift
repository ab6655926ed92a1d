import ArgumentParser
import Foundation
import Datasets
import Inference

/// `microscale bench`: prompt-processing and generation throughput, like llama-bench.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prompt (ppN) and generation (tgN) tokens per second, mean ± standard deviation over repetitions.")

    @Option(help: "Path of a .gguf model file (generation benchmark).")
    var model: String?

    @Option(help: "A backbone to benchmark instead (minilm, bert:DIR, gguf:FILE): embeddings per second and latency.")
    var backbone: String?

    @Option(help: "Batch sizes for the backbone benchmark, comma-separated.")
    var batch = "1,32"

    @Option(help: "Texts for the backbone benchmark (banking77 queries from the shared data).")
    var texts = 320

    @Option(name: [.customShort("p"), .long], help: "Prompt lengths, comma-separated (0 skips).")
    var prompt = "32,128,512"

    @Option(name: [.customShort("n"), .long], help: "Generated lengths, comma-separated (0 skips).")
    var generate = "128"

    @Option(name: [.customShort("t"), .long], help: "Thread counts, comma-separated.")
    var threads = "2"

    @Option(name: [.customShort("r"), .long], help: "Repetitions per test.")
    var repetitions = 5

    @Option(help: "With --model and --input: a shared prefix of this many tokens, evaluated once and reused (prefix KV reuse).")
    var prefix: Int?

    @Option(help: "Tokens of each request after the shared --prefix.")
    var input = 20

    @Option(help: "With --model: independent sequences decoded together in batched passes, comma-separated (e.g. 1,4,16); -n tokens each.")
    var sequences: String?

    @Option(help: "With --model: an extraction task file; measures schema compile time, the constraint's cost per token and validity with and without it.")
    var structured: String?

    @Option(help: "Inputs for --structured (shared datasets, the example messages and adversarial text).")
    var inputs = 1000

    @Flag(help: "With --model: exact label scoring on Banking77's 77 labels, token trie against separate evaluations.")
    var labels = false

    @Option(help: "Prompts for --labels.")
    var labelPrompts = 20

    func run() throws {
        if let backbone { return try benchmarkBackbone(backbone) }
        if let structured, let model {
            return try StructuredBench.run(model: model, taskFile: structured, inputs: inputs, threads: try list(threads).first ?? 2, seed: 42)
        }
        if labels, let model {
            return try StructuredBench.labels(model: model, threads: try list(threads).first ?? 2, prompts: labelPrompts, seed: 42)
        }
        guard let model else { throw ValidationError("give --model FILE (generation) or --backbone NAME (embeddings)") }
        if let prefix { return try benchmarkPrefix(model: model, prefix: prefix) }
        if let sequences { return try benchmarkSequences(model: model, counts: try list(sequences)) }
        let prompts = try list(prompt), lengths = try list(generate), threadCounts = try list(threads)
        print("| model | size | threads | test | t/s |")
        print("|---|---|---|---|---|")
        let name = URL(fileURLWithPath: model).lastPathComponent
        for t in threadCounts where t > 0 {
            let loaded = try LoadedModel(path: model, threads: t)
            let size = loaded.file.storage.count
            var rng = SeededGenerator(seed: 42)
            let vocabulary = loaded.model.vocabularySize
            for (kind, n) in prompts.filter({ $0 > 0 }).map({ ("pp", $0) }) + lengths.filter({ $0 > 0 }).map({ ("tg", $0) }) {
                let tokens = (0..<n).map { _ in Int(rng.next() % UInt64(vocabulary)) }
                var rates: [Double] = []
                for r in 0...repetitions {
                    let cache = loaded.model.newCache(capacity: n)
                    let start = ContinuousClock.now
                    if kind == "pp" {
                        _ = try loaded.model.forward(tokens, cache: cache, outputs: .last)
                    } else {
                        for token in tokens { _ = try loaded.model.forward([token], cache: cache, outputs: .last) }
                    }
                    let elapsed = ContinuousClock.now - start
                    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                    if r > 0 { rates.append(Double(n) / seconds) }  // the first run warms caches and pages
                }
                let mean = rates.reduce(0, +) / Double(rates.count)
                let sd = rates.count > 1 ? (rates.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(rates.count - 1)).squareRoot() : 0
                print(String(format: "| %@ | %.1f MiB | %d | %@%d | %.2f ± %.2f |", name, Double(size) / 1_048_576, t, kind, n, mean, sd))
            }
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(String(format: "peak resident memory: %.1f MB", Double(usage.ru_maxrss) / 1024))
    }

    /// Embeddings per second at each batch size, and single-query latency percentiles, over banking77 queries.
    private func benchmarkBackbone(_ spec: String) throws {
        let model = try Backbones.make(spec, threads: try list(threads).first ?? 2)
        let all = try CSVTable(path: SharedData.directory + "/banking77/train.csv").column("text")
        let queries = stride(from: 0, to: all.count, by: max(1, all.count / texts)).prefix(texts).map { all[$0] }
        if let bert = model as? BertEncoder {
            let lengths = queries.map { bert.tokenizer.encode($0).count }
            print(String(format: "%d banking77 queries, %.1f tokens on average with [CLS] and [SEP]", queries.count, Double(lengths.reduce(0, +)) / Double(lengths.count)))
        }
        _ = try model.embed(Array(queries.prefix(8)))  // warm up
        print("| backbone | batch | embeddings/s | p50 ms per call | p99 ms per call |")
        print("|---|---|---|---|---|")
        for b in try list(batch) where b > 0 {
            var latencies: [Double] = []
            let start = ContinuousClock.now
            for r in 0..<repetitions {
                var i = 0
                while i < queries.count {
                    let chunk = Array(queries[i..<min(queries.count, i + b)])
                    let t0 = ContinuousClock.now
                    _ = try model.embed(chunk)
                    if r > 0 || repetitions == 1 { latencies.append(seconds(ContinuousClock.now - t0) * 1000) }
                    i += b
                }
            }
            let total = seconds(ContinuousClock.now - start)
            latencies.sort()
            let p = { (q: Double) in latencies[min(latencies.count - 1, Int(q * Double(latencies.count)))] }
            print(String(format: "| %@ | %d | %.1f | %.2f | %.2f |", model.identifier, b, Double(queries.count * repetitions) / total, p(0.5), p(0.99)))
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(String(format: "peak resident memory: %.1f MB", Double(usage.ru_maxrss) / 1024))
    }

    /// A request of `prefix + input` tokens evaluated from nothing, against the same request starting from the stored
    /// prefix (cache copy plus the input alone). Times to the first scores, mean over repetitions.
    private func benchmarkPrefix(model path: String, prefix: Int) throws {
        guard prefix > 0, input > 0 else { throw ValidationError("--prefix and --input must be positive") }
        let threadCount = try list(threads).first ?? 2
        let loaded = try LoadedModel(path: path, threads: threadCount)
        var rng = SeededGenerator(seed: 42)
        let vocabulary = loaded.model.vocabularySize
        let shared = (0..<prefix).map { _ in Int(rng.next() % UInt64(vocabulary)) }
        let prefixes = PrefixCache(model: loaded.model)
        try prefixes.store(prefix: shared)
        var full: [Double] = [], reused: [Double] = []
        for r in 0...repetitions {
            let request = shared + (0..<input).map { _ in Int(rng.next() % UInt64(vocabulary)) }
            var start = ContinuousClock.now
            _ = try loaded.model.forward(request, cache: loaded.model.newCache(capacity: request.count), outputs: .last)
            let a = seconds(ContinuousClock.now - start)
            start = ContinuousClock.now
            let cache = try prefixes.cache(for: request, capacity: request.count)
            _ = try loaded.model.forward(Array(request[cache.count...]), cache: cache, outputs: .last)
            let b = seconds(ContinuousClock.now - start)
            guard cache.count == request.count else { throw ValidationError("the prefix was not reused") }
            if r > 0 { full.append(a * 1000); reused.append(b * 1000) }
        }
        let mean = { (v: [Double]) in v.reduce(0, +) / Double(v.count) }
        print("| threads | request | from nothing (ms) | from the stored prefix (ms) | speed-up |")
        print("|---|---|---|---|---|")
        print(String(format: "| %d | %d-token prefix + %d-token input | %.2f | %.2f | %.1f× |", threadCount, prefix, input,
                     mean(full), mean(reused), mean(full) / mean(reused)))
    }

    /// Tokens per second decoding `counts` independent sequences together (one batched pass per step), each after
    /// its own 16-token prompt.
    private func benchmarkSequences(model path: String, counts: [Int]) throws {
        let threadCount = try list(threads).first ?? 2
        let steps = try list(generate).first ?? 128
        let loaded = try LoadedModel(path: path, threads: threadCount)
        guard let llama = loaded.model as? LlamaModel else { throw ValidationError("batched decoding needs a llama-architecture model") }
        var rng = SeededGenerator(seed: 42)
        let vocabulary = loaded.model.vocabularySize
        print("| threads | sequences | tokens per sequence | t/s (all sequences) | t/s per sequence |")
        print("|---|---|---|---|---|")
        for count in counts where count > 0 {
            var rates: [Double] = []
            for r in 0...repetitions {
                let caches = (0..<count).map { _ in llama.newCache(capacity: 16 + steps) }
                for cache in caches {
                    _ = try llama.forward((0..<16).map { _ in Int(rng.next() % UInt64(vocabulary)) }, cache: cache, outputs: .last)
                }
                var next = (0..<count).map { _ in Int(rng.next() % UInt64(vocabulary)) }
                let start = ContinuousClock.now
                for _ in 0..<steps {
                    let scores = try llama.forward(batch: zip(next, caches).map { ([$0], $1) })
                    next = scores.map { row in row.indices.max { row[$0] < row[$1] }! }
                }
                if r > 0 { rates.append(Double(count * steps) / seconds(ContinuousClock.now - start)) }
            }
            let mean = rates.reduce(0, +) / Double(rates.count)
            print(String(format: "| %d | %d | %d | %.1f | %.1f |", threadCount, count, steps, mean, mean / Double(count)))
        }
    }

    private func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

    private func list(_ text: String) throws -> [Int] {
        try text.split(separator: ",").map {
            guard let v = Int($0.trimmingCharacters(in: .whitespaces)), v >= 0 else { throw ValidationError("'\(text)' is not a comma-separated list of counts") }
            return v
        }
    }
}
