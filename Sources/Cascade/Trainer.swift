import Datasets
import Foundation
import Statistics

/// Labelled texts read from a CSV file with a task's column names.
public struct LabelledData: Sendable {
    /// The file.
    public var file: String
    /// SHA-256 of the file.
    public var digest: String
    /// The texts.
    public var texts: [String]
    /// Label index of each text.
    public var labels: [Int]
    /// Rows left out because their label is not one of the task's (with `skipUnknownLabels`): rows per label.
    public var skipped: [String: Int] = [:]
    /// Each kept row's value in the group column, when one was named.
    public var groups: [String]?
    /// Each kept row's out-of-scope kind (``OutOfScope/kindColumn``; empty for in-scope rows), when the spec names the column.
    public var kinds: [String]?

    /// Reads `path`; every text must be non-empty and within the size limit, and every label one of the spec's: a row
    /// with another label is refused, or, with `skipUnknownLabels`, left out and counted in `skipped`.
    /// With `groupColumn`, each kept row's value there is kept in `groups` (the column must exist).
    public static func load(_ path: String, spec: TaskSpec, skipUnknownLabels: Bool = false, groupColumn: String? = nil) throws -> LabelledData {
        let table: CSVTable
        do { table = try CSVTable(path: path) } catch { throw DataError(file: path, message: "\(error)") }
        let kindColumn = spec.outOfScope?.kindColumn
        for column in [spec.textColumn, spec.labelColumn] where !table.header.contains(column) {
            throw DataError(file: path, message: "no column '\(column)' (the file has: \(table.header.joined(separator: ", "))); set data.text_column / data.label_column in \(spec.file)")
        }
        if let groupColumn, !table.header.contains(groupColumn) {
            throw DataError(file: path, message: "no column '\(groupColumn)' (the file has: \(table.header.joined(separator: ", ")))")
        }
        let names = try table.column(spec.labelColumn)
        var unknown = [(label: String, rows: [Int])]()
        for (row, name) in names.enumerated() where spec.labelIndex(name) == nil {
            if let i = unknown.firstIndex(where: { $0.label == name }) { unknown[i].rows.append(row) } else { unknown.append((name, [row])) }
        }
        if !unknown.isEmpty && !skipUnknownLabels {
            // Every unknown label at once, with its rows (CSV rows count from 2: the header is row 1).
            let list = unknown.map { u in
                "'\(u.label)' (\(u.rows.count) row\(u.rows.count == 1 ? "" : "s"): \(u.rows.prefix(5).map { String($0 + 2) }.joined(separator: ", "))\(u.rows.count > 5 ? ", …" : ""))"
            }
            throw DataError(file: path, message: "labels that are not the task's: \(list.joined(separator: ", ")); fix the rows, add the labels to \(spec.file), or pass --skip-unknown-labels to leave those rows out")
        }
        let texts = try table.column(spec.textColumn)
        // Kinds are read when the file has the column; training requires them (`Trainer.train`), other uses do not.
        let groupValues = try groupColumn.map { try table.column($0) }
        let kindValues = try kindColumn.flatMap { table.header.contains($0) ? try table.column($0) : nil }
        var kept = [String](), labels = [Int](), groups = [String](), kinds = [String]()
        for (row, name) in names.enumerated() {
            guard let label = spec.labelIndex(name) else { continue }
            let text = texts[row]
            if let problem = InputProblem(text, maxCharacters: spec.maxInputCharacters) {
                throw DataError(file: path, message: "row \(row + 2): " + problem.describe("the text", task: spec.name))
            }
            kept.append(text)
            labels.append(label)
            if let groupValues { groups.append(groupValues[row]) }
            if let kindValues { kinds.append(label == spec.outOfScopeIndex ? kindValues[row].trimmingCharacters(in: .whitespaces) : "") }
        }
        if labels.isEmpty {
            throw DataError(file: path, message: unknown.isEmpty ? "no rows" : "no rows with one of the task's labels")
        }
        return LabelledData(file: path, digest: try Digest.of(file: path), texts: kept, labels: labels,
                            skipped: Dictionary(uniqueKeysWithValues: unknown.map { ($0.label, $0.rows.count) }),
                            groups: groupColumn == nil ? nil : groups, kinds: kindValues == nil ? nil : kinds)
    }

    /// The rows left out, in words (nil when none were): "left out 3 rows with labels that are not the task's: 'x' (2), 'y' (1)".
    public var skippedSummary: String? {
        guard !skipped.isEmpty else { return nil }
        let rows = skipped.values.reduce(0, +)
        let list = skipped.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "'\($0.key)' (\($0.value))" }
        return "\(URL(fileURLWithPath: file).lastPathComponent): left out \(rows) row\(rows == 1 ? "" : "s") with labels that are not the task's: \(list.joined(separator: ", "))"
    }
}

/// A data file that cannot be used.
public struct DataError: Error, CustomStringConvertible, Sendable {
    /// The file.
    public var file: String
    /// What is wrong.
    public var message: String
    public var description: String { "\(file): \(message)" }
}

/// Certifies a task's thresholds on calibrated probabilities of held-out items.
public enum Certifier {
    /// Grid of candidate bounds on high-risk probability mass, strict to lenient.
    static let massGrid = [0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0]

    /// Per high-risk class, the largest mass bound whose miss rate is certified; then per risk class, the lowest
    /// threshold whose error rate among accepted items is certified, given those bounds.
    ///
    /// The miss rate of a bound counts items of the high-risk class predicted as a low-risk label with mass under
    /// the bound, whatever their confidence: an upper bound on the misses for every threshold chosen after it, so
    /// choosing the thresholds second keeps the first guarantee. Labels with too few calibration items are left out
    /// of every search: they are never accepted.
    ///
    /// With an out-of-scope label (``TaskSpec/outOfScope``), its predictions are never accepted and an out-of-scope
    /// item accepted as another label counts as an error like any wrong label. `acceptable[i]` false (the item fails
    /// the scope check) keeps item `i` out of every accepted set. `delta` defaults to the spec's; the joint search over
    /// scope floors passes its Bonferroni share.
    public static func certify(
        _ items: ScoredItems, spec: TaskSpec, labelItems: [Int], acceptable: [Bool]? = nil, delta: Double? = nil
    ) -> (thresholds: [Adapter.ClassThreshold], massBounds: [Adapter.MassBound]) {
        let delta = delta ?? spec.delta
        let k = spec.labels.count
        let classOf = spec.riskClassIndices
        let highRisk = Set(spec.riskClasses.indices.filter { spec.riskClasses[$0].isHighRisk })
        let labelsOfClass = spec.riskClasses.indices.map { c in (0..<k).filter { classOf[$0] == c } }
        func mass(_ i: Int, _ c: Int) -> Double {
            labelsOfClass[c].reduce(0) { $0 + items.probabilities[i * k + $1] }
        }

        var bounds = [Adapter.MassBound](), boundClasses = [Int]()
        for c in highRisk.sorted() {
            let riskClass = spec.riskClasses[c], target = riskClass.missTarget!
            let members = (0..<items.count).filter { classOf[items.labels[$0]] == c }
            let masses = members.map { mass($0, c) }
            // A prediction of the out-of-scope label is never accepted, so it is no miss.
            let lowRiskPrediction = members.map { !highRisk.contains(classOf[items.top($0).label]) && items.top($0).label != spec.outOfScopeIndex }
            let grid = massGrid.filter { $0 <= riskClass.maxMass }
            let found = RiskControl.largestBound(grid: grid, trials: members.count, target: target, delta: delta) { bound in
                zip(masses, lowRiskPrediction).filter { $0.1 && $0.0 < bound }.count
            }
            let needed = Binomial.minimumTrials(target: target, delta: delta)
            boundClasses.append(c)
            bounds.append(Adapter.MassBound(
                riskClass: riskClass.name, bound: found?.bound ?? 0, missTarget: target, items: members.count,
                misses: found?.misses ?? 0, upperBound: found?.upperBound ?? 1,
                reason: found != nil ? nil : members.count < needed
                    ? "too little calibration data: \(members.count) items of \(riskClass.name), at least \(needed) needed to certify a \(percent(target)) miss rate; low-risk labels are never auto-accepted until then"
                    : "even the strictest bound misses too many \(riskClass.name) items; low-risk labels are never auto-accepted"))
        }

        var thresholds = [Adapter.ClassThreshold]()
        let outOfScopeClass = spec.outOfScopeIndex.map { classOf[$0] }
        for (c, riskClass) in spec.riskClasses.enumerated() {
            if c == outOfScopeClass {
                thresholds.append(Adapter.ClassThreshold(riskClass: riskClass.name, certificate: .none(
                    target: riskClass.targetError, delta: delta, reason: "out-of-scope predictions are never accepted")))
                continue
            }
            var scores = [Double](), errors = [Bool]()
            for i in 0..<items.count {
                let (label, confidence) = items.top(i)
                guard classOf[label] == c, labelItems[label] >= spec.training.minLabelItems, acceptable?[i] ?? true else { continue }
                if !highRisk.contains(c), zip(bounds, boundClasses).contains(where: { mass(i, $1) >= $0.bound }) { continue }
                scores.append(confidence)
                errors.append(label != items.labels[i])
            }
            thresholds.append(Adapter.ClassThreshold(
                riskClass: riskClass.name,
                certificate: RiskControl.threshold(scores: scores, errors: errors, target: riskClass.targetError, delta: delta)))
        }
        return (thresholds, bounds)
    }

    /// Unit-length mean of the unit-length rows of each of `classes` labels (`classes × columns`, row-major); a label
    /// without rows gets a zero centroid.
    static func centroids(_ x: FeatureMatrix, labels: [Int], classes: Int) -> [Float] {
        let d = x.columns, unit = x.unitRows()
        var sums = [Float](repeating: 0, count: classes * d)
        for (row, label) in labels.enumerated() {
            for (p, v) in unit.row(row).enumerated() { sums[label * d + p] += v }
        }
        return FeatureMatrix(rows: classes, columns: d, values: sums).unitRows().values
    }

    /// `indices` subsampled (seeded) so the out-of-scope ones make up `share` of them: the over-represented group is cut,
    /// the other kept whole. Unchanged when either group is empty.
    public static func matchShare(_ indices: [Int], isOutOfScope: (Int) -> Bool, share: Double, seed: UInt64) -> [Int] {
        var outside = indices.filter(isOutOfScope), inside = indices.filter { !isOutOfScope($0) }
        guard !outside.isEmpty, !inside.isEmpty else { return indices }
        var generator = SeededGenerator(seed: seed &+ 0x6f6f73)
        if Double(outside.count) / Double(indices.count) > share {
            outside.shuffle(using: &generator)
            outside = Array(outside.prefix(max(1, Int((share / (1 - share) * Double(inside.count)).rounded()))))
        } else {
            inside.shuffle(using: &generator)
            inside = Array(inside.prefix(max(1, Int(((1 - share) / share * Double(outside.count)).rounded()))))
        }
        return (outside + inside).sorted()
    }

    /// Chooses the scope check's similarity floor together with the thresholds (Learn-then-Test over a grid).
    ///
    /// The candidate floors are quantiles (``OutOfScope/floorQuantiles``) of the fitted in-scope items'
    /// `fitSimilarities`, fixed before any calibration label is read. Each candidate is certified with δ / (number of
    /// candidates) (Bonferroni), so every certificate in the family holds at once with confidence 1 − δ and picking
    /// the one that accepts the most in-scope calibration items keeps the guarantee. An out-of-scope item accepted as
    /// any label is an error. `similarities` are the calibration items' (those of `items`).
    public static func jointScope(
        _ items: ScoredItems, spec: TaskSpec, labelItems: [Int], outOfScope: OutOfScope, outOfScopeIndex: Int,
        fitSimilarities: [Double], similarities: [Double]
    ) -> (certificate: Adapter.OutOfScopeCertificate, thresholds: [Adapter.ClassThreshold], massBounds: [Adapter.MassBound]) {
        let k = spec.labels.count, sorted = fitSimilarities.sorted()
        let delta = spec.delta / Double(outOfScope.floorQuantiles.count)
        let inScopeItems = items.labels.count { $0 != outOfScopeIndex }, outOfScopeItems = items.count - inScopeItems
        var candidates: [Adapter.ScopeCandidate] = [], certified: [([Adapter.ClassThreshold], [Adapter.MassBound])] = []
        for q in outOfScope.floorQuantiles {
            // Quantile 0 is no floor: cosine similarity is never below −1.
            let floor = q == 0 || sorted.isEmpty ? -1 : sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))]
            let acceptable = similarities.map { $0 >= floor }
            let (thresholds, bounds) = certify(items, spec: spec, labelItems: labelItems, acceptable: acceptable, delta: delta)
            let policy = Policy(spec: spec, kind: .trained, thresholds: thresholds, massBounds: bounds,
                                labelCalibrationItems: labelItems, scopeFloor: floor)
            var inAccepted = 0, outAccepted = 0, errors = 0
            for i in 0..<items.count {
                let outcome = policy.modelRoute(Array(items.probabilities[i * k..<(i + 1) * k]), similarity: similarities[i])
                guard outcome.route == .accept else { continue }
                if items.labels[i] == outOfScopeIndex { outAccepted += 1 } else { inAccepted += 1 }
                if outcome.label != items.labels[i] { errors += 1 }
            }
            candidates.append(Adapter.ScopeCandidate(
                quantile: q, floor: floor, inScopeAccepted: inAccepted, outOfScopeAccepted: outAccepted, errors: errors,
                inScopeCoverage: inScopeItems > 0 ? Double(inAccepted) / Double(inScopeItems) : 0,
                outOfScopeRecall: outOfScopeItems > 0 ? 1 - Double(outAccepted) / Double(outOfScopeItems) : 1))
            certified.append((thresholds, bounds))
        }
        // The most in-scope items accepted; on a tie the lower floor (fewer in-scope inputs turned away unseen).
        let chosen = candidates.indices.max { (candidates[$0].inScopeAccepted, $1) < (candidates[$1].inScopeAccepted, $0) }!
        return (Adapter.OutOfScopeCertificate(
            label: outOfScope.label, inScopeItems: inScopeItems, outOfScopeItems: outOfScopeItems,
            expectedShare: outOfScope.expectedShare, deltaPerCandidate: delta, candidates: candidates, chosen: chosen),
            certified[chosen].0, certified[chosen].1)
    }

    /// What calibrating a head on held-out items gives.
    public struct Result: Sendable {
        /// The temperature fitted by log-likelihood (1 with no items).
        public var temperature: Double
        /// The items scored before and after scaling.
        public var before, after: ScoredItems
        /// The scaled items the thresholds were certified on: `after`, unless out-of-scope items were scored as unseen
        /// kinds (``OutOfScope/kindColumn``).
        public var certified: ScoredItems
        /// Calibration items per true label.
        public var labelItems: [Int]
        /// Certified threshold per risk class.
        public var thresholds: [Adapter.ClassThreshold]
        /// Certified mass bound per high-risk class.
        public var massBounds: [Adapter.MassBound]
    }

    /// Fits the temperature on the `logits` of held-out items with true `labels`, then certifies the thresholds on
    /// the scaled probabilities (of `certifying` instead, when given: the same items scored otherwise, with the same
    /// temperature).
    public static func calibrate(logits: [Float], labels: [Int], spec: TaskSpec, certifying: [Float]? = nil) -> Result {
        let k = spec.labels.count
        let temperature = labels.isEmpty ? 1 : TemperatureScaling.fit(logits, labels: labels, classes: k)
        let before = ScoredItems(probabilities: softmax(logits, classes: k), labels: labels, classes: k)
        let after = ScoredItems(probabilities: softmax(logits, classes: k, temperature: temperature), labels: labels, classes: k)
        let certified = certifying.map { ScoredItems(probabilities: softmax($0, classes: k, temperature: temperature), labels: labels, classes: k) } ?? after
        var labelItems = [Int](repeating: 0, count: k)
        for y in labels { labelItems[y] += 1 }
        let (thresholds, bounds) = certify(certified, spec: spec, labelItems: labelItems)
        return Result(temperature: temperature, before: before, after: after, certified: certified, labelItems: labelItems,
                      thresholds: thresholds, massBounds: bounds)
    }
}

/// Fits a task's adapter: features, a stratified fit/calibration split, the L2 strength by cross-validation, the
/// head, temperature scaling, and certified thresholds.
public struct Trainer {
    /// The task.
    public let spec: TaskSpec
    /// Its feature extractor.
    public let extractor: FeatureExtractor
    /// Threads for the optimiser.
    public var threads = 2
    /// Progress lines on standard error.
    public var verbose = true
    /// The optimiser: stopping once an iteration improves the objective by less than a millionth is far below
    /// what changes a prediction, and keeps fits with tens of thousands of lexical weights to seconds.
    public var optimizer: LBFGS = {
        var o = LBFGS()
        o.relativeTolerance = 1e-8
        o.gradientTolerance = 1e-5
        return o
    }()

    /// A trainer for a task.
    public init(spec: TaskSpec, extractor: FeatureExtractor) {
        self.spec = spec
        self.extractor = extractor
    }

    /// What training produced besides the adapter.
    public struct Outcome: Sendable {
        /// The adapter.
        public var adapter: Adapter
        /// Indices (into the training items) the head was fitted on.
        public var fitIndices: [Int]
        /// Indices held out for calibration.
        public var calibrationIndices: [Int]
    }

    func log(_ line: String) {
        if verbose { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    /// Features of labelled data (with a progress bar).
    public func features(_ data: LabelledData) throws -> FeatureMatrix {
        let bar = verbose ? ProgressBar("features") : nil
        return try extractor.features(data.texts) { done, total in bar?.update(done, total) }
    }

    /// Trains on `features` of `texts` (one row per item of `labels`); `dataDigest` names the data in the adapter, and
    /// `dataFile`, when given, is recorded so a retrain can be suggested with it. `split` names the items the head is
    /// fitted on and those it is calibrated and certified on (disjoint); by default a seeded stratified split with the
    /// spec's calibration fraction.
    ///
    /// With `kinds` (each item's out-of-scope kind, ``LabelledData/kinds``) and a spec naming `kind_column`, every
    /// out-of-scope calibration item is certified on the logits of a head fitted without its kind: the kinds are dealt
    /// into `kind_folds` folds and the head refitted once per fold with the chosen L2, so the certificate treats them as
    /// kinds never seen.
    public func train(features: FeatureMatrix, texts: [String], labels: [Int], dataDigest: String, dataFile: String? = nil,
                      split: (fit: [Int], calibration: [Int])? = nil, kinds: [String]? = nil) throws -> Outcome {
        let k = spec.labels.count
        var (fit, calibration) = split ?? Splits.stratified(labels, fraction: spec.training.calibrationFraction, seed: spec.training.seed)
        var appliedShare: Double?
        if let oos = spec.outOfScopeIndex {
            let outside = calibration.count { labels[$0] == oos }
            if outside == 0 {
                log("WARNING: no out-of-scope items in calibration: the certificate counts no out-of-scope traffic; add rows labelled \(spec.labels[oos].name)")
            } else if let share = spec.outOfScope?.expectedShare, outside < calibration.count {
                let matched = Certifier.matchShare(calibration, isOutOfScope: { labels[$0] == oos }, share: share, seed: spec.training.seed)
                // What the match leaves out goes to fitting rather than to waste.
                let kept = Set(matched)
                fit = (fit + calibration.filter { !kept.contains($0) }).sorted()
                let inside = matched.count { labels[$0] != oos }
                log("calibration matched to the expected out-of-scope share \(percent(share)): \(inside) in-scope and \(matched.count - inside) out-of-scope items (\(calibration.count - matched.count) returned to fitting)")
                if inside * 2 < calibration.count - outside {
                    log("WARNING: only \(outside) out-of-scope calibration items at an expected share of \(percent(share)) leave \(inside) of \(calibration.count - outside) in-scope ones: add out-of-scope examples")
                }
                calibration = matched
                appliedShare = share
            }
        }
        precondition(Set(fit).isDisjoint(with: calibration), "fit and calibration items overlap")
        // The kinds out-of-scope calibration items are held out by (nil: scored by the served head).
        var heldOutKinds: [String]?
        if let column = spec.outOfScope?.kindColumn, let oos = spec.outOfScopeIndex, calibration.contains(where: { labels[$0] == oos }) {
            guard let kinds else {
                throw DataError(file: dataFile ?? spec.file, message: "no column '\(column)' for the out-of-scope rows' kinds (out_of_scope.kind_column in \(spec.file))")
            }
            let unnamed = (fit + calibration).count { labels[$0] == oos && kinds[$0].isEmpty }
            guard unnamed == 0 else {
                throw DataError(file: dataFile ?? spec.file, message: "\(unnamed) out-of-scope rows have no kind in column '\(column)' (out_of_scope.kind_column in \(spec.file))")
            }
            heldOutKinds = kinds
        }
        guard Set(fit.map { labels[$0] }).count >= 2 else {
            throw DataError(file: spec.file, message: "training needs examples of at least two labels")
        }
        let fitX = features.subset(fit), fitY = fit.map { labels[$0] }
        // The vocabulary comes from the fitted texts only, so calibration items stay unseen.
        let lexical = spec.training.lexical.map { LexicalFeatures(fitting: fit.map { texts[$0] }, minDocuments: $0.minDocuments) }
        let sparse = lexical.map { $0.rows(texts) }
        log("fit \(fit.count) items, calibration \(calibration.count)\(lexical.map { "; \($0.count) lexical terms" } ?? ""); choosing L2 by \(spec.training.folds)-fold cross-validation")
        let bar = verbose ? ProgressBar("cross-validation") : nil
        let (best, candidates) = ModelSelection.crossValidate(
            fitX, sparse: sparse?.subset(fit), labels: fitY, classes: k, grid: spec.training.l2Grid,
            sparseGrid: spec.training.lexical?.l2Grid ?? [0], folds: spec.training.folds,
            seed: spec.training.seed, optimizer: optimizer, threads: threads) { bar?.update($0, $1) }
        for c in candidates {
            let chosen = c.l2 == best.l2 && c.sparseL2 == best.sparseL2
            log(String(format: "  l2 %.0e%@: held-out NLL %.4f, accuracy %.4f%@", c.l2, lexical == nil ? "" : String(format: ", lexical %.0e", c.sparseL2),
                       c.negativeLogLikelihood, c.accuracy, chosen ? "  ← chosen" : ""))
        }
        let head = SoftmaxRegression.fit(
            fitX, sparse: sparse?.subset(fit), labels: fitY, classes: k, l2: best.l2, sparseL2: best.sparseL2, optimizer: optimizer, threads: threads).model

        let logits = head.logits(features.subset(calibration), sparse: sparse?.subset(calibration), threads: threads)
        var unseenKinds: (logits: [Float], kinds: Int, folds: Int)?
        if let kinds = heldOutKinds, let oos = spec.outOfScopeIndex, let folds = spec.outOfScope?.kindFolds {
            // Each out-of-scope calibration item scored by a head that never saw its kind.
            let calibrationKinds = Array(Set(calibration.filter { labels[$0] == oos }.map { kinds[$0] })).sorted()
            let foldCount = min(folds, calibrationKinds.count)
            if calibrationKinds.count == 1 {
                log("WARNING: one out-of-scope kind in calibration (\(calibrationKinds[0])): its fold is fitted without any out-of-scope rows")
            }
            var replaced = logits
            for f in 0..<foldCount {
                let held = Set(calibrationKinds.enumerated().filter { $0.offset % foldCount == f }.map(\.element))
                let keep = fit.indices.filter { fitY[$0] != oos || !held.contains(kinds[fit[$0]]) }
                let rows = calibration.indices.filter { labels[calibration[$0]] == oos && held.contains(kinds[calibration[$0]]) }
                log("out-of-scope kinds held out, fold \(f + 1) of \(foldCount): \(held.sorted().joined(separator: ", ")) (\(rows.count) calibration items)")
                let foldHead = SoftmaxRegression.fit(
                    fitX.subset(keep), sparse: sparse?.subset(fit).subset(keep), labels: keep.map { fitY[$0] }, classes: k,
                    l2: best.l2, sparseL2: best.sparseL2, optimizer: optimizer, threads: threads).model
                let items = rows.map { calibration[$0] }
                let scored = foldHead.logits(features.subset(items), sparse: sparse?.subset(items), threads: threads)
                for (j, row) in rows.enumerated() { replaced.replaceSubrange(row * k..<(row + 1) * k, with: scored[j * k..<(j + 1) * k]) }
            }
            if foldCount > 0 { unseenKinds = (replaced, calibrationKinds.count, foldCount) }
        }
        let calibrated = Certifier.calibrate(logits: logits, labels: calibration.map { labels[$0] }, spec: spec, certifying: unseenKinds?.logits)
        let before = calibrated.before, after = calibrated.after
        log(String(format: "temperature %.3f: calibration NLL %.4f → %.4f, ECE %.4f → %.4f", calibrated.temperature,
                   before.negativeLogLikelihood, after.negativeLogLikelihood,
                   before.expectedCalibrationError(), after.expectedCalibrationError()))

        // Scope: label centroids from the fitted items; the floor is a low quantile of calibration similarities, or,
        // with out-of-scope data, chosen together with the thresholds.
        var scope: Adapter.Scope?
        var thresholds = calibrated.thresholds, massBounds = calibrated.massBounds
        var scopeCertificate: Adapter.OutOfScopeCertificate?
        if let oos = spec.outOfScope, let oosIndex = spec.outOfScopeIndex, !calibration.isEmpty {
            let inScopeFit = fit.indices.filter { fitY[$0] != oosIndex }
            let centroids = Certifier.centroids(fitX.subset(inScopeFit), labels: inScopeFit.map { fitY[$0] }, classes: oosIndex)
            var (joint, jointThresholds, jointBounds) = Certifier.jointScope(
                calibrated.certified, spec: spec, labelItems: calibrated.labelItems, outOfScope: oos, outOfScopeIndex: oosIndex,
                fitSimilarities: Classifier.similarities(fitX.subset(inScopeFit), centroids: centroids, labels: oosIndex),
                similarities: Classifier.similarities(features.subset(calibration), centroids: centroids, labels: oosIndex))
            let chosen = joint.candidates[joint.chosen]
            scope = Adapter.Scope(centroids: centroids, floor: chosen.floor, quantile: chosen.quantile)
            (thresholds, massBounds) = (jointThresholds, jointBounds)
            joint.expectedShare = appliedShare
            joint.kindsHeldOut = unseenKinds?.kinds
            joint.kindFolds = unseenKinds?.folds
            scopeCertificate = joint
            log(String(format: "out of scope: %d in-scope and %d out-of-scope calibration items%@; floor at the %.2f quantile chosen of %d (δ = %.4f each): in-scope coverage %.3f, out-of-scope recall %.3f",
                       joint.inScopeItems, joint.outOfScopeItems,
                       unseenKinds.map { ", the latter scored as unseen kinds (\($0.kinds) kinds in \($0.folds) folds)" } ?? "",
                       chosen.quantile, joint.candidates.count, joint.deltaPerCandidate,
                       chosen.inScopeCoverage, chosen.outOfScopeRecall))
        } else if spec.outOfScopeQuantile > 0 && !calibration.isEmpty {
            let centroids = Certifier.centroids(fitX, labels: fitY, classes: k)
            let similarities = Classifier.similarities(features.subset(calibration), centroids: centroids, labels: k).sorted()
            let floor = similarities[min(similarities.count - 1, Int(spec.outOfScopeQuantile * Double(similarities.count)))]
            scope = Adapter.Scope(centroids: centroids, floor: floor, quantile: spec.outOfScopeQuantile)
        }

        let adapter = Adapter(
            task: spec.name, kind: .trained, created: ISO8601DateFormatter().string(from: Date()),
            labels: spec.labels.map(\.name), backbone: extractor.backbone.model.identifier,
            backboneSHA256: extractor.backbone.digest, templateSHA256: extractor.templateDigest,
            dataSHA256: dataDigest, policySHA256: Adapter.policyDigest(spec), head: head, temperature: calibrated.temperature,
            l2: best.l2, lexical: lexical, crossValidation: candidates,
            calibration: .init(
                items: calibration.count, fitItems: fit.count, accuracy: after.accuracy,
                nllBefore: before.negativeLogLikelihood, nllAfter: after.negativeLogLikelihood,
                eceBefore: before.expectedCalibrationError(), eceAfter: after.expectedCalibrationError()),
            thresholds: thresholds, massBounds: massBounds,
            labelCalibrationItems: calibrated.labelItems, scope: scope, outOfScope: scopeCertificate,
            dataFile: dataFile.map { URL(fileURLWithPath: $0).standardizedFileURL.path },
            trainingTexts: Adapter.fingerprints(texts))
        return Outcome(adapter: adapter, fitIndices: fit, calibrationIndices: calibration)
    }

    /// A zero-shot adapter: each label's description (or name) embedded, inputs scored by cosine similarity to
    /// them. Nothing is certified, so every decision goes to review until labelled data allows training.
    public func zeroShot() throws -> Adapter {
        let descriptions = spec.labels.map { $0.description ?? $0.name.replacingOccurrences(of: "_", with: " ") }
        let vectors = try extractor.features(descriptions)
        let d = vectors.columns, weights = vectors.unitRows().values
        // Cosine similarities of normalised embeddings span about ±1; a fixed temperature of 0.05 spreads them into
        // probabilities. Uncalibrated by construction: no certificate is issued.
        let temperature = 0.05
        let uncertified = spec.riskClasses.map { c in
            Adapter.ClassThreshold(riskClass: c.name, certificate: .none(
                target: c.targetError, delta: spec.delta, reason: "zero-shot: no labelled calibration data yet"))
        }
        return Adapter(
            task: spec.name, kind: .zeroShot, created: ISO8601DateFormatter().string(from: Date()),
            labels: spec.labels.map(\.name), backbone: extractor.backbone.model.identifier,
            backboneSHA256: extractor.backbone.digest, templateSHA256: extractor.templateDigest, dataSHA256: "",
            policySHA256: Adapter.policyDigest(spec),
            head: SoftmaxRegression(classes: spec.labels.count, dimension: d, weights: weights, bias: .init(repeating: 0, count: spec.labels.count)),
            temperature: temperature, l2: 0, lexical: nil, crossValidation: [],
            calibration: .init(items: 0, fitItems: 0, accuracy: 0, nllBefore: 0, nllAfter: 0, eceBefore: 0, eceAfter: 0),
            thresholds: uncertified, massBounds: [], labelCalibrationItems: .init(repeating: 0, count: spec.labels.count), scope: nil)
    }
}
