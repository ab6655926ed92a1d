import Datasets
import GGUF
import Testing
@testable import Safetensors

func sampleSafetensors() -> [UInt8] {
    var w = SafetensorsWriter()
    w.add("embeddings.weight", shape: [3, 2], floats: [1, 2, 3, 4, 5, 6])
    w.add("half", dtype: .f16, shape: [2], data: [0x00, 0x3C, 0x00, 0xC0])  // 1, -2
    w.add("brain", dtype: .bf16, shape: [1], data: [0x80, 0x3F])            // 1
    w.add("ids", dtype: .i64, shape: [2], data: [7, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
    return w.encoded()
}

@Suite struct SafetensorsTests {
    @Test func readsTensorsOfEachType() throws {
        let file = try SafetensorsFile(storage: .copying(sampleSafetensors()))
        #expect(file.tensors.count == 4)
        #expect(try file.floats("embeddings.weight", shape: [3, 2]) == [1, 2, 3, 4, 5, 6])
        #expect(try file.floats("half", shape: [2]) == [1, -2])
        #expect(try file.floats("brain", shape: [1]) == [1])
        #expect(try file.int64s("ids") == [7, -1])
        #expect(throws: SafetensorsError.unexpectedTensor(name: "half", expected: "shape [3]", found: "shape [2]")) {
            try file.floats("half", shape: [3])
        }
        #expect(throws: SafetensorsError.missingTensor("nope")) { try file.floats("nope", shape: [1]) }
    }

    @Test func rejectsCorruptFiles() {
        #expect(throws: SafetensorsError.truncated(needed: 8, available: 3)) { try SafetensorsFile(storage: .copying([1, 2, 3])) }
        var bytes = sampleSafetensors()
        bytes[0] = 0xFF; bytes[1] = 0xFF; bytes[2] = 0xFF; bytes[3] = 0xFF
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(storage: .copying(bytes)) }
        // Data cut short: the last tensor no longer fits.
        let short = Array(sampleSafetensors().dropLast(4))
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(storage: .copying(short)) }
        // Header that is not JSON.
        var junk: [UInt8] = []
        withUnsafeBytes(of: UInt64(4).littleEndian) { junk += $0 }
        junk += Array("{{{{".utf8)
        #expect(throws: SafetensorsError.invalidHeader("is not valid JSON")) { try SafetensorsFile(storage: .copying(junk)) }
    }

    @Test func rejectsOverlapsAndSizeMismatches() {
        func file(_ json: String, data: Int) -> [UInt8] {
            var out: [UInt8] = []
            withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { out += $0 }
            return out + Array(json.utf8) + [UInt8](repeating: 0, count: data)
        }
        let overlap = file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: 12)
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(storage: .copying(overlap)) }
        let mismatch = file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: 8)
        #expect(throws: SafetensorsError.invalidTensor(name: "a", reason: "8 bytes for [3] of F32")) { try SafetensorsFile(storage: .copying(mismatch)) }
        let negative = file(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: 8)
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(storage: .copying(negative)) }
        let badType = file(#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#, data: 8)
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(storage: .copying(badType)) }
    }

    /// Seeded mutation fuzzing of the header and data: a parsed file or a SafetensorsError, never a crash.
    @Test func seededMutationFuzz() {
        let seed = sampleSafetensors()
        var rng = SeededGenerator(seed: 99)
        func next() -> UInt64 { rng.next() }
        var parsed = 0, rejected = 0
        let iterations = 10_000
        for i in 0..<iterations {
            var bytes = seed
            for _ in 0..<(1 + Int(next() % 3)) {
                let p = Int(next() % UInt64(bytes.count))
                switch next() % 5 {
                case 0: bytes[p] ^= UInt8(1 << (next() % 8))
                case 1: bytes[p] = UInt8(truncatingIfNeeded: next())
                case 2: bytes[p] = Array("0123456789[]{},:\"-.eE".utf8)[Int(next() % 21)]
                case 3: bytes.insert(UInt8(truncatingIfNeeded: next()), at: p)
                default: bytes.removeSubrange(p..<bytes.count)
                }
                if bytes.isEmpty { bytes = [0] }
            }
            do {
                let f = try SafetensorsFile(storage: .copying(bytes))
                for t in f.tensors.values { #expect(f.dataOffset + t.offset + t.byteCount <= bytes.count) }
                parsed += 1
            } catch is SafetensorsError {
                rejected += 1
            } catch {
                Issue.record("mutation \(i): unexpected error \(error)")
            }
        }
        print("safetensors fuzz: \(iterations) mutated files, \(parsed) parsed, \(rejected) rejected with a typed error, 0 crashes")
        #expect(parsed + rejected == iterations && rejected > iterations / 2)
    }
}
