import CKernels
import Datasets
import Foundation
import Testing
@testable import Kernels

/// Both kernel paths compute the same numbers: bit-identical where the arithmetic is exact (quantization, half
/// conversion), equal up to float summation order otherwise.
@Suite(.serialized) struct KernelPathTests {
    func onEachPath<T>(_ body: () -> T) -> [T] {
        let saved = KernelPath.current
        defer { KernelPath.current = saved }
        return KernelPath.allCases.filter { $0.rawValue <= KernelPath.best.rawValue }.map { path in
            KernelPath.current = path
            return body()
        }
    }

    @Test func halfConversionIsIdenticalAndExact() {
        // Every half-precision pattern, through both paths.
        let all = (0...UInt16.max).map { $0 }
        let floats = onEachPath { () -> [Float] in
            var out = [Float](repeating: 0, count: all.count)
            Half.decode(all, &out, count: all.count)
            return out
        }
        for f in floats.dropFirst() {
            #expect(zip(f, floats[0]).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) })
        }
        #expect(floats[0][0x3C00] == 1 && floats[0][0xC000] == -2 && floats[0][0x0001] == Float(Float16(bitPattern: 1)))
        // Floats to half: round to nearest even, overflow to infinity, subnormals.
        var rng = SeededGenerator(seed: 11)
        var samples: [Float] = [0, -0, 1, 65504, 65520, 1e-8, 6e-8, 3e-5, 1.0009765625, .infinity, -.infinity]
        for _ in 0..<20000 { samples.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0xC7FF_FFFF)) }
        let halves = onEachPath { () -> [UInt16] in
            var out = [UInt16](repeating: 0, count: samples.count)
            Half.encode(samples, &out, count: samples.count)
            return out
        }
        for h in halves.dropFirst() { #expect(h == halves[0]) }
        for (x, h) in zip(samples, halves[0]) where !x.isNaN {
            #expect(h == Float16(x).bitPattern, "\(x)")
        }
    }

    @Test func quantizationIsIdentical() {
        var rng = SeededGenerator(seed: 5)
        let x = (0..<(32 * 64)).map { i in i % 97 == 0 ? 0 : rng.float(-8, 8) * (i % 5 == 0 ? 100 : 1) }
        let results = onEachPath { () -> Q8Activations in
            var q = Q8Activations(rows: 4, columns: 512)
            x.withUnsafeBufferPointer { q.quantize($0.baseAddress!, rows: 4) }
            return q
        }
        for r in results.dropFirst() {
            #expect(r.values == results[0].values)
            #expect(r.scales == results[0].scales)
            #expect(r.sums == results[0].sums)
        }
    }

    @Test func dotProductsAreBitIdentical() {
        var rng = SeededGenerator(seed: 9)
        let blocks = 48
        var q41 = [UInt8](), q40 = [UInt8](), q80 = [UInt8]()
        func half(_ x: Float, into bytes: inout [UInt8]) { withUnsafeBytes(of: Float16(x).bitPattern) { bytes += $0 } }
        for _ in 0..<blocks {
            half(rng.float(0.01, 0.05), into: &q41); half(rng.float(-0.5, 0), into: &q41)
            half(rng.float(0.01, 0.05), into: &q40)
            half(rng.float(0.001, 0.01), into: &q80)
            for _ in 0..<16 { q41.append(UInt8(truncatingIfNeeded: rng.next())); q40.append(UInt8(truncatingIfNeeded: rng.next())) }
            for _ in 0..<32 { q80.append(UInt8(truncatingIfNeeded: rng.next())) }
        }
        let x = (0..<(blocks * 32)).map { _ in rng.float(-3, 3) }
        let halves = x.map { Float16($0).bitPattern }
        var act = Q8Activations(rows: 1, columns: blocks * 32)
        x.withUnsafeBufferPointer { act.quantize($0.baseAddress!, rows: 1) }
        let n = Int32(x.count - 5)  // leave a tail for the float kernels
        let results = onEachPath { () -> [UInt32] in
            var y = x
            ms_axpy_f16(n, 0.37, halves, &y)
            return [ms_dot_q4_1_q8_1(Int32(blocks), q41, act.values, act.scales, act.sums),
                    ms_dot_q4_0_q8_0(Int32(blocks), q40, act.values, act.scales),
                    ms_dot_q8_0_q8_0(Int32(blocks), q80, act.values, act.scales),
                    ms_dot_f32(n, x, y), ms_dot_f16_f32(n, halves, x)].map(\.bitPattern) + y.map(\.bitPattern)
        }
        for r in results.dropFirst() { #expect(r == results[0]) }
        #expect(results[0].prefix(5).allSatisfy { Float(bitPattern: $0).isFinite && $0 != 0 })
    }

    /// The four-token kernels give exactly the four single-token results.
    @Test func fourTokenKernelsEqualSingleOnes() {
        var rng = SeededGenerator(seed: 17)
        let blocks = 18, columns = blocks * 32
        var q41 = [UInt8](), q80 = [UInt8]()
        for _ in 0..<blocks {
            for v in [Float16(rng.float(0.01, 0.05)), Float16(rng.float(-0.5, 0))] { withUnsafeBytes(of: v.bitPattern) { q41 += $0 } }
            for _ in 0..<16 { q41.append(UInt8(truncatingIfNeeded: rng.next())) }
            withUnsafeBytes(of: Float16(rng.float(0.001, 0.01)).bitPattern) { q80 += $0 }
            for _ in 0..<32 { q80.append(UInt8(truncatingIfNeeded: rng.next())) }
        }
        let x = (0..<(4 * columns)).map { _ in rng.float(-3, 3) }
        var act = Q8Activations(rows: 4, columns: columns)
        x.withUnsafeBufferPointer { act.quantize($0.baseAddress!, rows: 4) }
        let results = onEachPath { () -> [UInt32] in
            var four41 = [Float](repeating: 0, count: 4), four80 = four41
            ms_dot4_q4_1_q8_1(Int32(blocks), q41, act.values, act.scales, act.sums, Int32(columns), &four41)
            ms_dot4_q8_0_q8_0(Int32(blocks), q80, act.values, act.scales, Int32(columns), &four80)
            var singles: [Float] = []
            act.values.withUnsafeBufferPointer { q in
                act.scales.withUnsafeBufferPointer { d in
                    act.sums.withUnsafeBufferPointer { s in
                        for t in 0..<4 {
                            singles.append(ms_dot_q4_1_q8_1(Int32(blocks), q41, q.baseAddress! + t * columns, d.baseAddress! + t * blocks, s.baseAddress! + t * blocks))
                        }
                        for t in 0..<4 {
                            singles.append(ms_dot_q8_0_q8_0(Int32(blocks), q80, q.baseAddress! + t * columns, d.baseAddress! + t * blocks))
                        }
                    }
                }
            }
            #expect((four41 + four80).map(\.bitPattern) == singles.map(\.bitPattern))
            return singles.map(\.bitPattern)
        }
        for r in results.dropFirst() { #expect(r == results[0]) }
    }
}

extension KernelPathTests {
    /// Random Q4_1 and Q8_0 rows.
    static func randomRows(rows: Int, blocks: Int, seed: UInt64) -> (q41: [UInt8], q80: [UInt8]) {
        var rng = SeededGenerator(seed: seed)
        var q41 = [UInt8](), q80 = [UInt8]()
        for _ in 0..<(rows * blocks) {
            for v in [Float16(rng.float(0.01, 0.05)), Float16(rng.float(-0.5, 0))] { withUnsafeBytes(of: v.bitPattern) { q41 += $0 } }
            for _ in 0..<16 { q41.append(UInt8(truncatingIfNeeded: rng.next())) }
            withUnsafeBytes(of: Float16(rng.float(0.001, 0.01)).bitPattern) { q80 += $0 }
            for _ in 0..<32 { q80.append(UInt8(truncatingIfNeeded: rng.next())) }
        }
        return (q41, q80)
    }

    /// The row-loop kernels (decoding's matrix-vector products) give each row's single-dot result exactly, storing
    /// or adding to what is there, on every path.
    @Test func rowKernelsEqualSingleDots() {
        let rows = 13, blocks = 18, columns = blocks * 32
        let (q41, q80) = Self.randomRows(rows: rows, blocks: blocks, seed: 23)
        var rng = SeededGenerator(seed: 29)
        let x = (0..<columns).map { _ in rng.float(-3, 3) }
        let base = (0..<rows).map { _ in rng.float(-1, 1) }
        var act = Q8Activations(rows: 1, columns: columns)
        x.withUnsafeBufferPointer { act.quantize($0.baseAddress!, rows: 1) }
        let results = onEachPath { () -> [UInt32] in
            var out: [UInt32] = []
            for (type, bytes, rowBytes) in [(Int32(3), q41, 20 * blocks), (Int32(8), q80, 34 * blocks)] {
                var stored = [Float](repeating: 0, count: rows), added = base
                ms_gemv(type, Int32(rows), Int32(blocks), bytes, Int32(rowBytes), act.values, act.scales, act.sums, &stored, 0)
                ms_gemv(type, Int32(rows), Int32(blocks), bytes, Int32(rowBytes), act.values, act.scales, act.sums, &added, 1)
                bytes.withUnsafeBytes { raw in
                    for r in 0..<rows {
                        let row = raw.baseAddress! + r * rowBytes
                        let single = type == 3 ? ms_dot_q4_1_q8_1(Int32(blocks), row, act.values, act.scales, act.sums)
                                               : ms_dot_q8_0_q8_0(Int32(blocks), row, act.values, act.scales)
                        #expect(stored[r].bitPattern == single.bitPattern)
                        #expect(added[r].bitPattern == (base[r] + single).bitPattern)
                    }
                }
                out += stored.map(\.bitPattern)
            }
            return out
        }
        for r in results.dropFirst() { #expect(r == results[0]) }
    }

    /// SwiGLU (with llama.cpp's polynomial exp) is bit-identical on every path, including arguments whose exponent
    /// leaves the normal range and the saturated ends.
    @Test func swiGLUIsBitIdentical() {
        var rng = SeededGenerator(seed: 37)
        var gate = (0..<4000).map { i in rng.float(-12, 12) * (i % 7 == 0 ? 12 : 1) }
        gate += [0, -0, 87, -87, 88.7, -88.7, 104, -104, 133, -133, 150, -150, 1e-30, -1e-30, 3]
        let up = gate.indices.map { _ in rng.float(-2, 2) }
        let results = onEachPath { () -> [UInt32] in
            var out = [Float](repeating: 0, count: gate.count)
            ms_swiglu(Int32(gate.count), gate, up, &out)
            return out.map(\.bitPattern)
        }
        for r in results.dropFirst() { #expect(r == results[0]) }
        let silu3 = Float(bitPattern: results[0][gate.count - 1]) / up[gate.count - 1]
        #expect(abs(silu3 - 3 / (1 + exp(-3))) < 1e-5)
    }

    /// Decoding attention (half-precision accumulator) is bit-identical on every path; prefill's tiled attention
    /// agrees with the per-token single-precision path to float rounding.
    @Test func attentionPathsAgree() {
        var rng = SeededGenerator(seed: 31)
        let heads = 6, kvHeads = 2, headSize = 64, start = 37, tokens = 70
        let positions = start + tokens, qWidth = heads * headSize, kvWidth = kvHeads * headSize
        let q = (0..<(tokens * qWidth)).map { _ in rng.float(-2, 2) }
        let keys = (0..<(positions * kvWidth)).map { _ in Float16(rng.float(-2, 2)).bitPattern }
        let values = (0..<(positions * kvWidth)).map { _ in Float16(rng.float(-1, 1)).bitPattern }
        let lengths = (0..<tokens).map { Int32(start + $0 + 1) }
        func perToken(half: Int32) -> [Float] {
            var out = [Float](repeating: 0, count: tokens * qWidth)
            keys.withUnsafeBufferPointer { k in
                values.withUnsafeBufferPointer { v in
                    let kp = [UnsafePointer<UInt16>?](repeating: k.baseAddress!, count: tokens)
                    let vp = [UnsafePointer<UInt16>?](repeating: v.baseAddress!, count: tokens)
                    ms_attention(Int32(tokens), Int32(heads), Int32(kvHeads), Int32(headSize), lengths, kp, vp, half, q, &out, 2)
                }
            }
            return out
        }
        let decoding = onEachPath { perToken(half: 1).map(\.bitPattern) }
        for r in decoding.dropFirst() { #expect(r == decoding[0]) }
        let reference = perToken(half: 0)
        var tiled = [Float](repeating: 0, count: tokens * qWidth)
        let ran = ms_attention_tiled(Int32(tokens), Int32(start), Int32(heads), Int32(kvHeads), Int32(headSize), q, keys, values, &tiled, 2)
        if KernelPath.current != .portable {
            #expect(ran == 1)
            let worst = zip(tiled, reference).map { abs($0 - $1) }.max()!
            #expect(worst < 1e-5, "largest difference \(worst)")
        } else {
            #expect(ran == 0)
        }
        #expect(reference.contains { $0 != 0 } && reference.allSatisfy(\.isFinite))
    }
}

/// The encoder's kernels against plain references, on every path.
@Suite(.serialized) struct EncoderKernelTests {
    func onEachPath(_ body: () -> Void) {
        let saved = KernelPath.current
        defer { KernelPath.current = saved }
        for path in KernelPath.allCases where path.rawValue <= KernelPath.best.rawValue {
            KernelPath.current = path
            body()
        }
    }

    @Test func geluMatchesExactErf() {
        let x = (0..<4001).map { Float($0 - 2000) * 0.004 }
        onEachPath {
            var y = x
            ms_gelu_erf(Int32(y.count), &y)
            for (v, g) in zip(x, y) {
                let exact = 0.5 * Double(v) * (1 + Foundation.erf(Double(v) / 2.0.squareRoot()))
                #expect(abs(Double(g) - exact) < 1e-6, "\(v)")
            }
        }
    }

    @Test func gemmMatchesNaiveProduct() {
        var rng = SeededGenerator(seed: 21)
        for (m, n, k) in [(1, 3, 5), (7, 9, 24), (15, 64, 384), (70, 33, 100)] {
            let a = (0..<(m * k)).map { _ in rng.float(-1, 1) }
            let w = (0..<(n * k)).map { _ in rng.float(-1, 1) }
            let bias = (0..<n).map { _ in rng.float(-1, 1) }
            let wHalf = w.map { Float16($0).bitPattern }
            onEachPath {
                var c32 = [Float](repeating: 0, count: m * n), c16 = c32
                ms_gemm_f32(Int32(m), Int32(n), Int32(k), a, Int32(k), w, Int32(k), bias, &c32, Int32(n))
                ms_gemm_f16(Int32(m), Int32(n), Int32(k), a, Int32(k), wHalf, Int32(k), bias, &c16, Int32(n))
                for i in 0..<m {
                    for j in 0..<n {
                        var exact = Double(bias[j]), exactHalf = Double(bias[j])
                        for p in 0..<k {
                            exact += Double(a[i * k + p]) * Double(w[j * k + p])
                            exactHalf += Double(a[i * k + p]) * Double(Float(Float16(w[j * k + p])))
                        }
                        #expect(abs(Double(c32[i * n + j]) - exact) < 1e-4, "f32 \(m)x\(n)x\(k) at \(i),\(j)")
                        #expect(abs(Double(c16[i * n + j]) - exactHalf) < 1e-4, "f16 \(m)x\(n)x\(k) at \(i),\(j)")
                    }
                }
            }
        }
    }

    @Test func addLayerNormNormalises() {
        var x: [Float] = [1, 2, 3, 4, 10, 10, 10, 10]
        let y: [Float] = [1, 0, 1, 0, 0, 0, 0, 0]
        ms_add_layer_norm(2, 4, &x, y, [1, 1, 1, 1], [0, 0, 0, 0.5], 1e-12)
        // Row 1: (2, 2, 4, 4) has mean 3 and standard deviation 1.
        #expect(zip(x.prefix(4), [-1, -1, 1, 1.5] as [Float]).allSatisfy { abs($0 - $1) < 1e-5 })
        // Row 2 is constant: zeros plus the bias.
        #expect(x.suffix(4) == [0, 0, 0, 0.5])
    }
}
