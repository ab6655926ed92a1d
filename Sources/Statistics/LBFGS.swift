/// Limited-memory BFGS for smooth unconstrained minimisation, with a backtracking line search (Armijo condition).
public struct LBFGS: Sendable {
    /// Correction pairs kept.
    public var memory = 10
    /// Most iterations.
    public var maxIterations = 500
    /// Stop when the gradient's largest component is below this.
    public var gradientTolerance = 1e-5
    /// Stop when the objective improves by less than this fraction in an iteration.
    public var relativeTolerance = 1e-9

    /// An optimiser with the default settings.
    public init() {}

    /// What a run ended with.
    public struct Result: Sendable {
        /// The minimiser found.
        public var x: [Double]
        /// The objective there.
        public var value: Double
        /// Iterations taken.
        public var iterations: Int
        /// Whether a tolerance was met (not the iteration limit or a failed line search).
        public var converged: Bool
    }

    /// Minimises `f`, which returns the objective and writes the gradient into its second argument.
    public func minimize(from start: [Double], _ f: ([Double], inout [Double]) -> Double) -> Result {
        let n = start.count
        var x = start, g = [Double](repeating: 0, count: n)
        var value = f(x, &g)
        var s = [[Double]](), y = [[Double]](), rho = [Double]()
        var direction = [Double](repeating: 0, count: n), alpha = [Double](repeating: 0, count: memory)
        var trialX = x, trialG = g
        for iteration in 0..<maxIterations {
            if g.lazy.map(abs).max() ?? 0 < gradientTolerance {
                return Result(x: x, value: value, iterations: iteration, converged: true)
            }
            // Two-loop recursion: direction = −H·g.
            for i in 0..<n { direction[i] = -g[i] }
            for j in stride(from: s.count - 1, through: 0, by: -1) {
                alpha[j] = rho[j] * dot(s[j], direction)
                for i in 0..<n { direction[i] -= alpha[j] * y[j][i] }
            }
            if let last = s.indices.last {
                let scale = dot(s[last], y[last]) / dot(y[last], y[last])
                for i in 0..<n { direction[i] *= scale }
            } else {
                let norm = dot(g, g).squareRoot()
                for i in 0..<n { direction[i] /= max(norm, 1) }
            }
            for j in 0..<s.count {
                let beta = rho[j] * dot(y[j], direction)
                for i in 0..<n { direction[i] += s[j][i] * (alpha[j] - beta) }
            }
            var slope = dot(g, direction)
            if slope >= 0 {  // not a descent direction: restart from steepest descent
                s.removeAll(); y.removeAll(); rho.removeAll()
                for i in 0..<n { direction[i] = -g[i] }
                slope = -dot(g, g)
            }
            var step = 1.0, trialValue = Double.infinity, accepted = false
            for _ in 0..<40 {
                for i in 0..<n { trialX[i] = x[i] + step * direction[i] }
                trialValue = f(trialX, &trialG)
                if trialValue <= value + 1e-4 * step * slope { accepted = true; break }
                step *= 0.5
            }
            if !accepted { return Result(x: x, value: value, iterations: iteration, converged: false) }
            var sNew = [Double](repeating: 0, count: n), yNew = [Double](repeating: 0, count: n)
            for i in 0..<n { sNew[i] = trialX[i] - x[i]; yNew[i] = trialG[i] - g[i] }
            let curvature = dot(sNew, yNew)
            if curvature > 1e-12 {
                if s.count == memory { s.removeFirst(); y.removeFirst(); rho.removeFirst() }
                s.append(sNew); y.append(yNew); rho.append(1 / curvature)
            }
            let improvement = value - trialValue
            swap(&x, &trialX); swap(&g, &trialG)
            value = trialValue
            if improvement <= relativeTolerance * max(abs(value), 1) {
                return Result(x: x, value: value, iterations: iteration + 1, converged: true)
            }
        }
        return Result(x: x, value: value, iterations: maxIterations, converged: false)
    }
}

@inline(__always)
func dot(_ a: [Double], _ b: [Double]) -> Double {
    var sum = 0.0
    for i in a.indices { sum += a[i] * b[i] }
    return sum
}
