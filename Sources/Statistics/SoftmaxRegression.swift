import CKernels
import Foundation
import Kernels

/// Row-major feature vectors: `rows` items of `columns` values each.
public struct FeatureMatrix: Sendable, Equatable {
    /// Number of items.
    public let rows: Int
    /// Length of each vector.
    public let columns: Int
    /// `rows × columns` values, item by item.
    public var values: [Float]

    /// A matrix over `values`, which must hold `rows × columns` numbers.
    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "feature matrix needs \(rows)×\(columns) values, got \(values.count)")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    /// The items at `indices`, in that order.
    public func subset(_ indices: [Int]) -> FeatureMatrix {
        var out = [Float]()
        out.reserveCapacity(indices.count * columns)
        for i in indices { out.append(contentsOf: values[i * columns..<(i + 1) * columns]) }
        return FeatureMatrix(rows: indices.count, columns: columns, values: out)
    }

    /// Item `i`.
    public func row(_ i: Int) -> ArraySlice<Float> { values[i * columns..<(i + 1) * columns] }

    /// Every row scaled to unit length (all-zero rows stay zero), for cosine similarities.
    public func unitRows() -> FeatureMatrix {
        var out = self
        for i in 0..<rows {
            let norm = max(row(i).reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            for p in 0..<columns { out.values[i * columns + p] /= norm }
        }
        return out
    }
}

/// Sparse rows (compressed sparse row layout): item `i`'s non-zero columns are
/// `indices[offsets[i]..<offsets[i + 1]]` with the matching `values`.
public struct SparseRows: Sendable, Equatable {
    /// Number of columns.
    public let columns: Int
    /// Row boundaries into `indices` and `values` (`rows + 1` entries).
    public var offsets: [Int]
    /// Column of each non-zero value.
    public var indices: [Int32]
    /// The non-zero values.
    public var values: [Float]

    /// Rows built from `(column, value)` lists.
    public init(columns: Int, rows: [[(Int, Float)]]) {
        self.columns = columns
        offsets = [0]
        indices = []
        values = []
        for row in rows {
            for (j, v) in row {
                precondition(j >= 0 && j < columns)
                indices.append(Int32(j))
                values.append(v)
            }
            offsets.append(indices.count)
        }
    }

    /// Number of rows.
    public var rows: Int { offsets.count - 1 }

    /// The rows at `selection`, in that order.
    public func subset(_ selection: [Int]) -> SparseRows {
        SparseRows(columns: columns, rows: selection.map { i in
            (offsets[i]..<offsets[i + 1]).map { (Int(indices[$0]), values[$0]) }
        })
    }
}

/// A multinomial logistic-regression head: `logits = W·x + b` over a backbone's features.
///
/// Training standardises each dense feature (mean 0, variance 1 on the training items) so one L2 strength suits
/// every backbone, then folds the scaling back into `weights` and `bias`, which apply to raw features. Optional
/// sparse features (such as lexical TF-IDF) have their own weights and their own L2 strength.
public struct SoftmaxRegression: Codable, Sendable, Equatable {
    /// Number of classes.
    public let classes: Int
    /// Dense feature length.
    public let dimension: Int
    /// `classes × dimension` weights on raw dense features.
    public var weights: [Float]
    /// One bias per class.
    public var bias: [Float]
    /// Sparse feature length (0: none).
    public let sparseDimension: Int
    /// `sparseDimension × classes` weights on sparse features (feature-major, so a non-zero touches one run).
    public var sparseWeights: [Float]

    /// A head with the given parameters.
    public init(classes: Int, dimension: Int, weights: [Float], bias: [Float], sparseDimension: Int = 0, sparseWeights: [Float] = []) {
        precondition(weights.count == classes * dimension && bias.count == classes && sparseWeights.count == sparseDimension * classes)
        self.classes = classes
        self.dimension = dimension
        self.weights = weights
        self.bias = bias
        self.sparseDimension = sparseDimension
        self.sparseWeights = sparseWeights
    }

    /// Logits for every item: `rows × classes`.
    public func logits(_ x: FeatureMatrix, sparse: SparseRows? = nil, threads: Int = 1) -> [Float] {
        precondition(x.columns == dimension, "features have \(x.columns) columns, the head expects \(dimension)")
        var out = gemm(x.values, rows: x.rows, weights, outputs: classes, inner: dimension, bias: bias, threads: threads)
        if sparseDimension > 0 {
            guard let sparse, sparse.rows == x.rows, sparse.columns == sparseDimension else {
                preconditionFailure("the head has \(sparseDimension) sparse inputs; give one sparse row per item")
            }
            addSparse(sparse, sparseWeights, classes: classes, into: &out)
        }
        return out
    }

    enum CodingKeys: String, CodingKey { case classes, dimension, weights, bias, sparseDimension, sparseWeights }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        classes = try c.decode(Int.self, forKey: .classes)
        dimension = try c.decode(Int.self, forKey: .dimension)
        sparseDimension = try c.decodeIfPresent(Int.self, forKey: .sparseDimension) ?? 0
        weights = try Self.floats(c, .weights, count: classes * dimension)
        bias = try Self.floats(c, .bias, count: classes)
        sparseWeights = sparseDimension > 0 ? try Self.floats(c, .sparseWeights, count: sparseDimension * classes) : []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(classes, forKey: .classes)
        try c.encode(dimension, forKey: .dimension)
        try c.encode(sparseDimension, forKey: .sparseDimension)
        try c.encode(Self.base64(weights), forKey: .weights)
        try c.encode(Self.base64(bias), forKey: .bias)
        if sparseDimension > 0 { try c.encode(Self.base64(sparseWeights), forKey: .sparseWeights) }
    }

    /// Float32 little-endian, base64: exact and a third the size of decimal text.
    static func base64(_ values: [Float]) -> String {
        values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { Data($0).base64EncodedString() }
    }

    static func floats(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys, count: Int) throws -> [Float] {
        let text = try c.decode(String.self, forKey: key)
        guard let data = Data(base64Encoded: text), data.count == count * 4 else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "expected \(count) base64-encoded float32 values")
        }
        return data.withUnsafeBytes { raw in (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
    }

    /// What training reports besides the head.
    public struct Fit: Sendable {
        /// The trained head.
        public var model: SoftmaxRegression
        /// Mean training negative log-likelihood plus the penalty, at the optimum.
        public var objective: Double
        /// Optimiser iterations.
        public var iterations: Int
        /// Whether the optimiser met its tolerance.
        public var converged: Bool
    }

    /// Fits a head by minimising mean cross-entropy plus `l2 / 2 · ‖W‖²` on standardised dense features and
    /// `sparseL2 / 2 · ‖V‖²` on sparse ones (the bias is not penalised) with L-BFGS.
    public static func fit(
        _ x: FeatureMatrix, sparse: SparseRows? = nil, labels: [Int], classes: Int, l2: Double, sparseL2: Double = 0,
        optimizer: LBFGS = LBFGS(), threads: Int = 2
    ) -> Fit {
        precondition(labels.count == x.rows && labels.allSatisfy { (0..<classes).contains($0) })
        precondition(sparse == nil || sparse!.rows == x.rows)
        let n = x.rows, d = x.columns, k = classes, v = sparse?.columns ?? 0
        let sparseStart = k * d + k
        let (standardized, mean, scale) = standardize(x)
        let transposed = transpose(standardized.values, rows: n, columns: d)
        var residualT = [Float](repeating: 0, count: k * n)
        let objective = { (theta: [Double], gradient: inout [Double]) -> Double in
            let w = theta[0..<k * d].map(Float.init), b = theta[k * d..<k * d + k].map(Float.init)
            var logits = gemm(standardized.values, rows: n, w, outputs: k, inner: d, bias: b, threads: threads)
            if let sparse { addSparse(sparse, theta[sparseStart...].map(Float.init), classes: k, into: &logits) }
            var loss = 0.0
            for i in 0..<n {
                let row = logits[i * k..<(i + 1) * k]
                let top = row.max()!
                var sum: Float = 0
                for v in row { sum += expf(v - top) }
                loss += Double(top + logf(sum) - row[row.startIndex + labels[i]])
                let inverse = 1 / sum
                for j in 0..<k {
                    let p = expf(row[row.startIndex + j] - top) * inverse
                    residualT[j * n + i] = (p - (j == labels[i] ? 1 : 0)) / Float(n)
                }
            }
            let gw = gemm(residualT, rows: k, transposed, outputs: d, inner: n, bias: nil, threads: threads)
            var penalty = 0.0
            for i in 0..<k * d {
                penalty += theta[i] * theta[i]
                gradient[i] = Double(gw[i]) + l2 * theta[i]
            }
            for j in 0..<k {
                var sum: Float = 0
                for i in 0..<n { sum += residualT[j * n + i] }
                gradient[k * d + j] = Double(sum)
            }
            var sparsePenalty = 0.0
            if let sparse {
                var g = [Double](repeating: 0, count: v * k)
                for i in 0..<n {
                    for e in sparse.offsets[i]..<sparse.offsets[i + 1] {
                        let base = Int(sparse.indices[e]) * k, value = Double(sparse.values[e])
                        for c in 0..<k { g[base + c] += value * Double(residualT[c * n + i]) }
                    }
                }
                for q in 0..<v * k {
                    let t = theta[sparseStart + q]
                    sparsePenalty += t * t
                    gradient[sparseStart + q] = g[q] + sparseL2 * t
                }
            }
            return loss / Double(n) + l2 / 2 * penalty + sparseL2 / 2 * sparsePenalty
        }
        let result = optimizer.minimize(from: [Double](repeating: 0, count: k * d + k + v * k), objective)
        // Fold the standardisation back: w·(x − μ)/σ + b = (w/σ)·x + (b − Σ w μ/σ).
        var weights = [Float](repeating: 0, count: k * d), bias = [Float](repeating: 0, count: k)
        for j in 0..<k {
            var shift = 0.0
            for p in 0..<d {
                let w = result.x[j * d + p] / Double(scale[p])
                weights[j * d + p] = Float(w)
                shift += w * Double(mean[p])
            }
            bias[j] = Float(result.x[k * d + j] - shift)
        }
        return Fit(
            model: SoftmaxRegression(
                classes: k, dimension: d, weights: weights, bias: bias, sparseDimension: v,
                sparseWeights: result.x[sparseStart...].map(Float.init)),
            objective: result.value, iterations: result.iterations, converged: result.converged)
    }

    /// Each column shifted to mean 0 and scaled to variance 1 (constant columns are only shifted).
    static func standardize(_ x: FeatureMatrix) -> (FeatureMatrix, mean: [Float], scale: [Float]) {
        let n = x.rows, d = x.columns
        var mean = [Double](repeating: 0, count: d), square = [Double](repeating: 0, count: d)
        for i in 0..<n {
            for p in 0..<d {
                let v = Double(x.values[i * d + p])
                mean[p] += v
                square[p] += v * v
            }
        }
        var scale = [Float](repeating: 1, count: d)
        for p in 0..<d {
            mean[p] /= Double(max(n, 1))
            let variance = square[p] / Double(max(n, 1)) - mean[p] * mean[p]
            if variance > 1e-12 { scale[p] = Float(variance.squareRoot()) }
        }
        var out = x.values
        for i in 0..<n { for p in 0..<d { out[i * d + p] = (out[i * d + p] - Float(mean[p])) / scale[p] } }
        return (FeatureMatrix(rows: n, columns: d, values: out), mean.map(Float.init), scale)
    }
}

/// `out[i][j] = bias[j] + Σ_p a[i][p]·w[j][p]` for `rows` rows of `a` and `outputs` rows of `w`, split by rows of `a`
/// over the thread pool.
func gemm(_ a: [Float], rows: Int, _ w: [Float], outputs: Int, inner: Int, bias: [Float]?, threads: Int) -> [Float] {
    var out = [Float](repeating: 0, count: rows * outputs)
    let chunk = 64, chunks = (rows + chunk - 1) / chunk
    a.withUnsafeBufferPointer { a in
        w.withUnsafeBufferPointer { w in
            out.withUnsafeMutableBufferPointer { out in
                bias.withOptionalBuffer { biasBase in
                    parallelFor(chunks: chunks, threads: threads) { c in
                        let start = c * chunk, count = min(chunk, rows - start)
                        ms_gemm_f32(
                            Int32(count), Int32(outputs), Int32(inner), a.baseAddress! + start * inner, Int32(inner),
                            w.baseAddress!, Int32(inner), biasBase, out.baseAddress! + start * outputs, Int32(outputs))
                    }
                }
            }
        }
    }
    return out
}

extension Optional where Wrapped == [Float] {
    /// Calls `body` with the array's base address, or nil.
    func withOptionalBuffer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let array): return array.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: return body(nil)
        }
    }
}

/// `logits[i][c] += Σ_e values[e] · weights[indices[e]][c]` over item `i`'s non-zeros.
func addSparse(_ sparse: SparseRows, _ weights: [Float], classes k: Int, into logits: inout [Float]) {
    for i in 0..<sparse.rows {
        for e in sparse.offsets[i]..<sparse.offsets[i + 1] {
            let base = Int(sparse.indices[e]) * k, value = sparse.values[e]
            for c in 0..<k { logits[i * k + c] += value * weights[base + c] }
        }
    }
}

/// The transpose of a `rows × columns` matrix.
func transpose(_ a: [Float], rows: Int, columns: Int) -> [Float] {
    var out = [Float](repeating: 0, count: a.count)
    for i in 0..<rows { for j in 0..<columns { out[j * rows + i] = a[i * columns + j] } }
    return out
}
