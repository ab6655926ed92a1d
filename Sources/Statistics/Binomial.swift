import Foundation

/// Exact binomial tail probabilities and the Clopper-Pearson bound, for finite-sample error guarantees.
public enum Binomial {
    /// P(X ≤ k) for X ~ Binomial(n, p), summed in log space so large `n` neither underflows nor overflows.
    public static func cdf(_ k: Int, trials n: Int, probability p: Double) -> Double {
        precondition(n >= 0 && (0...1).contains(p))
        if k < 0 { return 0 }
        if k >= n { return 1 }
        if p == 0 { return 1 }
        if p == 1 { return 0 }
        let logP = log(p), logQ = log1p(-p), logNFactorial = logGamma(Double(n) + 1)
        var terms = [Double]()
        terms.reserveCapacity(k + 1)
        for i in 0...k {
            let logChoose = logNFactorial - logGamma(Double(i) + 1) - logGamma(Double(n - i) + 1)
            terms.append(logChoose + Double(i) * logP + Double(n - i) * logQ)
        }
        let top = terms.max()!
        let sum = terms.reduce(0) { $0 + exp($1 - top) }
        return min(1, exp(top + log(sum)))
    }

    /// The one-sided Clopper-Pearson upper bound on the rate behind `k` events in `n` trials: the largest `p` with
    /// P(X ≤ k) ≥ δ, so the true rate is below it with confidence 1 − δ. With no trials it is 1.
    public static func upperBound(events k: Int, trials n: Int, delta: Double) -> Double {
        precondition(k >= 0 && k <= n && delta > 0 && delta < 1)
        if k == n { return 1 }
        var lo = Double(k) / Double(n), hi = 1.0
        for _ in 0..<64 {
            let mid = (lo + hi) / 2
            if cdf(k, trials: n, probability: mid) > delta { lo = mid } else { hi = mid }
        }
        return hi
    }

    /// The one-sided Clopper-Pearson lower bound on the rate behind `k` events in `n` trials: the smallest `p` with
    /// P(X ≥ k) ≥ δ, so the true rate is above it with confidence 1 − δ. With no events it is 0.
    public static func lowerBound(events k: Int, trials n: Int, delta: Double) -> Double {
        precondition(k >= 0 && k <= n && delta > 0 && delta < 1)
        if k == 0 { return 0 }
        var lo = 0.0, hi = Double(k) / Double(n)
        for _ in 0..<64 {
            let mid = (lo + hi) / 2
            if 1 - cdf(k - 1, trials: n, probability: mid) < delta { lo = mid } else { hi = mid }
        }
        return lo
    }

    /// The p-value of the null hypothesis "the rate is above `target`" after seeing `k` events in `n` trials.
    public static func pValue(events k: Int, trials n: Int, target: Double) -> Double {
        cdf(k, trials: n, probability: target)
    }

    /// The fewest trials in which zero events certify a rate below `target` with confidence 1 − δ.
    public static func minimumTrials(target: Double, delta: Double) -> Int {
        Int((log(delta) / log1p(-target)).rounded(.up))
    }
}

/// log Γ(x).
@inline(__always)
func logGamma(_ x: Double) -> Double {
    let value: Double = lgamma(x)
    return value
}
