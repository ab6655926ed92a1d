import Datasets
import Foundation
import Testing
import Tokenizers
@testable import Inference

/// The all-MiniLM-L6-v2 folder the set-up command downloads, loaded once.
enum MiniLM {
    static let directory = ProjectPaths.models + "/all-MiniLM-L6-v2"
    static let encoder: Result<BertEncoder, Error> = Result {
        guard FileManager.default.fileExists(atPath: directory + "/model.safetensors") else {
            throw InferenceError.invalidConfiguration("model missing at \(directory): run scripts/fetch-models.sh (or make test)")
        }
        return try BertEncoder(directory: directory, threads: 2)
    }
}

struct WordPieceCase: Decodable {
    var src: String?
    var row: Int?
    var bytes: Int?
    var text: String?
    var ids: [Int]
}

/// Rows of the shared datasets, read once per file.
final class DatasetRows: @unchecked Sendable {
    private var tables: [String: [String]] = [:]
    func text(_ src: String, _ row: Int) throws -> String {
        if tables[src] == nil { tables[src] = try CSVTable(path: SharedData.directory + "/" + src).column("text") }
        return tables[src]![row]
    }
}

@Suite(.serialized) struct EncoderParityTests {
    func fixture(_ name: String, _ ext: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures"))
    }

    /// WordPiece ids of 3,184 strings against the `tokenizers` package (Fixtures/README.md): untruncated, and cut
    /// at 128 (tokenizer.json's setting) and 256 (the model's sequence length) with `[SEP]` kept last.
    @Test func wordPieceMatchesReferenceIdForId() throws {
        let tokenizer = try MiniLM.encoder.get().tokenizer
        let rows = DatasetRows()
        var mismatches: [String] = []
        var checked = 0
        for line in try String(contentsOf: fixture("minilm-wordpiece", "jsonl"), encoding: .utf8).split(separator: "\n") {
            let c = try JSONDecoder().decode(WordPieceCase.self, from: Data(line.utf8))
            let text: String
            if let src = c.src, let row = c.row {
                text = try rows.text(src, row)
                #expect(text.utf8.count == c.bytes)
            } else {
                text = try #require(c.text)
            }
            let full = [tokenizer.classifier] + tokenizer.pieces(text) + [tokenizer.separator]
            if full != c.ids { mismatches.append("\(String(reflecting: text.prefix(50))): \(full.prefix(10)) vs \(c.ids.prefix(10))") }
            for limit in [128, 256] {
                let expected = c.ids.count <= limit ? c.ids : Array(c.ids.prefix(limit - 1)) + [tokenizer.separator]
                tokenizer.maxLength = limit
                if tokenizer.encode(text) != expected { mismatches.append("truncation \(limit): \(String(reflecting: text.prefix(50)))") }
            }
            checked += 1
        }
        tokenizer.maxLength = 256
        print("wordpiece parity: \(checked) strings, \(mismatches.count) mismatches")
        #expect(checked >= 3000)
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5).joined(separator: "\n"))")
    }

    /// Embeddings of 1,000 dataset strings against an independent float64 numpy forward pass: cosine > 0.9999 each,
    /// computed in batches of unequal lengths.
    @Test func embeddingsMatchReference() throws {
        let encoder = try MiniLM.encoder.get()
        let rows = DatasetRows()
        let index = try String(contentsOf: fixture("minilm-embeddings", "jsonl"), encoding: .utf8).split(separator: "\n")
        let texts = try index.map { line -> String in
            struct Entry: Decodable { var src: String; var row: Int }
            let c = try JSONDecoder().decode(Entry.self, from: Data(line.utf8))
            return try rows.text(c.src, c.row)
        }
        let reference = try Data(contentsOf: fixture("minilm-embeddings", "f16"))
        let d = encoder.dimension
        #expect(reference.count == texts.count * d * 2)
        var worst = 1.0
        var batchStart = 0
        // Batches of varying size, so texts of unequal length share a pass.
        let sizes = [1, 7, 32, 64, 3, 128]
        var s = 0
        while batchStart < texts.count {
            let end = min(texts.count, batchStart + sizes[s % sizes.count])
            let vectors = try encoder.embed(Array(texts[batchStart..<end]))
            for (offset, v) in vectors.enumerated() {
                let row = batchStart + offset
                var dot = 0.0, norm = 0.0
                for i in 0..<d {
                    let r = Double(Float(Float16(bitPattern: reference.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: (row * d + i) * 2, as: UInt16.self) })))
                    dot += r * Double(v[i]); norm += r * r
                }
                worst = min(worst, dot / norm.squareRoot())
            }
            batchStart = end
            s += 1
        }
        print("embedding parity: \(texts.count) strings, lowest cosine \(worst)")
        #expect(worst > 0.9999)
    }

    /// The same text gives the same vector alone or in a batch with longer and shorter texts.
    @Test func batchingDoesNotChangeEmbeddings() throws {
        let encoder = try MiniLM.encoder.get()
        let texts = ["card not arrived", "I would like to know why my transfer to another account was declined yesterday evening", "hi"]
        let batched = try encoder.embed(texts)
        for (text, vector) in zip(texts, batched) {
            let alone = try encoder.embed([text])[0]
            #expect(zip(alone, vector).map { abs($0 - $1) }.max()! < 1e-5)
        }
        let similar = zip(try encoder.embed(["How do I reset my card PIN?"])[0], try encoder.embed(["I forgot my PIN"])[0]).map(*).reduce(0, +)
        let unrelated = zip(try encoder.embed(["How do I reset my card PIN?"])[0], try encoder.embed(["The weather is nice today"])[0]).map(*).reduce(0, +)
        #expect(similar > 0.5 && unrelated < 0.1)
    }

    /// Both backbones honour the contract: one vector of `dimension` floats per text, deterministic.
    @Test func backbonesShareOneContract() throws {
        let backbones: [any Backbone] = [try MiniLM.encoder.get(), DecoderBackbone(try SmolLM2.loaded.get(), pooling: .mean),
                                         DecoderBackbone(try SmolLM2.loaded.get(), pooling: .last, layer: 20)]
        for b in backbones {
            let v = try b.embed(["transfer failed", "", "card lost"])
            #expect(v.count == 3 && v.allSatisfy { $0.count == b.dimension && $0.allSatisfy { $0.isFinite } })
            #expect(try b.embed(["transfer failed"])[0] == v[0])
            #expect(v[0] != v[2])
        }
        #expect(backbones[1].identifier != backbones[2].identifier)
    }

    @Test func longInputsAreTruncatedToTheSequenceLength() throws {
        let encoder = try MiniLM.encoder.get()
        let long = String(repeating: "refund ", count: 600)
        #expect(encoder.tokenizer.encode(long).count == 256)
        #expect(try encoder.embed([long])[0].count == 384)
        #expect(throws: InferenceError.contextFull(needed: 513, capacity: 512)) {
            try encoder.hiddenStates([[Int](repeating: 1000, count: 513)])
        }
    }
}
