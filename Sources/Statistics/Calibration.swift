import Foundation

/// Probabilities from logits: a numerically stable softmax of `logits / temperature`, row by row.
public func softmax(_ logits: [Float], classes: Int, temperature: Double = 1) -> [Double] {
    precondition(classes > 0 && logits.count % classes == 0 && temperature > 0)
    var out = [Double](repeating: 0, count: logits.count)
    for start in stride(from: 0, to: logits.count, by: classes) {
        var top = -Double.infinity
        for j in 0..<classes { top = max(top, Double(logits[start + j]) / temperature) }
        var sum = 0.0
        for j in 0..<classes {
            let e = exp(Double(logits[start + j]) / temperature - top)
            out[start + j] = e
            sum += e
        }
        for j in 0..<classes { out[start + j] /= sum }
    }
    return out
}

/// Temperature scaling: one positive scalar dividing the logits, fitted by minimising the negative log-likelihood
/// of held-out labels. It changes confidence, never the predicted class.
public enum TemperatureScaling {
    /// Mean negative log-likelihood of `labels` under `softmax(logits / temperature)`.
    public static func negativeLogLikelihood(_ logits: [Float], labels: [Int], classes: Int, temperature: Double) -> Double {
        var total = 0.0
        for (i, label) in labels.enumerated() {
            let start = i * classes
            var top = -Double.infinity
            for j in 0..<classes { top = max(top, Double(logits[start + j]) / temperature) }
            var sum = 0.0
            for j in 0..<classes { sum += exp(Double(logits[start + j]) / temperature - top) }
            total += top + log(sum) - Double(logits[start + label]) / temperature
        }
        return total / Double(max(labels.count, 1))
    }

    /// The temperature in [0.05, 20] that minimises the negative log-likelihood (golden-section search on its
    /// logarithm; the objective is convex in 1/T).
    public static func fit(_ logits: [Float], labels: [Int], classes: Int) -> Double {
        var lo = log(0.05), hi = log(20.0)
        let ratio = (5.0.squareRoot() - 1) / 2
        var a = hi - ratio * (hi - lo), b = lo + ratio * (hi - lo)
        func loss(_ logT: Double) -> Double {
            negativeLogLikelihood(logits, labels: labels, classes: classes, temperature: exp(logT))
        }
        var fa = loss(a), fb = loss(b)
        for _ in 0..<80 where hi - lo > 1e-7 {
            if fa < fb {
                hi = b; b = a; fb = fa
                a = hi - ratio * (hi - lo); fa = loss(a)
            } else {
                lo = a; a = b; fa = fb
                b = lo + ratio * (hi - lo); fb = loss(b)
            }
        }
        return exp((lo + hi) / 2)
    }
}
