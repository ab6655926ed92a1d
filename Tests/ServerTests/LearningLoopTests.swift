import Cascade
import Foundation
import Hummingbird
import Logging
import Testing
@testable import Server
import Store
import StructuredOutput
#if canImport(Glibc)
import Glibc
#endif

/// The learning loop against the real support adapter: versions swapped while serving, rollback, shadow, distillation
/// (resumable, checked by people), and the simulation at small scale.
@Suite(.serialized) struct LearningLoopTests {
    static let task = "support-queue"
    /// A gate verdict that passed, judged against `baseline` (the version active when it was judged).
    static func passingGate(against baseline: String) -> String {
        #"{"checks":[{"name":"certified","passed":true,"detail":"test"}],"baseline":""# + baseline + #""}"#
    }

    /// The support adapter's bytes with a different `created` stamp: the same weights under another version.
    static func variant(of file: String, created: String) throws -> String {
        var adapter = try JSONDecoder().decode(Adapter.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        adapter.created = created
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(adapter), as: UTF8.self)
    }

    /// Decides until the decision carries `version` (the service polls every 0.1 s here).
    static func waitForVersion(_ service: CascadeService, _ version: String) async throws -> DecisionResponse {
        for _ in 0..<100 {
            let d = try await service.decide(taskName: task, inputs: ["I was charged twice for my broadband this month"], batch: false)[0]
            if d.adapterVersion == version { return d }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FixtureError("the service never served \(version.prefix(12))")
    }

    @Test func promotedVersionsServeWithoutRestartRollBackAndShadow() async throws {
        let file = try await Fixtures.supportAdapter()
        var config = Fixtures.config(adapter: file)
        config.learning.pollSeconds = 0.1
        config.escalationDisabled = true
        let service = try await CascadeService.load(config, logger: Fixtures.logger)
        defer { Task { await service.shutdown() } }
        let store = service.store
        let v0 = Digest.of(try String(contentsOfFile: file, encoding: .utf8))
        let first = try await service.decide(taskName: Self.task, inputs: ["Where is my router?"], batch: false)[0]
        #expect(first.adapterVersion == v0)
        #expect(try await store.adapterVersions(task: Self.task).map { "\($0.version):\($0.status.rawValue):\($0.source)" } == ["\(v0):active:file"])

        // A candidate that passed the gate is promoted; the running service serves it and logs it with each decision.
        let body1 = try Self.variant(of: file, created: "2026-01-01T00:00:00Z"), v1 = Digest.of(body1)
        try await store.addAdapter(AdapterVersion(task: Self.task, version: v1, createdAt: Date(), status: .candidate, source: "retrain", body: body1,
                                                  gateJSON: Self.passingGate(against: v0)))
        try await Promotion.promote(task: Self.task, version: String(v1.prefix(10)), store: store)
        let served = try await Self.waitForVersion(service, v1)
        #expect(try await store.decision(id: served.id)?.adapterVersion == v1)

        // Only through the gate: a failed gate, or none, is refused with the reason.
        let body2 = try Self.variant(of: file, created: "2026-02-01T00:00:00Z"), v2 = Digest.of(body2)
        try await store.addAdapter(AdapterVersion(task: Self.task, version: v2, createdAt: Date(), status: .candidate, source: "retrain", body: body2,
                                                  gateJSON: #"{"checks":[{"name":"coverage","passed":false,"detail":"coverage 10% against 50%"}]}"#))
        await #expect(throws: Promotion.Refused.self) { try await Promotion.promote(task: Self.task, version: v2, store: store) }
        // A verdict judged against another version than the active one is stale.
        let body4 = try Self.variant(of: file, created: "2026-04-01T00:00:00Z"), v4 = Digest.of(body4)
        try await store.addAdapter(AdapterVersion(task: Self.task, version: v4, createdAt: Date(), status: .candidate, source: "retrain", body: body4,
                                                  gateJSON: Self.passingGate(against: v0)))
        do {
            try await Promotion.promote(task: Self.task, version: v4, store: store)
            Issue.record("a stale verdict was accepted")
        } catch let e as Promotion.Refused {
            #expect(e.description.contains("retrain to judge it"), "\(e)")
        }
        do {
            try await Promotion.promote(task: Self.task, version: v0, store: store)
            Issue.record("a version without a gate verdict was promoted")
        } catch let e as Promotion.Refused {
            #expect(e.description.contains("promotion gate"))
        }

        // Rollback: the previous version serves again.
        let back = try await store.rollback(task: Self.task)
        #expect(back.from == v1 && back.to == v0)
        _ = try await Self.waitForVersion(service, v0)

        // Shadow: the candidate decides the same inputs, logged beside the served decision, never routing.
        try await store.setShadow(task: Self.task, version: v2)
        var compared: [ShadowComparison] = []
        for _ in 0..<100 where compared.isEmpty {
            _ = try await service.decide(taskName: Self.task, inputs: ["My solicitor will be in touch about the charges"], batch: false)
            compared = try await store.shadowComparisons(task: Self.task, version: v2)
            if compared.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        let shadowed = try #require(compared.first)
        #expect(shadowed.shadow.label == shadowed.servedLabel)   // the same weights under another version
        #expect(try await store.decision(id: shadowed.shadow.decisionId)?.adapterVersion == v0)

        // A version that cannot serve this task (labels changed) is not loaded; the current one keeps serving.
        var broken = try JSONDecoder().decode(Adapter.self, from: Data(body2.utf8))
        broken.labels.reverse()
        let body3 = String(decoding: try JSONEncoder().encode(broken), as: UTF8.self), v3 = Digest.of(body3)
        try await store.addAdapter(AdapterVersion(task: Self.task, version: v3, createdAt: Date(), status: .candidate, source: "retrain", body: body3,
                                                  gateJSON: Self.passingGate(against: v0)))
        try await store.activate(task: Self.task, version: v3)
        try await Task.sleep(for: .milliseconds(500))
        let still = try await service.decide(taskName: Self.task, inputs: ["Where is my router?"], batch: false)[0]
        #expect(still.adapterVersion == v0)
        // … and the service keeps polling: the next good version is picked up.
        try await store.activate(task: Self.task, version: v1)
        _ = try await Self.waitForVersion(service, v1)
    }

    @Test func theStubTeacherIsWrongAtItsRateAndReadsExactBytes() {
        let labels = ["a", "b", "c"]
        let exact = TeacherStub(truth: [ExactText("caf\u{E9}"): "a", ExactText("cafe\u{301}"): "b"], errorRate: 0)
        #expect(exact.answer("caf\u{E9}", labels: labels) == "a" && exact.answer("cafe\u{301}", labels: labels) == "b")
        #expect(exact.answer("cafe", labels: labels) == nil)
        var truth: [ExactText: String] = [:]
        for i in 0..<3000 { truth[ExactText("text \(i)")] = labels[i % 3] }
        let always = TeacherStub(truth: truth, errorRate: 1)
        #expect((0..<300).allSatisfy { always.answer("text \($0)", labels: labels) != labels[$0 % 3] })
        let stub = TeacherStub(truth: truth, errorRate: 0.3)
        let wrong = (0..<3000).count { stub.answer("text \($0)", labels: labels) != labels[$0 % 3] }
        #expect(abs(wrong - 900) < 100, "\(wrong) wrong of 3000 at a 30% rate")   // binomial sd ≈ 25
        #expect((0..<50).allSatisfy { stub.answer("text \($0)", labels: labels) == stub.answer("text \($0)", labels: labels) })
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["MICROSCALE_TEST_POSTGRES_URL"] != nil, "needs MICROSCALE_TEST_POSTGRES_URL (make test sets it)"))
    func replicasOnPostgresServeThePromotedVersionTogether() async throws {
        let file = try await Fixtures.supportAdapter()
        let url = ProcessInfo.processInfo.environment["MICROSCALE_TEST_POSTGRES_URL"]!
        // A fresh task name is not possible (the spec names it), so start from a clean slate for this task.
        let admin = try await PostgresStore(url: url)
        // Other tests serve this task on the same database from their adapter file: leave no version behind.
        _ = try await admin.transact([StoreStatement("DELETE FROM adapters WHERE task = $1", [.text(Self.task)])])
        defer { Task { _ = try? await admin.transact([StoreStatement("DELETE FROM adapters WHERE task = $1", [.text(Self.task)])]); await admin.close() } }
        var config = Fixtures.config(adapter: file, store: url)
        config.learning.pollSeconds = 0.1
        config.escalationDisabled = true
        let a = try await CascadeService.load(config, logger: Fixtures.logger)
        let b = try await CascadeService.load(config, logger: Fixtures.logger)
        let body = try Self.variant(of: file, created: "2026-03-01T00:00:00Z"), v1 = Digest.of(body)
        let v0 = Digest.of(try String(contentsOfFile: file, encoding: .utf8))
        try await admin.addAdapter(AdapterVersion(task: Self.task, version: v1, createdAt: Date(), status: .candidate, source: "retrain", body: body,
                                                  gateJSON: Self.passingGate(against: v0)))
        try await Promotion.promote(task: Self.task, version: v1, store: admin)
        let fromA = try await Self.waitForVersion(a, v1), fromB = try await Self.waitForVersion(b, v1)
        let loggedA = try await admin.decision(id: fromA.id)?.adapterVersion, loggedB = try await admin.decision(id: fromB.id)?.adapterVersion
        #expect(loggedA == v1 && loggedB == v1)
        _ = try await admin.rollback(task: Self.task)
        _ = try await Self.waitForVersion(a, v0)
        _ = try await Self.waitForVersion(b, v0)
        await a.shutdown()
        await b.shutdown()
    }

    /// Serves a teacher stub in-process on a free port; returns its base URL and the task running it.
    static func startStub(_ stub: TeacherStub) async throws -> (url: String, task: Task<Void, any Error>) {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "stub")
        logger.logLevel = .critical
        let task = Task { try await stub.application(port: 0, logger: logger) { continuation.yield($0) }.runService() }
        var it = ports.makeAsyncIterator()
        guard let port = await it.next() else { throw FixtureError("stub did not start") }
        return ("http://127.0.0.1:\(port)/v1", task)
    }

    static func supportData() throws -> (spec: TaskSpec, data: LabelledData) {
        let spec = try TaskSpec.load(Fixtures.supportTask)
        return (spec, try LabelledData.load(Fixtures.root + "/examples/support/messages.csv", spec: spec))
    }

    @Test func distillationStoresProvenanceResumesAndQueuesDisagreementsFirst() async throws {
        let (spec, data) = try Self.supportData()
        var truth: [ExactText: String] = [:]
        for (t, l) in zip(data.texts, data.labels) { truth[ExactText(t)] = spec.labels[l].name }
        let stub = TeacherStub(truth: truth, errorRate: 0.2)
        let (url, stubTask) = try await Self.startStub(stub)
        defer { stubTask.cancel() }
        let store = try SQLiteStore(path: Fixtures.temporary("distill.sqlite"))
        let student = try Classifier(spec: spec, adapterPath: try await Fixtures.supportAdapter())
        var distiller = Distiller(spec: spec, tier: ServiceConfig.Escalation(baseURL: url, model: "stub"), store: store, student: student, logger: Fixtures.logger)
        distiller.reviewShare = 0.25
        let texts = Array(data.texts.prefix(80))
        let first = try await distiller.run(Array(texts.prefix(60)))
        #expect(first.answered == 60 && first.failed == 0 && first.queuedForReview == 15)
        #expect(abs(first.cost - 60 * 2.5 / 1000) < 1e-9 && first.promptTokens > 0)
        let labels = try await store.teacherLabels(task: spec.name)
        #expect(labels.count == 60 && labels.allSatisfy { $0.origin == "distill" })
        for l in labels {
            #expect(l.label == stub.answer(l.text!, labels: spec.labels.map(\.name)))
            let call = try JSONValue.parse(l.escalationJSON!)
            #expect(call["model"]?.stringValue == "stub" && call["prompt_sha256"]?.stringValue?.count == 64 && call["usage"] != nil)
        }
        // Disagreements with the small model first.
        let drafts = labels.map { l in (l, (try? JSONDecoder().decode(Draft.self, from: Data(l.draftJSON!.utf8)))?.label) }
        let disagreements = Set(drafts.filter { $0.1 != $0.0.label }.map(\.0.decisionId))
        let samples = try await store.reviewItems(task: spec.name, reason: teacherSampleReason)
        let checks = try await store.reviewItems(task: spec.name, reason: teacherCheckReason)
        #expect(samples.count == 7 && checks.count == 8)
        let open = disagreements.subtracting(samples.map(\.decisionId))
        #expect(checks.count { open.contains($0.decisionId) } == min(8, open.count))
        // A rerun asks only what has no answer yet, and tops the review share up to 25% of 80.
        let second = try await distiller.run(texts)
        #expect(second.alreadyLabelled == 60 && second.asked == 20 && second.queuedForReview == 5)
        // People's agreement with the teacher, per label.
        for _ in 0..<20 {
            guard let item = try await store.claim(reviewer: "r", task: spec.name, now: Date(), lease: 60) else { break }
            _ = try await store.resolve(decisionId: item.decisionId, reviewer: "r", label: truth[ExactText(item.text)], fieldsJSON: nil, outcome: "x", now: Date())
        }
        let agreement = try await TeacherAgreement.measure(task: spec.name, store: store, floor: 0.9)
        #expect(agreement.reviewed == 20)
        let resolved = try await store.reviewItems(task: spec.name, status: .resolved, limit: 100)
        #expect(agreement.agreed == resolved.count { $0.resolvedLabel == $0.draftLabel })
        #expect(agreement.agreed < 20, "the stub is wrong on 20% and disagreements were checked first")
        #expect(agreement.rows.map(\.reviewed).reduce(0, +) == 20)
    }

    @Test func aKilledDistillationLosesNothingAndAsksNoAnsweredItemAgain() async throws {
        let csv = Fixtures.temporary("unlabelled.csv")
        let (_, data) = try Self.supportData()
        var rows = "text\n"
        for t in data.texts.prefix(40) { rows += "\"" + t.replacingOccurrences(of: "\"", with: "\"\"") + "\"\n" }
        try rows.write(toFile: csv, atomically: true, encoding: .utf8)
        let labelled = Fixtures.root + "/examples/support/messages.csv"
        let stub = Process()
        stub.executableURL = URL(fileURLWithPath: Fixtures.binary)
        stub.arguments = ["teacher-stub", "--task", Fixtures.supportTask, "--data", labelled, "--latency-ms", "250"]
        let out = Pipe()
        stub.standardOutput = out
        try stub.run()
        defer { stub.terminate() }
        var line = ""
        while !line.contains("\n") { line += String(decoding: out.fileHandleForReading.availableData, as: UTF8.self) }
        let url = String(line.split(separator: " ")[2])
        let store = "sqlite:" + Fixtures.temporary("killed.sqlite")
        let arguments = ["distill", "--task", Fixtures.supportTask, "--teacher", url, "--data", csv, "--store", store, "--max-concurrent", "2",
                         "--adapter", try await Fixtures.supportAdapter()]
        let first = Process()
        first.executableURL = URL(fileURLWithPath: Fixtures.binary)
        first.arguments = arguments
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        let opened = try await openStore(url: store)
        // Killed once a few answers are stored (the run takes about 5 s at 2 × 4 answers per second).
        for _ in 0..<600 where try await opened.distilledInputs(task: Self.task).count < 4 { try await Task.sleep(for: .milliseconds(100)) }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(first.terminationReason == .uncaughtSignal)
        let stored = try await opened.distilledInputs(task: Self.task).count
        #expect(stored > 0 && stored < 40, "killed after \(stored) answers")
        let rerun = try run(Fixtures.binary, arguments)
        #expect(rerun.status == 0, "\(rerun.output)")
        #expect(rerun.output.contains("skipped \(stored) already labelled"), "\(rerun.output)")
        #expect(try await opened.teacherLabels(task: Self.task).count == 40)
        #expect(try await opened.distilledInputs(task: Self.task).count == 40)
        let stats = try JSONValue.parse(try await HTTP(base: url, key: nil).send("GET", "/stub/stats").text)
        let requests = Int(stats["requests"]?.description ?? "") ?? -1, twice = Int(stats["asked_more_than_once"]?.description ?? "") ?? -1
        #expect(stats["distinct"]?.description == "40")
        // Only requests in flight at the kill (at most --max-concurrent) can have been asked again.
        #expect(requests <= 42 && twice <= 2, "\(stats)")
    }

    @Test func theSimulationRunsTheLoopThroughServe() async throws {
        let work = Fixtures.temporary("sim")
        let report = work + "/report.html"
        let result = try run(Fixtures.binary, ["simulate", "--task", Fixtures.supportTask, "--data", Fixtures.root + "/examples/support/messages.csv",
                                               "--seed-per-label", "5", "--rounds", "3", "--round-size", "150", "--review-share", "0.2",
                                               "--work", work, "--report", report])
        #expect(result.status == 0, "\(result.output)")
        let rows = try JSONValue.parse(try String(contentsOfFile: work + "/report.json", encoding: .utf8))
        guard case let .array(list) = rows else { Issue.record("no rows"); return }
        #expect(list.count == 3)
        func number(_ v: JSONValue?) -> Double { if case let .number(x, _)? = v { x } else { .nan } }
        let human = list.map { number($0["humanLabels"]) }, teacher = list.map { number($0["teacherLabels"]) }
        #expect(human == human.sorted() && human.last! > human.first!)
        #expect(teacher.first! > 0 && teacher == teacher.sorted())
        for r in list { #expect(number(r["reviewLoad"]) > 0 && number(r["heldOutItems"]) > 300) }
        // The review load reported is what people answered: every review item is resolved, and they add up.
        let store = try SQLiteStore(path: work + "/store.sqlite")
        let resolved = try await store.reviewItems(task: nil, status: .resolved, limit: 100_000).count
        #expect(try await store.reviewItems(task: nil, status: .pending, limit: 10).isEmpty)
        #expect(Double(resolved) == list.map { number($0["reviewLoad"]) }.reduce(0, +))
        // Human labels are the seed plus every answered review.
        #expect(human.last! <= Double(50 + resolved))
        // Every decision the service logged names the adapter version that made it, one the store knows.
        let versions = Set(try await store.adapterVersions(task: Self.task).map(\.version))
        let decisions = try await store.recentDecisions(task: Self.task, limit: 1000)
        #expect(decisions.count == 450 && decisions.allSatisfy { versions.contains($0.adapterVersion ?? "") })
        #expect(FileManager.default.fileExists(atPath: report))
    }
}
