import Crypto
import Foundation
import Statistics

/// A task head trained on one backbone's features, with its calibration, thresholds and the digests of everything it
/// depends on. Stored as versioned JSON beside the task spec.
public struct Adapter: Codable, Sendable {
    /// File format name.
    public static let format = "microscale-adapter"
    /// Current format version; older or newer files are refused.
    public static let currentVersion = 1

    /// How the head was made.
    public enum Kind: String, Codable, Sendable {
        /// Logistic regression on labelled examples, calibrated and certified.
        case trained
        /// Nearest label description, no labelled data: nothing is certified.
        case zeroShot
    }

    /// Always `microscale-adapter`.
    public var format = Adapter.format
    /// Format version.
    public var version = Adapter.currentVersion
    /// Task name.
    public var task: String
    /// Trained or zero-shot.
    public var kind: Kind
    /// When it was made (ISO 8601).
    public var created: String
    /// The labels, in head order.
    public var labels: [String]
    /// The backbone's identifier (informational).
    public var backbone: String
    /// SHA-256 of the backbone's files.
    public var backboneSHA256: String
    /// SHA-256 of the template and truncation.
    public var templateSHA256: String
    /// SHA-256 of the training data file (empty for zero-shot).
    public var dataSHA256: String
    /// SHA-256 of the risk settings the thresholds were certified for.
    public var policySHA256: String
    /// The head.
    public var head: SoftmaxRegression
    /// Temperature dividing the logits.
    public var temperature: Double
    /// L2 strength chosen.
    public var l2: Double
    /// Lexical features the head also reads (nil: none).
    public var lexical: LexicalFeatures?
    /// Cross-validation scores of each strength tried.
    public var crossValidation: [ModelSelection.Candidate]
    /// Calibration-set figures.
    public var calibration: CalibrationSummary
    /// Certified acceptance threshold per risk class.
    public var thresholds: [ClassThreshold]
    /// Per high-risk class, the largest mass a low-risk acceptance may carry.
    public var massBounds: [MassBound]
    /// Calibration items per label (true label).
    public var labelCalibrationItems: [Int]
    /// The scope check: each label's mean training feature vector (unit length), and the similarity below which an
    /// input is out of scope (nil: no check).
    public var scope: Scope?
    /// How the scope floor and the thresholds were chosen together over out-of-scope calibration data (nil: the task
    /// declares no out-of-scope label).
    public var outOfScope: OutOfScopeCertificate?
    /// The training data file as given to `train` (absolute), so a retrain can be suggested with it (nil: not recorded).
    public var dataFile: String?
    /// Fingerprints of every training text, fitted and calibration items alike (the first 8 bytes of each text's
    /// SHA-256, sorted, base64), so an evaluation can tell which of its texts the adapter has seen (nil: not recorded).
    public var trainingTexts: String?

    /// Nearest-centroid scope check.
    public struct Scope: Codable, Sendable {
        /// `labels × dimension` unit-length centroids of the fitted items' features.
        public var centroids: [Float]
        /// Inputs whose highest cosine similarity to a centroid is below this are out of scope: the given quantile
        /// of the calibration items' similarities, so about that share of in-scope inputs is flagged.
        public var floor: Double
        /// The quantile used.
        public var quantile: Double
    }

    /// One scope floor tried by the joint search, with what it and the thresholds certified under it do on calibration.
    public struct ScopeCandidate: Codable, Sendable, Equatable {
        /// Quantile of the fitted in-scope items' similarities (0: no floor).
        public var quantile: Double
        /// The similarity floor.
        public var floor: Double
        /// Calibration items accepted, in scope and out of scope.
        public var inScopeAccepted, outOfScopeAccepted: Int
        /// Wrong among the accepted (out-of-scope ones included).
        public var errors: Int
        /// Accepted share of in-scope calibration items.
        public var inScopeCoverage: Double
        /// Share of out-of-scope calibration items not accepted (1 when there are none).
        public var outOfScopeRecall: Double
    }

    /// The joint choice of scope floor and thresholds (``Certifier/jointScope``).
    public struct OutOfScopeCertificate: Codable, Sendable {
        /// The out-of-scope label.
        public var label: String
        /// Calibration items in scope and out of scope (after subsampling to the expected share).
        public var inScopeItems, outOfScopeItems: Int
        /// The configured share of out-of-scope traffic (nil: the data's).
        public var expectedShare: Double?
        /// δ of each candidate's tests (the spec's δ over the number of candidates).
        public var deltaPerCandidate: Double
        /// Every floor tried.
        public var candidates: [ScopeCandidate]
        /// Index of the one chosen (its thresholds and bounds are the adapter's).
        public var chosen: Int
        /// Out-of-scope kinds scored by a head fitted without them (``OutOfScope/kindColumn``), in how many folds
        /// (nil: every out-of-scope item was scored by the served head).
        public var kindsHeldOut: Int? = nil
        public var kindFolds: Int? = nil
    }

    /// Calibration-set figures before and after temperature scaling.
    public struct CalibrationSummary: Codable, Sendable {
        /// Items held out for calibration.
        public var items: Int
        /// Items the head was fitted on.
        public var fitItems: Int
        /// Accuracy on the calibration items.
        public var accuracy: Double
        /// Negative log-likelihood before and after scaling.
        public var nllBefore, nllAfter: Double
        /// Expected calibration error (15 bins) before and after scaling.
        public var eceBefore, eceAfter: Double
    }

    /// A risk class's certified threshold.
    public struct ClassThreshold: Codable, Sendable {
        /// Risk class.
        public var riskClass: String
        /// The certificate.
        public var certificate: CertifiedThreshold
    }

    /// The asymmetric bound of one high-risk class.
    public struct MassBound: Codable, Sendable {
        /// The high-risk class.
        public var riskClass: String
        /// Low-risk acceptance requires the class's probability mass below this (0: never accept low-risk).
        public var bound: Double
        /// Target rate at which items of the class may be auto-accepted as low-risk.
        public var missTarget: Double
        /// Calibration items of the class.
        public var items: Int
        /// Of those, how many the bound would let be accepted as low-risk (before thresholds).
        public var misses: Int
        /// Clopper-Pearson upper bound on that rate (1 when not certified).
        public var upperBound: Double
        /// Why no positive bound could be certified, when none could.
        public var reason: String?
    }
}

/// Why an adapter does not fit a task.
public struct AdapterError: Error, CustomStringConvertible, Sendable {
    /// The adapter file.
    public var file: String
    /// What is wrong and what to do.
    public var message: String
    public var description: String { "\(file): \(message)" }
}

extension Adapter {
    /// Digest of the settings thresholds depend on: labels, their risk classes, targets, confidence, minimum items.
    public static func policyDigest(_ spec: TaskSpec) -> String {
        var parts = spec.labels.map { "\($0.name)=\($0.risk)" }
        parts += spec.riskClasses.map { "\($0.name):\($0.targetError):\($0.missTarget ?? -1):\($0.maxMass)" }
        parts.append("confidence=\(spec.confidence) min=\(spec.training.minLabelItems)")
        if let o = spec.outOfScope {
            parts.append("out_of_scope=\(o.label) share=\(o.expectedShare ?? -1) route=\(o.route.rawValue) floors=\(o.floorQuantiles) kinds=\(o.kindColumn ?? "-")/\(o.kindFolds)")
        }
        return Digest.of(parts.joined(separator: "\n"))
    }

    /// Fingerprints of `texts` as `trainingTexts` stores them (nil for none).
    public static func fingerprints(_ texts: [String]) -> String? {
        guard !texts.isEmpty else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(texts.count * 8)
        for value in Set(texts.map(fingerprint)).sorted() {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return Data(bytes).base64EncodedString()
    }

    /// The first 8 bytes of the SHA-256 of `text`.
    static func fingerprint(_ text: String) -> UInt64 {
        SHA256.hash(data: Data(text.utf8)).prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// For each of `texts`, whether it is one of the training texts (nil when the adapter does not record them).
    public func trainedOn(_ texts: [String]) -> [Bool]? {
        guard let stored = trainingTexts, let data = Data(base64Encoded: stored), data.count % 8 == 0 else { return nil }
        let known = Set(stride(from: 0, to: data.count, by: 8).map { i in
            data[data.startIndex + i..<data.startIndex + i + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        })
        return texts.map { known.contains(Adapter.fingerprint($0)) }
    }

    /// The command that retrains an adapter for `spec`: with the file it was trained on when that is known and still
    /// there, else with a placeholder for the labelled CSV (`--zero-shot` for a zero-shot adapter).
    public static func retrainCommand(_ spec: TaskSpec, dataFile: String?, zeroShot: Bool = false) -> String {
        if zeroShot { return "`microscale train --task \(spec.file) --zero-shot` (or --data LABELLED.csv once there are labels)" }
        if let dataFile, FileManager.default.fileExists(atPath: dataFile) {
            return "`microscale train --task \(spec.file) --data \(dataFile)` (the file it was trained on)"
        }
        return "`microscale train --task \(spec.file) --data LABELLED.csv` (LABELLED.csv: your labelled CSV with the task's text and label columns; the task names no data file)"
    }

    /// Writes the adapter as JSON.
    public func write(to path: String) throws {
        try json().write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The adapter file's bytes (pretty-printed, sorted keys): what `write` stores and the store keeps as a version.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// Reads an adapter from its JSON bytes and checks it against `spec` and the backbone and template of `extractor`.
    public static func decode(_ data: Data, source: String, for spec: TaskSpec, extractor: FeatureExtractor) throws -> Adapter {
        try decode(data, source: source, for: spec, backboneDigest: extractor.backbone.digest,
                   backboneIdentifier: extractor.backbone.model.identifier, templateDigest: extractor.templateDigest)
    }

    /// Reads an adapter and checks that it was made for this spec's labels, backbone, template and risk settings.
    public static func load(
        _ path: String, for spec: TaskSpec, backboneDigest: String, backboneIdentifier: String, templateDigest: String
    ) throws -> Adapter {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AdapterError(file: path, message: "no adapter here: train one with \(retrainCommand(spec, dataFile: nil))")
        }
        return try decode(data, source: path, for: spec, backboneDigest: backboneDigest, backboneIdentifier: backboneIdentifier,
                          templateDigest: templateDigest)
    }

    /// Reads an adapter from its JSON bytes (`source` names where they came from in errors: a file, or a version in the
    /// store) and checks it as ``load(_:for:backboneDigest:backboneIdentifier:templateDigest:)`` does.
    public static func decode(
        _ data: Data, source path: String, for spec: TaskSpec, backboneDigest: String, backboneIdentifier: String, templateDigest: String
    ) throws -> Adapter {
        let adapter: Adapter
        do { adapter = try JSONDecoder().decode(Adapter.self, from: data) } catch {
            throw AdapterError(file: path, message: "not a readable adapter file (\(error)); retrain with \(retrainCommand(spec, dataFile: nil))")
        }
        guard adapter.format == format, adapter.version == currentVersion else {
            throw AdapterError(file: path, message: "format \(adapter.format) v\(adapter.version); this build reads \(format) v\(currentVersion): retrain with \(retrainCommand(spec, dataFile: adapter.dataFile, zeroShot: adapter.kind == .zeroShot))")
        }
        let retrain = "retrain with \(retrainCommand(spec, dataFile: adapter.dataFile, zeroShot: adapter.kind == .zeroShot))"
        guard adapter.labels == spec.labels.map(\.name) else {
            throw AdapterError(file: path, message: "it was trained for labels \(adapter.labels.joined(separator: ", ")); the task now has \(spec.labels.map(\.name).joined(separator: ", ")): \(retrain)")
        }
        guard adapter.backboneSHA256 == backboneDigest, adapter.backbone == backboneIdentifier else {
            throw AdapterError(file: path, message: "it was trained on backbone \(adapter.backbone) (sha256 \(adapter.backboneSHA256.prefix(12))…) but the task's backbone is \(backboneIdentifier) (sha256 \(backboneDigest.prefix(12))…): \(retrain)")
        }
        guard adapter.templateSHA256 == templateDigest else {
            throw AdapterError(file: path, message: "it was trained with a different template or input truncation than the task now pins: \(retrain)")
        }
        guard adapter.policySHA256 == policyDigest(spec) else {
            throw AdapterError(file: path, message: "the task's risk classes, targets or confidence changed since its thresholds were certified: \(retrain)")
        }
        guard adapter.head.classes == spec.labels.count else {
            throw AdapterError(file: path, message: "the head has \(adapter.head.classes) outputs for \(spec.labels.count) labels: \(retrain)")
        }
        return adapter
    }
}
