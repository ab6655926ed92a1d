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

    /// Reads `path`; every text must be non-empty and within the size limit, and every label one of the spec's: a row
    /// with another label is refused, or, with `skipUnknownLabels`, left out and counted in `skipped`.
    public static func load(_ path: String, spec: TaskSpec, skipUnknownLabels: Bool = false) throws -> LabelledData {
        let table: CSVTable
        do { table = try CSVTable(path: path) } catch { throw DataError(file: path, message: "\(error)") }
        for column in [spec.textColumn, spec.labelColumn] where !table.header.contains(column) {
            throw DataError(file: path, message: "no column '\(column)' (the file has: \(table.header.joined(separator: ", "))); set data.text_column / data.label_column in \(spec.file)")
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
        var kept = [String](), labels = [Int]()
        for (row, name) in names.enumerated() {
            guard let label = spec.labelIndex(name) else { continue }
            let text = texts[row]
            if let problem = InputProblem(text, maxCharacters: spec.maxInputCharacters) {
                throw DataError(file: path, message: "row \(row + 2): " + problem.describe("the text", task: spec.name))
            }
            kept.append(text)
            labels.append(label)
        }
        if labels.isEmpty {
            throw DataError(file: path, message: unknown.isEmpty ? "no rows" : "no rows with one of the task's labels")
        }
        return LabelledData(file: path, digest: try Digest.of(file: path), texts: kept, labels: labels,
                            skipped: Dictionary(uniqueKeysWithValues: unknown.map { ($0.label, $0.rows.count) }))
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
    public static func certify(_ items: ScoredItems, spec: TaskSpec, labelItems: [Int]) -> (thresholds: [Adapter.ClassThreshold], massBounds: [Adapter.MassBound]) {
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
            let lowRiskPrediction = members.map { !highRisk.contains(classOf[items.top($0).label]) }
            let grid = massGrid.filter { $0 <= riskClass.maxMass }
            let found = RiskControl.largestBound(grid: grid, trials: members.count, target: target, delta: spec.delta) { bound in
                zip(masses, lowRiskPrediction).filter { $0.1 && $0.0 < bound }.count
            }
            let needed = Binomial.minimumTrials(target: target, delta: spec.delta)
            boundClasses.append(c)
            bounds.append(Adapter.MassBound(
                riskClass: riskClass.name, bound: found?.bound ?? 0, missTarget: target, items: members.count,
                misses: found?.misses ?? 0, upperBound: found?.upperBound ?? 1,
                reason: found != nil ? nil : members.count < needed
                    ? "too little calibration data: \(members.count) items of \(riskClass.name), at least \(needed) needed to certify a \(percent(target)) miss rate; low-risk labels are never auto-accepted until then"
                    : "even the strictest bound misses too many \(riskClass.name) items; low-risk labels are never auto-accepted"))
        }

        var thresholds = [Adapter.ClassThreshold]()
        for (c, riskClass) in spec.riskClasses.enumerated() {
            var scores = [Double](), errors = [Bool]()
            for i in 0..<items.count {
                let (label, confidence) = items.top(i)
                guard classOf[label] == c, labelItems[label] >= spec.training.minLabelItems else { continue }
                if !highRisk.contains(c), zip(bounds, boundClasses).contains(where: { mass(i, $1) >= $0.bound }) { continue }
                scores.append(confidence)
                errors.append(label != items.labels[i])
            }
            thresholds.append(Adapter.ClassThreshold(
                riskClass: riskClass.name,
                certificate: RiskControl.threshold(scores: scores, errors: errors, target: riskClass.targetError, delta: spec.delta)))
        }
        return (thresholds, bounds)
    }

    /// What calibrating a head on held-out items gives.
    public struct Result: Sendable {
        /// The temperature fitted by log-likelihood (1 with no items).
        public var temperature: Double
        /// The items scored before and after scaling.
        public var before, after: ScoredItems
        /// Calibration items per true label.
        public var labelItems: [Int]
        /// Certified threshold per risk class.
        public var thresholds: [Adapter.ClassThreshold]
        /// Certified mass bound per high-risk class.
        public var massBounds: [Adapter.MassBound]
    }

    /// Fits the temperature on the `logits` of held-out items with true `labels`, then certifies the thresholds on
    /// the scaled probabilities.
    public static func calibrate(logits: [Float], labels: [Int], spec: TaskSpec) -> Result {
        let k = spec.labels.count
        let temperature = labels.isEmpty ? 1 : TemperatureScaling.fit(logits, labels: labels, classes: k)
        let before = ScoredItems(probabilities: softmax(logits, classes: k), labels: labels, classes: k)
        let after = ScoredItems(probabilities: softmax(logits, classes: k, temperature: temperature), labels: labels, classes: k)
        var labelItems = [Int](repeating: 0, count: k)
        for y in labels { labelItems[y] += 1 }
        let (thresholds, bounds) = certify(after, spec: spec, labelItems: labelItems)
        return Result(temperature: temperature, before: before, after: after, labelItems: labelItems,
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
    public func train(features: FeatureMatrix, texts: [String], labels: [Int], dataDigest: String, dataFile: String? = nil,
                      split: (fit: [Int], calibration: [Int])? = nil) throws -> Outcome {
        let k = spec.labels.count
        let (fit, calibration) = split ?? Splits.stratified(labels, fraction: spec.training.calibrationFraction, seed: spec.training.seed)
        precondition(Set(fit).isDisjoint(with: calibration), "fit and calibration items overlap")
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

        let calibrated = Certifier.calibrate(
            logits: head.logits(features.subset(calibration), sparse: sparse?.subset(calibration), threads: threads),
            labels: calibration.map { labels[$0] }, spec: spec)
        let before = calibrated.before, after = calibrated.after
        log(String(format: "temperature %.3f: calibration NLL %.4f → %.4f, ECE %.4f → %.4f", calibrated.temperature,
                   before.negativeLogLikelihood, after.negativeLogLikelihood,
                   before.expectedCalibrationError(), after.expectedCalibrationError()))

        // Scope: label centroids from the fitted items; the floor is a low quantile of calibration similarities.
        var scope: Adapter.Scope?
        if spec.outOfScopeQuantile > 0 && !calibration.isEmpty {
            let d = features.columns, unit = fitX.unitRows()
            var sums = [Float](repeating: 0, count: k * d)
            for (row, label) in fitY.enumerated() {
                for (p, v) in unit.row(row).enumerated() { sums[label * d + p] += v }
            }
            let centroids = FeatureMatrix(rows: k, columns: d, values: sums).unitRows().values
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
            thresholds: calibrated.thresholds, massBounds: calibrated.massBounds,
            labelCalibrationItems: calibrated.labelItems, scope: scope,
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
