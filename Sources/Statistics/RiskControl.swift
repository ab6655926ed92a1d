import Foundation

/// An acceptance threshold chosen so that the error rate among accepted items is below a target with a stated
/// confidence, or the reason none could be certified.
public struct CertifiedThreshold: Codable, Sendable, Equatable {
    /// Accept items scoring at least this; nil: never accept.
    public var threshold: Double?
    /// The error rate to stay under.
    public var target: Double
    /// Allowed probability that the guarantee fails (confidence is 1 − delta).
    public var delta: Double
    /// Calibration items the search saw.
    public var items: Int
    /// Of those, how many the threshold accepts.
    public var accepted: Int
    /// Errors among the accepted.
    public var errors: Int
    /// Clopper-Pearson upper bound on the error rate among accepted items (1 when nothing is accepted).
    public var upperBound: Double
    /// Fewest accepted items the search starts from: below it no outcome could certify the target.
    public var itemsNeeded: Int
    /// Why nothing is accepted, when nothing is.
    public var reason: String?

    /// A certificate that accepts nothing, for `reason`.
    public static func none(target: Double, delta: Double, reason: String) -> CertifiedThreshold {
        CertifiedThreshold(
            threshold: nil, target: target, delta: delta, items: 0, accepted: 0, errors: 0, upperBound: 1,
            itemsNeeded: RiskControl.startSize(target: target, delta: delta), reason: reason)
    }

}

/// Risk control by Learn-then-Test with fixed-sequence testing (Angelopoulos et al., 2021).
///
/// Candidate thresholds are ordered from strict to lenient, and each is tested in turn with an exact binomial
/// test of "the error rate among accepted items exceeds the target"; the search stops at the first test that fails
/// to reject and returns the last threshold that passed. Every test runs at level δ and the order is fixed before
/// the labels are looked at, so the chance that the returned threshold's true error rate is above target is at
/// most δ.
///
/// The sequence starts where enough items are accepted to certify the target if their error rate were half of it;
/// starting at the very top would stop at once, because a handful of accepted items can certify nothing.
public enum RiskControl {
    /// Fewest accepted items at which an observed error rate of `target / 2` passes the test.
    public static func startSize(target: Double, delta: Double) -> Int {
        var m = Binomial.minimumTrials(target: target, delta: delta)
        while Binomial.pValue(events: Int(target * Double(m) / 2), trials: m, target: target) > delta { m += 1 }
        return m
    }

    /// The lowest certified threshold on `scores` (higher means more confident); `errors[i]` says whether item
    /// `i`'s prediction is wrong. Candidates are spaced so about `steps` of them span the items.
    public static func threshold(
        scores: [Double], errors: [Bool], target: Double, delta: Double, steps: Int = 100
    ) -> CertifiedThreshold {
        precondition(scores.count == errors.count && target > 0 && target < 1 && delta > 0 && delta < 1)
        let n = scores.count, start = startSize(target: target, delta: delta)
        var result = CertifiedThreshold(
            threshold: nil, target: target, delta: delta, items: n, accepted: 0, errors: 0, upperBound: 1,
            itemsNeeded: start, reason: nil)
        guard n >= start else {
            result.reason = "too little calibration data: \(n) items, the search needs at least \(start) to certify \(percent(target)) at \(percent(1 - delta)) confidence"
            return result
        }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var errorPrefix = [Int](repeating: 0, count: n + 1)
        for (rank, i) in order.enumerated() { errorPrefix[rank + 1] = errorPrefix[rank] + (errors[i] ? 1 : 0) }
        let step = max(1, n / steps)
        var m = start
        while m <= n {
            // Accept every item tied with the m-th score, so the threshold is a real cut on scores.
            let cut = scores[order[m - 1]]
            var accepted = m
            while accepted < n && scores[order[accepted]] >= cut { accepted += 1 }
            let k = errorPrefix[accepted]
            if Binomial.pValue(events: k, trials: accepted, target: target) > delta {
                if result.threshold == nil {
                    result.reason = "the first test failed: \(k) errors among the \(accepted) most confident calibration items"
                    result.errors = k
                    result.accepted = 0
                }
                break
            }
            result.threshold = cut
            result.accepted = accepted
            result.errors = k
            result.upperBound = Binomial.upperBound(events: k, trials: accepted, delta: delta)
            if accepted == n { break }
            m = max(accepted + 1, m + step)
            if m > n { m = n }
        }
        return result
    }

    /// The largest bound in `grid` (ascending) on a secondary score such that the rate of `misses` stays under
    /// `target` with confidence 1 − δ, by the same fixed-sequence test; `missed(bound)` counts the misses out of
    /// `trials` items that a bound lets through. Returns nil when even the first bound cannot be certified.
    public static func largestBound(
        grid: [Double], trials: Int, target: Double, delta: Double, missed: (Double) -> Int
    ) -> (bound: Double, misses: Int, upperBound: Double)? {
        var best: (Double, Int, Double)?
        guard trials > 0 else { return nil }
        for bound in grid {
            let k = missed(bound)
            if Binomial.pValue(events: k, trials: trials, target: target) > delta { break }
            best = (bound, k, Binomial.upperBound(events: k, trials: trials, delta: delta))
        }
        return best
    }
}

/// A rate as a percentage: "2%" or "0.5%".
public func percent(_ x: Double) -> String {
    let p = x * 100
    return p == p.rounded() ? "\(Int(p))%" : String(format: "%.1f%%", p)
}
