import Datasets
import Foundation
import GGUF
import Testing
@testable import Inference

/// Seeded mutations of the real SmolLM2 header (metadata with 49,152 tokens and 48,900 merges, 272 tensor
/// descriptors): every outcome is a typed GGUFError, never a crash.
@Test func mutatedRealHeadersFailCleanly() throws {
    _ = try SmolLM2.loaded.get()
    let file = try GGUFFile(path: SmolLM2.path)
    // The header and the first 4 KiB of tensor data: tensors past that point must be reported out of bounds, so
    // every outcome is an error, and what is exercised is how each mutation is caught.
    let header = file.dataOffset
    let original = Array(UnsafeRawBufferPointer(start: file.storage.base, count: header + 4096))
    var rng = SeededGenerator(seed: 0xC0FFEE)
    func next() -> UInt64 { rng.next() }
    var rejected = 0, parsed = 0
    let iterations = 300
    for _ in 0..<iterations {
        var bytes = original
        for _ in 0..<(1 + Int(next() % 3)) {
            // Bias towards the first 64 KiB, where counts, lengths and types live.
            let position = Int(next() % UInt64(next() % 2 == 0 ? min(65536, bytes.count) : min(header, bytes.count)))
            switch next() % 3 {
            case 0: bytes[position] ^= UInt8(1 << (next() % 8))
            case 1:
                let end = min(bytes.count, position + 8)
                withUnsafeBytes(of: next().littleEndian) { bytes.replaceSubrange(position..<end, with: $0.prefix(end - position)) }
            default: bytes.removeSubrange(position..<bytes.count)
            }
            if bytes.isEmpty { bytes = [0] }
        }
        do {
            _ = try GGUFFile(storage: .copying(bytes))
            parsed += 1
        } catch is GGUFError {
            rejected += 1
        }
    }
    print("real-header fuzz: \(iterations) mutated headers, \(parsed) parsed, \(rejected) typed errors, 0 crashes")
    #expect(parsed + rejected == iterations)
    #expect(rejected == iterations)
}
