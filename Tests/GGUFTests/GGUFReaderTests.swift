import Datasets
import Testing
@testable import GGUF

/// A small but complete container: every metadata type, a nested array, tensors of several types.
func sampleFile() -> [UInt8] {
    var w = GGUFWriter()
    w.set("general.architecture", .string("llama"))
    w.set("u8", .uint8(200)); w.set("i8", .int8(-5)); w.set("u16", .uint16(60000)); w.set("i16", .int16(-300))
    w.set("u32", .uint32(4_000_000_000)); w.set("i32", .int32(-70000)); w.set("u64", .uint64(1 << 40)); w.set("i64", .int64(-(1 << 40)))
    w.set("f32", .float32(1.5)); w.set("f64", .float64(-2.25)); w.set("flag", .bool(true)); w.set("name", .string("héllo ✓"))
    w.set("tokens", .array(.string, [.string("a"), .string("bb"), .string("")]))
    w.set("nested", .array(.array, [.array(.int32, [.int32(1), .int32(2)]), .array(.int32, [])]))
    w.addTensor("norm", shape: [4], values: [1, 2, 3, 4])
    w.addTensor("q4", type: .q4_1, shape: [32, 2], data: [UInt8](repeating: 0x11, count: 40))
    w.addTensor("q8", type: .q8_0, shape: [64], data: [UInt8](repeating: 0x01, count: 68))
    return w.encoded()
}

@Suite struct GGUFReaderTests {
    @Test func readsEveryValueTypeAndTensor() throws {
        let file = try GGUFFile(storage: .copying(sampleFile()))
        #expect(file.version == 3)
        #expect(file.architecture == "llama")
        #expect(file.metadata["u8"] == .uint8(200))
        #expect(file.metadata["i8"] == .int8(-5))
        #expect(file.metadata["u16"] == .uint16(60000))
        #expect(file.metadata["i16"] == .int16(-300))
        #expect(file.metadata["u32"] == .uint32(4_000_000_000))
        #expect(file.metadata["i32"] == .int32(-70000))
        #expect(file.metadata["u64"] == .uint64(1 << 40))
        #expect(file.metadata["i64"] == .int64(-(1 << 40)))
        #expect(file.metadata["f32"] == .float32(1.5))
        #expect(file.metadata["f64"] == .float64(-2.25))
        #expect(file.metadata["flag"] == .bool(true))
        #expect(try file.string("name") == "héllo ✓")
        #expect(try file.strings("tokens") == ["a", "bb", ""])
        #expect(file.metadata["nested"]?.arrayValue?.count == 2)
        #expect(file.metadataKeys.first == "general.architecture")
        #expect(file.tensors.map(\.name) == ["norm", "q4", "q8"])
        let q4 = try #require(file.tensor(named: "q4"))
        #expect(q4.type == .q4_1 && q4.shape == [32, 2] && q4.byteCount == 40)
        #expect(q4.offset % file.alignment == 0)
        let norm = try #require(file.tensor(named: "norm"))
        let values = file.data(of: norm).bindMemory(to: Float.self)
        #expect(Array(values) == [1, 2, 3, 4])
        #expect(Array(file.data(of: try #require(file.tensor(named: "q8")))) == [UInt8](repeating: 1, count: 68))
    }

    @Test func typedAccessorsNameTheProblem() throws {
        let file = try GGUFFile(storage: .copying(sampleFile()))
        #expect(throws: GGUFError.missingKey("absent")) { try file.int("absent") }
        #expect(throws: GGUFError.wrongType(key: "name", expected: "integer", found: "string")) { try file.int("name") }
    }

    @Test func rejectsBadMagicAndVersions() {
        var bytes = sampleFile()
        bytes[0] = 0x47; bytes[1] = 0x47; bytes[2] = 0x4D; bytes[3] = 0x4C
        #expect(throws: GGUFError.badMagic(found: 0x4C4D_4747)) { try GGUFFile(storage: .copying(bytes)) }
        for version: UInt8 in [1, 4] {
            var v = sampleFile()
            v[4] = version
            #expect(throws: GGUFError.unsupportedVersion(UInt32(version))) { try GGUFFile(storage: .copying(v)) }
        }
        #expect(throws: GGUFError.truncated(offset: 0, needed: 4, what: "magic")) { try GGUFFile(storage: .copying([0x47])) }
    }

    @Test func everyTruncationIsATypedError() throws {
        let bytes = sampleFile()
        // Padding after the last tensor may go; any cut before the end of its data must be caught.
        let file = try GGUFFile(storage: .copying(bytes))
        let end = file.tensors.map { file.dataOffset + $0.offset + $0.byteCount }.max()!
        for length in 0..<end {
            do {
                _ = try GGUFFile(storage: .copying(bytes[0..<length]))
                Issue.record("a file cut to \(length) of \(bytes.count) bytes parsed")
            } catch is GGUFError {
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }

    @Test func rejectsHostileCountsAndOffsets() throws {
        // Metadata count of 2^60: cannot fit in the file.
        var w = GGUFWriter()
        w.set("k", .uint32(1))
        var bytes = w.encoded()
        withUnsafeBytes(of: UInt64(1 << 60).littleEndian) { bytes.replaceSubrange(16..<24, with: $0) }
        #expect(throws: GGUFError.self) { try GGUFFile(storage: .copying(bytes)) }

        // A string length far past the end.
        bytes = w.encoded()
        withUnsafeBytes(of: UInt64.max.littleEndian) { bytes.replaceSubrange(24..<32, with: $0) }
        #expect(throws: GGUFError.self) { try GGUFFile(storage: .copying(bytes)) }

        // A tensor whose offset points past the data.
        var t = GGUFWriter()
        t.addTensor("x", shape: [4], values: [1, 2, 3, 4])
        bytes = t.encoded()
        let offsetField = 24 + 8 + 1 + 4 + 8 + 4  // header, name length + "x", dims, one dim, type
        withUnsafeBytes(of: UInt64(1 << 20).littleEndian) { bytes.replaceSubrange(offsetField..<(offsetField + 8), with: $0) }
        #expect(throws: GGUFError.tensorOutOfBounds(name: "x", offset: 1 << 20, size: 16, dataSize: 32)) {
            try GGUFFile(storage: .copying(bytes))
        }

        // Dimensions whose product overflows.
        bytes = t.encoded()
        withUnsafeBytes(of: UInt64(Int32.max).littleEndian) { bytes.replaceSubrange(37..<45, with: $0) }
        #expect(throws: GGUFError.self) { try GGUFFile(storage: .copying(bytes)) }
    }

    @Test func rejectsDuplicatesAndBadAlignment() {
        var w = GGUFWriter()
        w.set("a", .uint8(1)); w.set("a", .uint8(2))
        #expect(throws: GGUFError.duplicateKey("a")) { try GGUFFile(storage: .copying(w.encoded())) }
        var a = GGUFWriter()
        a.set("general.alignment", .uint32(24))
        #expect(throws: GGUFError.invalidAlignment(24)) { try GGUFFile(storage: .copying(a.encoded())) }
    }

    /// Seeded mutation fuzzing: flip, overwrite, insert, delete and splice bytes of valid files (and write extreme
    /// integers into length fields); every outcome must be a parsed file or a GGUFError, never a crash or overread
    /// (the reader only touches bytes through bounds-checked loads of the copied buffer).
    @Test func seededMutationFuzz() {
        let seeds = [sampleFile(), smallModelLikeFile()]
        var rng = SeededGenerator(seed: 0x5EED)
        var parsed = 0, rejected = 0
        let iterations = 20_000
        for i in 0..<iterations {
            var bytes = seeds[i % seeds.count]
            let mutations = 1 + Int(rng.next() % 4)
            for _ in 0..<mutations {
                let position = Int(rng.next() % UInt64(max(bytes.count, 1)))
                switch rng.next() % 6 {
                case 0: bytes[position] ^= UInt8(1 << (rng.next() % 8))
                case 1: bytes[position] = UInt8(truncatingIfNeeded: rng.next())
                case 2: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: position)
                case 3: bytes.remove(at: position)
                case 4:
                    // An extreme 64-bit value over a (possible) length or count field.
                    let extremes: [UInt64] = [0, 1, UInt64.max, UInt64(Int64.max), 1 << 32, 1 << 62, UInt64(UInt32.max)]
                    let value = extremes[Int(rng.next() % UInt64(extremes.count))]
                    let end = min(bytes.count, position + 8)
                    withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(position..<end, with: $0.prefix(end - position)) }
                default: bytes.removeSubrange(position..<bytes.count)
                }
                if bytes.isEmpty { bytes = [0] }
            }
            do {
                let file = try GGUFFile(storage: .copying(bytes))
                // A file that parses must describe tensors inside it.
                for t in file.tensors {
                    #expect(file.dataOffset + t.offset + t.byteCount <= file.storage.count)
                }
                parsed += 1
            } catch is GGUFError {
                rejected += 1
            } catch {
                Issue.record("mutation \(i) threw a non-GGUF error: \(error)")
            }
        }
        print("GGUF fuzz: \(iterations) mutated files, \(parsed) parsed, \(rejected) rejected with a typed error, 0 crashes")
        #expect(parsed + rejected == iterations)
        #expect(rejected > iterations / 2, "most mutations should be caught (\(rejected) of \(iterations))")
    }
}

/// A file shaped like a real model header: tokenizer arrays and many tensors.
func smallModelLikeFile() -> [UInt8] {
    var w = GGUFWriter()
    w.set("general.architecture", .string("llama"))
    w.set("llama.block_count", .uint32(2))
    w.set("tokenizer.ggml.tokens", .array(.string, (0..<50).map { .string("tok\($0)") }))
    w.set("tokenizer.ggml.token_type", .array(.int32, (0..<50).map { _ in .int32(1) }))
    w.set("general.alignment", .uint32(64))
    w.alignment = 64
    for i in 0..<4 { w.addTensor("blk.\(i).w", type: .q8_0, shape: [32, 2], data: [UInt8](repeating: UInt8(i), count: 68)) }
    return w.encoded()
}
