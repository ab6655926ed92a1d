import Cascade
import Foundation
import Testing
@testable import Server

/// External programs the integration tests drive. `make test` provides all three; a run without them skips those
/// tests, unless `MICROSCALE_REQUIRE_INTEGRATION=1` (set by `make test`) makes their absence a failure.
enum External {
    static let environment = ProcessInfo.processInfo.environment
    static let python = environment["MICROSCALE_TEST_PYTHON"]
    static let chromium = environment["MICROSCALE_TEST_CHROMIUM"]
    static let postgres = environment["MICROSCALE_TEST_POSTGRES_URL"]
    static let required = environment["MICROSCALE_REQUIRE_INTEGRATION"] == "1"
}

/// The first vague message the trained support adapter escalates (found by deciding them in-process).
func escalatingText(adapter: String) throws -> String {
    let classifier = try Classifier(spec: try TaskSpec.load(Fixtures.supportTask), adapterPath: adapter)
    for text in Fixtures.vagueMessages where try classifier.decide(text).route == .escalate { return text }
    throw FixtureError("none of the vague messages is escalated by this adapter")
}

/// `microscale serve` as separate processes: one as the larger tier of another, the OpenAI Python client, the review
/// page in headless Chromium, graceful shutdown, and replicas sharing PostgreSQL.
@Suite(.serialized) struct IntegrationTests {
    @Test func requiredProgramsArePresent() {
        if External.required {
            #expect(External.python != nil, "MICROSCALE_TEST_PYTHON is not set")
            #expect(External.chromium != nil, "MICROSCALE_TEST_CHROMIUM is not set")
            #expect(External.postgres != nil, "MICROSCALE_TEST_POSTGRES_URL is not set")
        }
        #expect(FileManager.default.isExecutableFile(atPath: Fixtures.binary), "build the release binary first")
    }

    @Test func aSecondServeProcessIsTheLargerTier() async throws {
        let adapter = try await Fixtures.supportAdapter()
        let large = try ServerProcess(config: Fixtures.yaml(adapter: adapter, store: "sqlite:" + Fixtures.temporary("large.sqlite"), chat: true, tasks: false))
        let small = try ServerProcess(config: Fixtures.yaml(adapter: adapter, store: "sqlite:" + Fixtures.temporary("small.sqlite"), chat: false,
                                                            escalation: large.url + "/v1"))
        let text = try escalatingText(adapter: adapter)
        let r = try await HTTP(base: small.url).send("POST", "/v1/tasks/support-queue/decide", json: ["text": text])
        #expect(r.status == 200)
        #expect(r.json["route"] as? String == "escalated", "\(r.text)")
        #expect(r.json["tier"] as? String == "large")
        let escalation = r.json["escalation"] as? [String: Any] ?? [:]
        #expect(escalation["outcome"] as? String == "answered" && escalation["model"] as? String == "smollm2")
        let labels = try TaskSpec.load(Fixtures.supportTask).labels.map(\.name)
        #expect(labels.contains(r.json["label"] as? String ?? "?"))
        #expect((r.json["draft"] as? [String: Any])?["label"] != nil)
        let stored = try await HTTP(base: small.url).send("GET", "/v1/decisions/\(r.json["id"] as! String)")
        #expect(stored.json["tier"] as? String == "large")
        #expect(small.stop() == 0 && large.stop() == 0)
    }

    @Test(.enabled(if: External.python != nil || External.required)) func theOpenAIPythonClientWorksUnchanged() async throws {
        let python = try #require(External.python)
        let adapter = try await Fixtures.supportAdapter()
        let server = try ServerProcess(config: Fixtures.yaml(adapter: adapter, store: "sqlite:" + Fixtures.temporary("chat.sqlite"), chat: true, tasks: false))
        let result = try run(python, [Fixtures.root + "/Tests/ServerTests/Scripts/openai_client.py", server.url, "api-key"])
        #expect(result.status == 0, "\(result.output)")
        let summary = try JSONSerialization.jsonObject(with: Data((result.output.split(separator: "\n").last ?? "").utf8)) as? [String: Any]
        #expect(summary?["wrong_key"] as? Int == 401 && summary?["unknown_model"] as? Int == 404)
        #expect(server.stop() == 0)
    }

    /// The OpenAI SDK's `parse`, Instructor (JSON_SCHEMA and JSON modes) and LangChain's `with_structured_output`, with
    /// their defaults, get objects their own models validate, in compact JSON; so do richer Pydantic models (inheritance,
    /// `$defs`, nested lists, unions, optionals) and an `allOf` inheritance schema.
    @Test(.enabled(if: External.python != nil || External.required)) func structuredOutputClientLibrariesWorkUnchanged() async throws {
        let python = try #require(External.python)
        let adapter = try await Fixtures.supportAdapter()
        let server = try ServerProcess(config: Fixtures.yaml(adapter: adapter, store: "sqlite:" + Fixtures.temporary("libraries.sqlite"), chat: true, tasks: false))
        let result = try run(python, [Fixtures.root + "/Tests/ServerTests/Scripts/client_libraries.py", server.url, "api-key"])
        #expect(result.status == 0, "\(result.output)")
        let summary = try JSONSerialization.jsonObject(with: Data((result.output.split(separator: "\n").last ?? "").utf8)) as? [String: Any]
        for key in ["parse", "instructor_json_schema", "instructor_json", "langchain_json_schema", "langchain_json_mode", "parse_customer",
                    "instructor_customer", "allof_inheritance"] {
            #expect(summary?[key] != nil, "\(key) missing: \(result.output)")
        }
        #expect(server.stop() == 0)
    }

    @Test(.enabled(if: (External.chromium != nil && External.python != nil) || External.required)) func theReviewPageWorksInHeadlessChromium() async throws {
        let chromium = try #require(External.chromium)
        let adapter = try await Fixtures.supportAdapter()
        let server = try ServerProcess(config: Fixtures.yaml(adapter: adapter, store: "sqlite:" + Fixtures.temporary("review.sqlite"), chat: false))
        let api = HTTP(base: server.url)
        let legal = "My solicitor will write to you about the disputed charge."
        let decided = try await api.send("POST", "/v1/tasks/support-queue/decide", json: ["text": legal])
        #expect(decided.json["route"] as? String == "review")
        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000"]
        // The list: loads through the API with the reviewer key from the fragment.
        let listing = try run(chromium, flags + ["--dump-dom", server.url + "/review#key=reviewer-key&reviewer=ci"])
        #expect(listing.output.contains("data-loaded=\"1\""), "\(listing.output.suffix(2000))")
        #expect(listing.output.contains(legal))
        // Without a key it shows the sign-in form and no data.
        let anonymous = try run(chromium, flags + ["--dump-dom", server.url + "/review"])
        #expect(!anonymous.output.contains(legal))
        // A reviewer's session through the page, driven over the DevTools protocol: sign in from the link, claim the
        // next item, choose another label, press Correct. The API then shows the correction as a labelled example.
        let python = try #require(External.python)
        let shot = Fixtures.root + "/reports/review-page.png"
        try? FileManager.default.createDirectory(atPath: Fixtures.root + "/reports", withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: shot)
        let session = try run(python, [Fixtures.root + "/Tests/ServerTests/Scripts/review_page.py", chromium,
                                       server.url + "/review#key=reviewer-key&reviewer=ci&next=1", shot])
        #expect(session.status == 0, "\(session.output)")
        let seen = try JSONSerialization.jsonObject(with: Data((session.output.split(separator: "\n").last ?? "").utf8)) as? [String: Any] ?? [:]
        #expect((seen["claimed_text"] as? String ?? "").contains(legal))
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        #expect(png.count > 10_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        let stored = try await HTTP(base: server.url, key: "reviewer-key").send("GET", "/v1/review/items?status=resolved")
        let item = (stored.json["items"] as? [[String: Any]])?.first
        #expect(item?["resolved_by"] as? String == "ci" && item?["outcome"] as? String == "corrected")
        #expect(item?["resolved_label"] as? String == seen["chosen"] as? String && seen["chosen"] as? String != seen["draft"] as? String)
        let examples = try await HTTP(base: server.url, key: "reviewer-key").send("GET", "/v1/review/examples")
        #expect((examples.json["examples"] as? [[String: Any]])?.first?["text"] as? String == legal)
        #expect(server.stop() == 0)
    }

    @Test func shutdownFinishesRequestsInFlight() async throws {
        let adapter = try await Fixtures.supportAdapter()
        let server = try ServerProcess(config: Fixtures.yaml(adapter: adapter, store: "sqlite:" + Fixtures.temporary("stop.sqlite"), chat: true))
        let http = HTTP(base: server.url)
        let long = Task {
            try await http.send("POST", "/v1/chat/completions", json: [
                "model": "smollm2", "max_tokens": 96, "temperature": 0,
                "messages": [["role": "user", "content": "Write a long story about a lighthouse keeper."]],
            ] as [String: Any])
        }
        try await Task.sleep(for: .milliseconds(700))
        let stopped = Task { server.stop() }
        let reply = try await long.value
        #expect(reply.status == 200, "\(reply.text)")
        let usage = reply.json["usage"] as? [String: Any]
        #expect((usage?["completion_tokens"] as? Int ?? 0) > 0)
        #expect(await stopped.value == 0)
        // Gone: new connections are refused.
        await #expect(throws: (any Error).self) { _ = try await http.send("GET", "/healthz", timeout: 5) }
    }

    @Test(.enabled(if: External.postgres != nil || External.required)) func twoReplicasShareOnePostgresLogAndQueue() async throws {
        let url = try #require(External.postgres)
        let adapter = try await Fixtures.supportAdapter()
        let a = try ServerProcess(config: Fixtures.yaml(adapter: adapter, store: url, chat: false))
        let b = try ServerProcess(config: Fixtures.yaml(adapter: adapter, store: url, chat: false))
        var ours: [String] = []
        for (i, server) in [a, b, a, b, a, b].enumerated() {
            let r = try await HTTP(base: server.url).send("POST", "/v1/tasks/support-queue/decide",
                                                          json: ["text": "My lawyer will contact you about invoice \(i) (\(UUID().uuidString))."])
            #expect(r.json["route"] as? String == "review")
            ours.append(r.json["id"] as! String)
        }
        // Each replica reads what the other wrote.
        for id in ours {
            #expect(try await HTTP(base: a.url).send("GET", "/v1/decisions/\(id)").status == 200)
            #expect(try await HTTP(base: b.url).send("GET", "/v1/decisions/\(id)").status == 200)
        }
        // Reviewers on both replicas drain the queue together: nothing is handed out twice.
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for (s, server) in [a, b].enumerated() {
                for c in 0..<4 {
                    group.addTask {
                        let reviewer = HTTP(base: server.url, key: "reviewer-key")
                        var mine: [String] = []
                        while true {
                            let r = try await reviewer.send("POST", "/v1/review/claim", json: ["reviewer": "r\(s)-\(c)", "task": "support-queue"])
                            guard r.status == 200 else { break }
                            mine.append(r.json["decision_id"] as! String)
                        }
                        return mine
                    }
                }
            }
            var all: [String] = []
            for try await part in group { all += part }
            return all
        }
        #expect(claimed.count == Set(claimed).count, "an item was handed out twice")
        #expect(Set(ours).isSubset(of: Set(claimed)))
        #expect(a.stop() == 0 && b.stop() == 0)
    }
}
