import Cascade
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
@testable import Server
import Store
import StructuredOutput

/// What the fake tiers saw.
actor Recorder {
    var requests: [(headers: [String: String], body: String)] = []
    var calls = 0
    func add(_ headers: [String: String], _ body: String) { requests.append((headers, body)); calls += 1 }
}

/// Larger tiers that misbehave on purpose: one hangs, one answers garbage, one fails once with 503 then answers.
func withFakeTiers(_ body: @Sendable (_ base: String, _ recorder: Recorder) async throws -> Void) async throws {
    let recorder = Recorder()
    let router = Router()
    router.post("/hang/v1/chat/completions") { _, _ -> Response in
        try await Task.sleep(for: .seconds(6))
        return Response(status: .ok)
    }
    router.post("/garbage/v1/chat/completions") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/html"], body: .init(byteBuffer: ByteBuffer(string: "<html>upstream proxy error</html>")))
    }
    router.post("/flaky/v1/chat/completions") { request, _ -> Response in
        var request = request
        let body = String(buffer: try await request.collectBody(upTo: 1 << 20))
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
        await recorder.add(headers, body)
        if await recorder.calls == 1 { return Response(status: .serviceUnavailable) }
        let content = JSONValue.quote(#"{"label": "billing"}"#)
        let reply = #"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":\#(content)},"finish_reason":"stop"}]}"#
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: reply)))
    }
    let app = Application(router: router)
    try await app.test(.live) { client in try await body("http://127.0.0.1:\(client.port!)", recorder) }
}

func tier(_ url: String, timeout: Double = 2, retries: Int = 1, breaker: Int = 5) -> ServiceConfig.Escalation {
    var t = ServiceConfig.Escalation(baseURL: url, model: "large")
    t.timeout = timeout
    t.retries = retries
    t.backoff = 0.05
    t.breakerFailures = breaker
    t.breakerCooldown = 60
    return t
}

/// The escalation tier failing in each way it can: nothing is dropped, everything that is not answered is reviewed.
@Suite(.serialized) struct EscalationTests {
    @Test func aFlakyTierIsRetriedAndGetsTheDraft() async throws {
        let adapter = try await Fixtures.supportAdapter()
        try await withFakeTiers { base, recorder in
            try await withServer(Fixtures.config(adapter: adapter, escalation: tier(base + "/flaky/v1"))) { http, service in
                let text = try await escalatingText(service)
                let r = try await http.send("POST", "/v1/tasks/support-queue/decide", json: ["text": text])
                #expect(r.json["route"] as? String == "escalated", "\(r.text)")
                #expect(r.json["tier"] as? String == "large")
                #expect(r.json["label"] as? String == "billing")
                let escalation = r.json["escalation"] as? [String: Any] ?? [:]
                #expect(escalation["attempts"] as? Int == 2 && escalation["outcome"] as? String == "answered")
                let draft = r.json["draft"] as? [String: Any] ?? [:]
                let requests = await recorder.requests
                #expect(requests.count == 2)
                // The draft travels in headers and in the prompt; the answer is constrained to the task's labels.
                #expect(requests.last?.headers["x-microscale-draft-label"] == draft["label"] as? String)
                #expect(requests.last?.headers["x-microscale-draft-confidence"] != nil)
                let sent = try JSONValue.parse(requests.last!.body)
                #expect(sent["response_format"]?["json_schema"]?["schema"]?["properties"]?["label"]?["enum"] != nil)
                #expect(sent["messages"]?.description.contains(draft["label"] as? String ?? "?") == true)
                let stored = try await service.store.decision(id: r.json["id"] as! String)
                #expect(stored?.route == "escalated" && stored?.escalationJSON?.contains("answered") == true)
            }
        }
    }

    @Test func aGarbageTierSendsTheInputToReview() async throws {
        let adapter = try await Fixtures.supportAdapter()
        try await withFakeTiers { base, _ in
            try await withServer(Fixtures.config(adapter: adapter, escalation: tier(base + "/garbage/v1"))) { http, service in
                let text = try await escalatingText(service)
                let r = try await http.send("POST", "/v1/tasks/support-queue/decide", json: ["text": text])
                #expect(r.json["route"] as? String == "review" && r.json["reason"] as? String == "escalation_failed", "\(r.text)")
                let escalation = r.json["escalation"] as? [String: Any] ?? [:]
                #expect(escalation["attempts"] as? Int == 1, "garbage is not retried")
                #expect(((escalation["error"] as? String) ?? "").contains("not a chat completion"))
                let queued = try await service.store.reviewItem(decisionId: r.json["id"] as! String)
                #expect(queued?.status == .pending && queued?.text == text)
            }
        }
    }

    @Test func aHangingTierTimesOutRetriesAndSendsToReview() async throws {
        let adapter = try await Fixtures.supportAdapter()
        try await withFakeTiers { base, _ in
            try await withServer(Fixtures.config(adapter: adapter, escalation: tier(base + "/hang/v1", timeout: 0.5, retries: 1))) { http, service in
                let text = try await escalatingText(service)
                let start = ContinuousClock.now
                let r = try await http.send("POST", "/v1/tasks/support-queue/decide", json: ["text": text])
                let seconds = (ContinuousClock.now - start).seconds
                #expect(r.json["route"] as? String == "review", "\(r.text)")
                let escalation = r.json["escalation"] as? [String: Any] ?? [:]
                #expect(escalation["attempts"] as? Int == 2)
                #expect(((escalation["error"] as? String) ?? "").contains("no answer within 0.5 s"))
                #expect(seconds < 5, "two 0.5 s attempts took \(seconds) s")
                #expect(try await service.store.reviewItem(decisionId: r.json["id"] as! String) != nil)
            }
        }
    }

    @Test func aDownTierOpensTheCircuit() async throws {
        let adapter = try await Fixtures.supportAdapter()
        // Nothing listens on port 9 (discard) on loopback here: connections are refused at once.
        try await withServer(Fixtures.config(adapter: adapter, escalation: tier("http://127.0.0.1:9/v1", retries: 0, breaker: 2))) { http, service in
            let text = try await escalatingText(service)
            var outcomes: [String] = []
            for _ in 0..<3 {
                let r = try await http.send("POST", "/v1/tasks/support-queue/decide", json: ["text": text])
                #expect(r.json["route"] as? String == "review")
                outcomes.append(((r.json["escalation"] as? [String: Any])?["outcome"] as? String) ?? "?")
            }
            #expect(outcomes == ["failed", "failed", "circuit_open"])
            #expect(try await service.store.reviewItems(task: "support-queue", status: .pending, limit: 10).count == 3)
        }
    }

    @Test func circuitBreakerProbesAfterTheCooldown() async {
        let breaker = CircuitBreaker(threshold: 2, cooldown: .seconds(10))
        let t0 = ContinuousClock.now
        #expect(await breaker.allow(now: t0))
        await breaker.record(success: false, now: t0)
        #expect(await breaker.allow(now: t0))
        await breaker.record(success: false, now: t0)
        #expect(await !breaker.allow(now: t0 + .seconds(9)))
        #expect(await breaker.allow(now: t0 + .seconds(10)), "one probe after the cooldown")
        #expect(await !breaker.allow(now: t0 + .seconds(10)), "only one")
        await breaker.record(success: false, now: t0 + .seconds(10))
        #expect(await !breaker.allow(now: t0 + .seconds(15)))
        #expect(await breaker.allow(now: t0 + .seconds(20)))
        await breaker.record(success: true, now: t0 + .seconds(20))
        #expect(await breaker.allow(now: t0 + .seconds(20)))
        #expect(await !breaker.isOpen)
    }
}

/// Pure parts: redaction, drift windows, configuration files.
@Suite struct ServerUnitTests {
    /// Every policy route and reason has its API name among the service's enums (their initialisers read those names).
    @Test func everyRouteAndReasonHasItsAPIName() {
        #expect(Route.allCases.map { Tier($0) } == [.small, .large, .human])
        #expect(Reason.allCases.map { DecisionReason($0).rawValue } == Reason.allCases.map(\.apiName))
        #expect(Set(Reason.allCases.map { DecisionReason($0) }).count == Reason.allCases.count)
    }

    @Test func redactionMasksContactsAndNumbers() {
        let r = redact("Mail jo.smith@example.com, card 4111 1111 1111 1111, phone +44 20 7946 0958, invoice INV-2025-12345, router ok")
        #expect(!r.contains("example.com") && !r.contains("4111") && !r.contains("7946") && !r.contains("12345"))
        #expect(r.contains("router ok") && r.contains("[email]"))
    }

    @Test func driftWindowsCountRatesAndCorrections() {
        func record(_ route: String, _ confidence: Double, escalated: Bool = false) -> DecisionRecord {
            DecisionRecord(id: UUID().uuidString, task: "t", createdAt: Date(), input: nil, inputSHA256: "", label: "a", fieldsJSON: nil,
                           confidence: confidence, route: route, reason: "r", detail: "", tier: "small", draftJSON: nil,
                           escalationJSON: escalated ? "{}" : nil, latencyJSON: "{}", modelVersion: "m", adapterVersion: nil)
        }
        var corrected = ReviewItem(decisionId: "x", task: "t", text: "", draftLabel: "a", draftFieldsJSON: nil, confidence: 0.4, reason: "", detail: "", createdAt: Date())
        corrected.outcome = "corrected"
        var confirmed = corrected
        confirmed.outcome = "confirmed"
        let w = DriftWindow(decisions: [record("accepted", 0.95), record("accepted", 0.85), record("escalated", 0.45, escalated: true),
                                        record("review", 0.3, escalated: true)],
                            resolved: [corrected, confirmed, confirmed, confirmed])
        // Each decision counts once, under its final route: the rates add up to 1.
        #expect(w.acceptRate == 0.5 && w.escalationRate == 0.25 && w.reviewRate == 0.25)
        #expect(w.correctionRate == 0.25)
        #expect(abs((w.meanConfidence ?? 0) - 0.6375) < 1e-12 && w.lowConfidenceShare == 0.5)
        #expect(w.confidenceHistogram == [0, 0, 0, 1, 1, 0, 0, 0, 1, 1])
    }

    @Test func configFilesResolveSecretsAndRefuseUnknownKeys() throws {
        let file = Fixtures.temporary("serve.yaml")
        try """
        listen: {host: 127.0.0.1, port: 9000}
        auth: {api_keys: [env:TEST_KEY, literal-key]}
        store: sqlite:data/log.sqlite
        tasks: [support/task.yaml]
        escalation: {base_url: "http://x/v1", model: big, timeout_seconds: 3}
        drift: {window: 100, alert: {escalation_rate: 0.4}}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let c = try ServiceConfig.load(file, environment: ["TEST_KEY": "from-env", "MICROSCALE_ESCALATION_KEY": "secret"])
        #expect(c.apiKeys == ["from-env", "literal-key"])
        #expect(c.store.hasPrefix("sqlite:/") && c.store.hasSuffix("/data/log.sqlite"))
        #expect(c.escalation?.timeout == 3 && c.escalation?.apiKey == "secret" && c.drift.escalationRate == 0.4)
        do {
            _ = try ServiceConfig.load(file, environment: [:])
            Issue.record("a missing secret was accepted")
        } catch {
            #expect("\(error)".contains("TEST_KEY"))
        }
        try "listen: {host: 127.0.0.1}\nlimitz: {}\n".write(toFile: file, atomically: true, encoding: .utf8)
        do {
            _ = try ServiceConfig.load(file, environment: [:])
            Issue.record("an unknown key was accepted")
        } catch {
            #expect("\(error)".contains("limitz"))
        }
    }
}

/// A log handler that keeps what it is given.
final class CapturedLogs: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [(Logger.Level, String)] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { metadata[key] } set { metadata[key] = newValue } }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        lock.withLock { lines.append((level, "\(message) \(metadata ?? [:])")) }
    }

    var warnings: [String] { lock.withLock { lines.filter { $0.0 == .warning }.map(\.1) } }
}

@Suite struct DriftTests {
    @Test func alertsNeedEnoughDecisionsAndAreLoggedOnce() async throws {
        let store = try SQLiteStore(path: Fixtures.temporary("drift.sqlite"))
        var drift = ServiceConfig.Drift()
        drift.window = 100
        drift.reviewRate = 0.5
        drift.minSamples = 30
        func add(_ n: Int, route: String) async throws {
            for i in 0..<n {
                try await store.record(DecisionRecord(
                    id: UUID().uuidString, task: "t", createdAt: Date().addingTimeInterval(Double(i) * 1e-3), input: nil, inputSHA256: "",
                    label: "a", fieldsJSON: nil, confidence: 0.4, route: route, reason: "r", detail: "", tier: "human", draftJSON: nil,
                    escalationJSON: nil, latencyJSON: "{}", modelVersion: "m", adapterVersion: nil), review: nil)
            }
        }
        try await add(20, route: "review")
        #expect(try await DriftReport.measure(task: "t", store: store, drift: drift).alerts.isEmpty, "20 decisions are too few to alert on")
        try await add(20, route: "review")
        let report = try await DriftReport.measure(task: "t", store: store, drift: drift)
        #expect(report.current.decisions == 40 && report.current.reviewRate == 1)
        #expect(report.alerts.map(\.metric) == ["review_rate"])
        // The monitor publishes it and warns once, not at every recomputation.
        let logs = CapturedLogs()
        drift.interval = 0.05
        let monitor = DriftMonitor(tasks: ["t"], store: store, drift: drift, logger: Logger(label: "drift") { _ in logs })
        let running = Task { try await monitor.run() }
        try await Task.sleep(for: .milliseconds(400))
        running.cancel()
        _ = try? await running.value
        #expect(logs.warnings.count == 1, "\(logs.warnings)")
        #expect(logs.warnings.first?.contains("review_rate") == true)
    }
}
