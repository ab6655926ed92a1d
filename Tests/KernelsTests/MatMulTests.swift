import Datasets
import GGUF
import Testing
@testable import Kernels

/// Random quantized blocks, built byte by byte from a seeded generator.
private func randomBlocks(_ type: GGMLType, rows: Int, columns: Int, seed: UInt64) -> [UInt8] {
    var rng = SeededGenerator(seed: seed)
    var out: [UInt8] = []
    let blocks = rows * columns / type.blockSize
    for _ in 0..<blocks {
        func half(_ x: Float) { withUnsafeBytes(of: Float16(x).bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        switch type {
        case .q4_1:
            half(rng.float(0.001, 0.05)); half(rng.float(-0.4, 0.1))
            for _ in 0..<16 { out.append(UInt8(truncatingIfNeeded: rng.next())) }
        case .q4_0:
            half(rng.float(0.001, 0.05))
            for _ in 0..<16 { out.append(UInt8(truncatingIfNeeded: rng.next())) }
        case .q8_0:
            half(rng.float(0.001, 0.02))
            for _ in 0..<32 { out.append(UInt8(truncatingIfNeeded: rng.next())) }
        case .f16:
            half(rng.float(-1, 1))
        default:
            withUnsafeBytes(of: rng.float(-1, 1).bitPattern.littleEndian) { out.append(contentsOf: $0) }
        }
    }
    return out
}

@Suite struct MatMulTests {
    /// The integer kernels against dequantize-then-multiply in double precision: the only difference allowed is
    /// the 8-bit rounding of the activations (relative error well under 1%).
    @Test(arguments: [GGMLType.q4_1, .q4_0, .q8_0, .f16, .f32])
    func quantizedProductMatchesDequantizedReference(type: GGMLType) {
        let rows = 37, columns = 256, tokens = 5
        let bytes = randomBlocks(type, rows: rows, columns: columns, seed: 42)
        var rng = SeededGenerator(seed: 7)
        let x = (0..<(tokens * columns)).map { _ in rng.float(-2, 2) }
        bytes.withUnsafeBytes { raw in
            let w = WeightMatrix(type: type, rows: rows, columns: columns, data: raw.baseAddress!)
            var y = [Float](repeating: 0, count: tokens * rows)
            let mm = MatMul(threads: 2, columns: columns)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { mm.multiply(w, xp.baseAddress!, tokens: tokens, into: $0.baseAddress!) }
            }
            var row = [Float](repeating: 0, count: columns)
            var worst = 0.0
            for r in 0..<rows {
                row.withUnsafeMutableBufferPointer { w.dequantizeRow(r, into: $0.baseAddress!) }
                for t in 0..<tokens {
                    var exact = 0.0, magnitude = 0.0
                    for c in 0..<columns {
                        exact += Double(row[c]) * Double(x[t * columns + c])
                        magnitude += abs(Double(row[c]) * Double(x[t * columns + c]))
                    }
                    worst = max(worst, abs(Double(y[t * rows + r]) - exact) / magnitude)
                }
            }
            let bound = type == .f32 || type == .f16 ? 1e-5 : 5e-3
            #expect(worst < bound, "worst relative error \(worst) for \(type)")
        }
    }

    /// Activation quantization: scales are max/127 and values round-trip within half a step.
    @Test func activationQuantizationRoundTrips() {
        var rng = SeededGenerator(seed: 3)
        let x = (0..<128).map { _ in rng.float(-3, 3) }
        var q = Q8Activations(rows: 1, columns: 128)
        x.withUnsafeBufferPointer { q.quantize($0.baseAddress!, rows: 1) }
        for b in 0..<4 {
            let amax = x[(b * 32)..<(b * 32 + 32)].map(abs).max()!
            #expect(abs(q.scales[b] - amax / 127) <= amax / 127 * 1e-3)
            var sum = 0
            for j in 0..<32 {
                let v = q.values[b * 32 + j]
                sum += Int(v)
                #expect(abs(Float(v) * q.scales[b] - x[b * 32 + j]) <= q.scales[b] * 0.5 + 1e-3)
            }
            #expect(abs(q.sums[b] - Float(sum) * q.scales[b]) <= abs(Float(sum) * q.scales[b]) * 1e-3 + 1e-4)
        }
    }
}
