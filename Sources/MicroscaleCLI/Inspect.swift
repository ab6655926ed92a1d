import ArgumentParser
import Foundation
import GGUF
import Tokenizers

/// `microscale inspect FILE`: what a GGUF file holds.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a GGUF file's architecture, hyper-parameters, tokenizer and tensor table.")

    @Argument(help: "Path of a .gguf file.")
    var file: String

    @Flag(help: "Print every metadata key, including long arrays in full.")
    var all = false

    func run() throws {
        let gguf = try GGUFFile(path: file)
        print("file: \(file)")
        print("GGUF version \(gguf.version), \(gguf.metadata.count) metadata keys, \(gguf.tensors.count) tensors, alignment \(gguf.alignment)")
        print("architecture: \(gguf.architecture ?? "(none)")")
        if let arch = gguf.architecture {
            let keys = ["context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
                        "attention.head_count_kv", "rope.freq_base", "rope.dimension_count", "attention.layer_norm_rms_epsilon"]
            let found = keys.compactMap { k in gguf.metadata["\(arch).\(k)"].map { "\(k) \(render($0, full: false))" } }
            if !found.isEmpty { print("hyper-parameters: " + found.joined(separator: ", ")) }
        }
        if let model = gguf.metadata["tokenizer.ggml.model"]?.stringValue {
            var facts = ["model \(model)"]
            if let pre = gguf.metadata["tokenizer.ggml.pre"]?.stringValue { facts.append("pre-tokenizer \(pre)") }
            if let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue { facts.append("\(tokens.count) tokens") }
            if let merges = gguf.metadata["tokenizer.ggml.merges"]?.arrayValue { facts.append("\(merges.count) merges") }
            for (key, label) in [("bos_token_id", "BOS"), ("eos_token_id", "EOS"), ("padding_token_id", "PAD")] {
                if let id = gguf.metadata["tokenizer.ggml.\(key)"]?.intValue { facts.append("\(label) \(id)") }
            }
            if let addBOS = gguf.metadata["tokenizer.ggml.add_bos_token"]?.boolValue { facts.append(addBOS ? "adds BOS" : "no BOS added") }
            if let template = gguf.metadata["tokenizer.chat_template"]?.stringValue {
                facts.append((try? ChatTemplate(template: template)).map { _ in "ChatML chat template" } ?? "chat template (not recognised)")
            }
            print("tokenizer: " + facts.joined(separator: ", "))
        }
        print("\nmetadata:")
        for key in gguf.metadataKeys {
            guard let value = gguf.metadata[key] else { continue }
            print("  \(key) = \(render(value, full: all))")
        }
        print("\ntensors:")
        let nameWidth = gguf.tensors.map(\.name.count).max() ?? 4
        print("  " + pad("name", nameWidth) + "  type   shape                 bytes")
        var counts: [String: Int] = [:]
        for t in gguf.tensors {
            counts[t.type.description, default: 0] += 1
            let shape = t.shape.map(String.init).joined(separator: " x ")
            print("  " + pad(t.name, nameWidth) + "  " + pad(t.type.description, 5) + "  " + pad(shape, 20) + "  \(t.byteCount)")
        }
        let summary = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        let parameters = gguf.tensors.reduce(0) { $0 + $1.elementCount }
        print("\n\(gguf.tensors.count) tensors (\(summary)), \(parameters) parameters, \(gguf.tensorBytes) bytes of tensor data")
    }

    private func render(_ value: GGUFValue, full: Bool) -> String {
        switch value {
        case let .string(s):
            let shown = full || s.count <= 120 ? s : String(s.prefix(120)) + "…"
            return "\"" + shown.replacingOccurrences(of: "\n", with: "\\n") + "\""
        case let .array(type, items):
            let shownItems = full ? items : Array(items.prefix(8))
            let body = shownItems.map { render($0, full: full) }.joined(separator: ", ")
            return "[\(type)] × \(items.count): [" + body + (shownItems.count < items.count ? ", …]" : "]")
        case let .float32(v): return "\(v)"
        case let .float64(v): return "\(v)"
        case let .bool(b): return "\(b)"
        default: return value.intValue.map(String.init) ?? value.typeName
        }
    }

    private func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }
}
