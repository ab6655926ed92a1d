import Cascade
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Store

/// Rates over one window of a task's decisions.
///
/// Every decision counts under exactly one final route, the one the log records, so `acceptRate + escalationRate +
/// reviewRate` is 1. A failed escalation (the larger tier did not answer, so the input went to a person) ended in
/// review and counts there only; `escalationFailureRate` reports those failures on their own, as a part of
/// `reviewRate`, not beside it.
public struct DriftWindow: Codable, Sendable, Equatable {
    /// Decisions in the window.
    public var decisions: Int
    /// Share that ended accepted from the small model.
    public var acceptRate: Double
    /// Share that ended answered by the larger tier.
    public var escalationRate: Double
    /// Share that ended in review, failed escalations included.
    public var reviewRate: Double
    /// Share sent to the larger tier that it did not answer, so they went to review: a subset of `reviewRate`.
    public var escalationFailureRate: Double
    /// Mean calibrated confidence (decisions that have one).
    public var meanConfidence: Double?
    /// Share with confidence below 0.5.
    public var lowConfidenceShare: Double?
    /// Confidence histogram, ten bins over [0, 1].
    public var confidenceHistogram: [Int]
    /// Reviewed items answered in the window's span.
    public var resolved: Int
    /// Share of those the reviewer corrected.
    public var correctionRate: Double?

    enum CodingKeys: String, CodingKey {
        case decisions, resolved
        case acceptRate = "accept_rate", escalationRate = "escalation_rate", reviewRate = "review_rate", meanConfidence = "mean_confidence"
        case escalationFailureRate = "escalation_failure_rate"
        case lowConfidenceShare = "low_confidence_share", confidenceHistogram = "confidence_histogram", correctionRate = "correction_rate"
    }

    /// Rates of `decisions` and of `resolved` review items.
    public init(decisions: [DecisionRecord], resolved: [ReviewItem]) {
        let n = Double(max(decisions.count, 1))
        self.decisions = decisions.count
        let routes = decisions.map { Route(outcome: $0.route) }
        acceptRate = Double(routes.count { $0 == .accept }) / n
        escalationRate = Double(routes.count { $0 == .escalate }) / n
        reviewRate = Double(routes.count { $0 == .review }) / n
        escalationFailureRate = Double(decisions.count { Route(outcome: $0.route) == .review && DecisionReason(rawValue: $0.reason) == .escalationFailed }) / n
        let confidences = decisions.compactMap(\.confidence)
        meanConfidence = confidences.isEmpty ? nil : confidences.reduce(0, +) / Double(confidences.count)
        lowConfidenceShare = confidences.isEmpty ? nil : Double(confidences.count { $0 < 0.5 }) / Double(confidences.count)
        var histogram = [Int](repeating: 0, count: 10)
        for c in confidences { histogram[min(9, max(0, Int(c * 10)))] += 1 }
        confidenceHistogram = histogram
        self.resolved = resolved.count
        correctionRate = resolved.isEmpty ? nil : Double(resolved.count { $0.outcome.flatMap(ReviewOutcome.init) == .corrected }) / Double(resolved.count)
    }
}

/// A task's drift: the latest window of decisions beside the one before it, and the alerts that fire.
///
/// A rate over a handful of decisions says little, so alerts wait for enough of them: the rate and confidence alerts
/// for `drift.min_samples` decisions in the current window (default 30), the correction-rate alert for as many
/// resolved reviews. Until then an alert that is configured is withheld, and `withheld` says so.
public struct DriftReport: Codable, Sendable {
    /// Task name.
    public var task: String
    /// Decisions per window.
    public var window: Int
    /// Decisions (or, for the correction rate, resolved reviews) the current window needs before alerts may fire.
    public var minSamples: Int
    /// The newest `window` decisions.
    public var current: DriftWindow
    /// The `window` decisions before them (nil until there are any).
    public var previous: DriftWindow?
    /// Thresholds crossed.
    public var alerts: [Alert]
    /// Configured alerts not checked yet because the window has too few decisions or resolved reviews.
    public var withheld: [Alert]
    /// Per risk class, the audited error of accepted decisions over the newest `audit.window` audits (empty for an
    /// extraction task, or with no spec at hand).
    public var audit: [AuditStatus] = []
    /// The adapter version whose accepted decisions the audits are of (nil: any).
    public var auditAdapterVersion: String? = nil

    enum CodingKeys: String, CodingKey {
        case task, window, current, previous, alerts, withheld, audit
        case auditAdapterVersion = "audit_adapter_version"
        case minSamples = "min_samples"
    }

    /// A crossed threshold.
    public struct Alert: Codable, Sendable, Equatable {
        /// escalation_rate, escalation_failure_rate, review_rate, correction_rate, mean_confidence or audit_error.
        public var metric: String
        /// In words.
        public var message: String
        /// The risk class an audit_error alert is about.
        public var riskClass: String? = nil

        enum CodingKeys: String, CodingKey {
            case metric, message
            case riskClass = "risk_class"
        }

        /// What identifies the alert while it lasts.
        var key: String { metric + "/" + (riskClass ?? "") }
    }

    /// Reads the newest 2 × `window` decisions and resolved reviews of `task` and compares the two halves; with the
    /// task's `spec`, the audits of accepted decisions per risk class too (an alert, `audit_error`, for each class whose
    /// guarantee the audits show breached: ``AuditStatus``).
    public static func measure(
        task: String, store: any DecisionStore, drift: ServiceConfig.Drift, spec: TaskSpec? = nil, audit: ServiceConfig.Audit = .init()
    ) async throws -> DriftReport {
        let window = drift.window
        let decisions = try await store.recentDecisions(task: task, limit: 2 * window)
        let resolved = try await store.recentResolved(task: task, limit: 2 * window)
        let current = Array(decisions.prefix(window)), older = Array(decisions.dropFirst(window))
        // Reviews are split at the oldest decision of the current window.
        let boundary = current.last?.createdAt ?? .distantPast
        let currentResolved = resolved.filter { ($0.resolvedAt ?? .distantPast) >= boundary }
        let olderResolved = resolved.filter { ($0.resolvedAt ?? .distantPast) < boundary }
        let now = DriftWindow(decisions: current, resolved: currentResolved)
        var alerts: [Alert] = []
        func check(_ metric: String, _ value: Double?, above limit: Double?) {
            guard let value, let limit, value > limit else { return }
            alerts.append(Alert(metric: metric, message: String(
                format: "%@ %.3f is above the alert threshold %.3f over the last %d decisions", metric, value, limit, now.decisions)))
        }
        // A rate over a handful of decisions says little: alerts wait for drift.min_samples of them.
        var withheld: [Alert] = []
        func withhold(_ metric: String, _ limit: Double?, have: Int, of what: String) {
            guard limit != nil else { return }
            withheld.append(Alert(metric: metric, message: "\(metric) alert withheld: \(have) \(what) in the current window, alerts need drift.min_samples = \(drift.minSamples)"))
        }
        if now.decisions >= drift.minSamples {
            check("escalation_rate", now.escalationRate, above: drift.escalationRate)
            check("review_rate", now.reviewRate, above: drift.reviewRate)
            // A tier that fails moves decisions from escalated to review: its own alert says so.
            check("escalation_failure_rate", now.escalationFailureRate, above: drift.escalationFailureRate)
            if let limit = drift.meanConfidence, let mean = now.meanConfidence, mean < limit {
                alerts.append(Alert(metric: "mean_confidence", message: String(
                    format: "mean_confidence %.3f is below the alert threshold %.3f over the last %d decisions", mean, limit, now.decisions)))
            }
        } else {
            withhold("escalation_rate", drift.escalationRate, have: now.decisions, of: "decisions")
            withhold("review_rate", drift.reviewRate, have: now.decisions, of: "decisions")
            withhold("escalation_failure_rate", drift.escalationFailureRate, have: now.decisions, of: "decisions")
            withhold("mean_confidence", drift.meanConfidence, have: now.decisions, of: "decisions")
        }
        if now.resolved >= drift.minSamples {
            check("correction_rate", now.correctionRate, above: drift.correctionRate)
        } else {
            withhold("correction_rate", drift.correctionRate, have: now.resolved, of: "resolved reviews")
        }
        var audits: [AuditStatus] = [], auditVersion: String?
        if let spec {
            (audits, auditVersion) = try await auditStatuses(spec: spec, store: store, audit: audit)
            for a in audits { if let message = a.alert { alerts.append(Alert(metric: "audit_error", message: message, riskClass: a.riskClass)) } }
        }
        return DriftReport(task: task, window: window, minSamples: drift.minSamples, current: now,
                           previous: older.isEmpty ? nil : DriftWindow(decisions: older, resolved: olderResolved), alerts: alerts,
                           withheld: withheld, audit: audits, auditAdapterVersion: auditVersion)
    }
}

/// Per risk class of a classification task, its audits' status over the newest `audit.window` answered audits of the
/// class in `store`, of decisions made by the active adapter version (the store's; any version when it names none, and
/// a promotion starts the windows afresh). Returns the version too.
func auditStatuses(spec: TaskSpec, store: any DecisionStore, audit: ServiceConfig.Audit) async throws -> (statuses: [AuditStatus], adapterVersion: String?) {
    let active = try await store.adapterVersions(task: spec.name).first { $0.status == .active }?.version
    var rows: [AuditStatus.Audit] = []
    for riskClass in spec.riskClasses where riskClass.name != spec.outOfScope?.label {
        let labels = spec.labels.filter { $0.risk == riskClass.name }.map(\.name)
        rows += try await store.audits(task: spec.name, labels: labels, adapterVersion: active, limit: audit.window)
            .map { AuditStatus.Audit(accepted: $0.accepted, reviewer: $0.reviewer) }
    }
    return (AuditStatus.of(rows, spec: spec, window: audit.window, minAudits: audit.minAudits), active)
}

/// Recomputes every task's drift from the store at an interval (so replicas sharing a store agree), publishes it as
/// gauges and logs a warning when an alert starts.
struct DriftMonitor: Service {
    let tasks: [String]
    let store: any DecisionStore
    let drift: ServiceConfig.Drift
    let logger: Logger
    /// Specs of the classification tasks, for their audits.
    var specs: [String: TaskSpec] = [:]
    var audit = ServiceConfig.Audit()

    func run() async throws {
        var alerting: [String: Set<String>] = [:]
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            for task in tasks {
                do {
                    let report = try await DriftReport.measure(task: task, store: store, drift: drift, spec: specs[task], audit: audit)
                    publish(report)
                    // Warn when an alert starts, not on every recomputation while it lasts.
                    for alert in report.alerts where !(alerting[task] ?? []).contains(alert.key) {
                        logger.warning("drift alert", metadata: ["task": "\(task)", "metric": "\(alert.metric)", "alert": "\(alert.message)"])
                    }
                    alerting[task] = Set(report.alerts.map(\.key))
                } catch {
                    logger.error("drift measurement failed", metadata: ["task": "\(task)", "error": "\(error)"])
                }
            }
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int(drift.interval * 1000))) } } catch { return }
        }
    }

    func publish(_ r: DriftReport) {
        let d = [("task", r.task)]
        Gauge(label: "microscale_drift_escalation_rate", dimensions: d).record(r.current.escalationRate)
        Gauge(label: "microscale_drift_review_rate", dimensions: d).record(r.current.reviewRate)
        Gauge(label: "microscale_drift_escalation_failure_rate", dimensions: d).record(r.current.escalationFailureRate)
        Gauge(label: "microscale_drift_accept_rate", dimensions: d).record(r.current.acceptRate)
        Gauge(label: "microscale_drift_window_decisions", dimensions: d).record(r.current.decisions)
        if let c = r.current.correctionRate { Gauge(label: "microscale_drift_correction_rate", dimensions: d).record(c) }
        if let m = r.current.meanConfidence { Gauge(label: "microscale_drift_mean_confidence", dimensions: d).record(m) }
        if let l = r.current.lowConfidenceShare { Gauge(label: "microscale_drift_low_confidence_share", dimensions: d).record(l) }
        Gauge(label: "microscale_drift_alerts", dimensions: d).record(r.alerts.count)
        for a in r.audit {
            let c = [("task", r.task), ("risk_class", a.riskClass)]
            Gauge(label: "microscale_audit_audited", dimensions: c).record(a.audited)
            Gauge(label: "microscale_audit_wrong", dimensions: c).record(a.wrong)
            if let e = a.realisedError { Gauge(label: "microscale_audit_error", dimensions: c).record(e) }
            Gauge(label: "microscale_audit_error_upper_bound", dimensions: c).record(a.upperBound)
            Gauge(label: "microscale_audit_error_lower_bound", dimensions: c).record(a.lowerBound)
            Gauge(label: "microscale_audit_target", dimensions: c).record(a.target)
            Gauge(label: "microscale_audit_breached", dimensions: c).record(a.state == .breached ? 1 : 0)
        }
    }
}
