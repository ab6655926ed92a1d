import ArgumentParser
import Cascade
import Foundation
import Logging
import Server
import Store

/// `microscale serve --config FILE`: the cascade as an HTTP service.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the cascade over HTTP: decisions, an OpenAI-compatible chat API, the review queue, metrics (see openapi.yaml).")

    @Option(help: "The service configuration (YAML), e.g. examples/serve.yaml.")
    var config: String

    @Option(help: "Port (overrides the file; 0 picks a free one and prints it).")
    var port: Int?

    @Option(help: "Most inputs per engine pass (overrides the file; 1 turns batching off).")
    var maxBatch: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "microscale")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        var settings = try ServiceConfig.load(config)
        if let port { settings.port = port }
        if let maxBatch { settings.limits.maxBatch = max(1, maxBatch) }
        let loopback = ["127.0.0.1", "localhost", "::1"].contains(settings.host)
        if settings.apiKeys.isEmpty && !loopback {
            throw ValidationError("no auth.api_keys are configured: refusing to listen on \(settings.host); set keys or bind to 127.0.0.1")
        }
        if settings.apiKeys.isEmpty { logger.warning("no API keys configured: the API is open to anyone on this machine") }
        let service = try await CascadeService.load(settings, logger: logger)
        try await makeApplication(service: service, logger: logger).runService()
        await service.shutdown()
        logger.info("stopped")
    }
}

/// `microscale drift --config FILE`: escalation, review and correction rates and the confidence distribution per task,
/// over the newest window of decisions beside the one before, read from the decision log. It needs the store, the
/// tasks and the drift settings, not the service's keys: `env:` keys that are not set are no error here.
struct DriftCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift", abstract: "Drift per task from the decision log, with the configured alerts.",
        discussion: """
            Every decision counts under its final route (accepted, escalated, review: they add up to 100%); \
            escalations the larger tier did not answer ended in review and are shown again as "esc.failed", a part of \
            the review share. Alerts wait until the current window has drift.min_samples decisions (default 30; for \
            the correction rate, that many resolved reviews); until then the output says which are withheld. \
            Audits (audit.share of accepted decisions, reviewed at random): per risk class the realised error over the \
            newest audit.window audits with exact Clopper-Pearson bounds; "within" when the upper bound is at or under \
            the target, "breached" (an alert) when the lower bound is above it. The service's API keys are not needed.
            """)

    @Option(help: "The service configuration (YAML): its store, tasks and drift settings.")
    var config: String

    @Option(help: "Only this task.")
    var task: String?

    @Option(help: "Decisions per window (default: the configuration's).")
    var window: Int?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Flag(help: "Exit with status 4 when an alert fires.")
    var failOnAlert = false

    func run() async throws {
        var settings = try ServiceConfig.load(config, requireSecrets: false)
        if let window { settings.drift.window = window }
        // Each task's name, and the classification specs for the audits' risk classes (an extraction task names a schema).
        var served: [String] = [], specs: [String: TaskSpec] = [:], unaudited: [String: String] = [:]
        for entry in settings.tasks {
            let reader = try YAMLReader.load(entry.path)
            let name = try reader.required("name").string()
            served.append(name)
            guard reader.child("schema") == nil else { continue }
            // A spec that cannot load here (a model missing on this host) costs its audit figures only, and says so.
            do { specs[name] = try TaskSpec.load(entry.path) } catch { unaudited[name] = "\(error)" }
        }
        if let task, !served.contains(task) {
            throw ValidationError("no task '\(task)' in \(config); its tasks: \(served.joined(separator: ", "))")
        }
        let names = task.map { [$0] } ?? served
        // Reading drift never creates a log: a missing SQLite file is a mistake in the path, not an empty log.
        if settings.store.hasPrefix("sqlite:") {
            let path = String(settings.store.dropFirst("sqlite:".count))
            guard FileManager.default.fileExists(atPath: path) else {
                throw ValidationError("no decision log at \(path) (store in \(config)); the server creates it when it first starts")
            }
        }
        let store = try await openStore(url: settings.store)
        var alerts = 0
        for name in names {
            let report = try await DriftReport.measure(task: name, store: store, drift: settings.drift, spec: specs[name], audit: settings.audit)
            if let why = unaudited[name] { FileHandle.standardError.write(Data("\(name): audits not shown: the task spec does not load here: \(why)\n".utf8)) }
            alerts += report.alerts.count
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
                continue
            }
            print("== \(name): window of \(report.window) decisions; alerts need \(report.minSamples) (drift.min_samples)")
            func pct(_ v: Double?) -> String { v.map { String(format: "%5.1f%%", $0 * 100) } ?? "    -" }
            func num(_ v: Double?) -> String { v.map { String(format: "%6.3f", $0) } ?? "     -" }
            func bars(_ h: [Int]) -> String {
                let top = max(h.max() ?? 0, 1), ticks = Array(" ▁▂▃▄▅▆▇█")
                return String(h.map { $0 == 0 ? ticks[0] : ticks[max(1, Int((Double($0) / Double(top) * 8).rounded(.up)))] })
            }
            print("window     decisions  accepted  escalated  review  (esc.failed)  corrected(of resolved)  mean conf  conf<0.5  confidence 0…1")
            for (label, w) in [("current", report.current), ("previous", report.previous)] {
                guard let w else { print("previous   (none yet)"); continue }
                print(label.padding(toLength: 10, withPad: " ", startingAt: 0) + " " + String(format: "%9d", w.decisions) + "    "
                      + pct(w.acceptRate) + "     " + pct(w.escalationRate) + "  " + pct(w.reviewRate) + "      (" + pct(w.escalationFailureRate) + ")   "
                      + pct(w.correctionRate) + " (\(w.resolved))".padding(toLength: 15, withPad: " ", startingAt: 0) + "  "
                      + num(w.meanConfidence) + "     " + pct(w.lowConfidenceShare) + "  " + bars(w.confidenceHistogram))
            }
            if !report.audit.isEmpty {
                print("audits of accepted decisions (newest \(settings.audit.window) per risk class, alerts from \(settings.audit.minAudits); share \(settings.audit.share); adapter version \(report.auditAdapterVersion.map { String($0.prefix(12)) } ?? "any")):")
                print("risk class        audited  wrong (out of scope)  realised error  bounds at confidence      target  state")
                for a in report.audit {
                    print(a.riskClass.padding(toLength: 16, withPad: " ", startingAt: 0) + " " + String(format: "%8d  %5d (%d)", a.audited, a.wrong, a.outOfScope)
                          .padding(toLength: 29, withPad: " ", startingAt: 0) + "  " + pct(a.realisedError) + "         "
                          + String(format: "%5.2f%%–%5.2f%% at %.0f%%", a.lowerBound * 100, a.upperBound * 100, a.confidence * 100) + "   "
                          + pct(a.target) + "  " + a.state.rawValue)
                }
            }
            for alert in report.alerts { print("ALERT \(alert.message)") }
            for w in report.withheld { print(w.message) }
        }
        await store.close()
        if failOnAlert && alerts > 0 { throw ExitCode(4) }
    }
}
