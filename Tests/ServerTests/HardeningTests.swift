import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import Server
@testable import Store
import StructuredOutput

/// A larger tier that always answers `legal_dispute` (a high-risk label of the support task).
func withLegalTier(_ body: @Sendable (_ base: String) async throws -> Void) async throws {
    let router = Router()
    router.post("/v1/chat/completions") { _, _ -> Response in
        let content = JSONValue.quote(#"{"label":"legal_dispute"}"#)
        let reply = #"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":\#(content)},"finish_reason":"stop"}]}"#
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: reply)))
    }
    router.post("/toolong/v1/chat/completions") { _, _ -> Response in
        let error = #"{"error":{"message":"the prompt has 1848 tokens; internal-detail-xyz","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#
        return Response(status: .badRequest, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: error)))
    }
    try await Application(router: router).test(.live) { client in try await body("http://127.0.0.1:\(client.port!)/v1") }
}

/// Answers one request at a time, each after `seconds` (a tier that serves about 1/seconds requests a second).
actor SerialTier {
    let seconds: Double
    var served = 0
    init(seconds: Double) { self.seconds = seconds }
    func answer() async throws {
        try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        served += 1
    }
}

/// A larger tier that answers `billing` one request at a time, or hangs (`/hang`).
func withSerialTier(seconds: Double, _ body: @Sendable (_ base: String, _ tier: SerialTier) async throws -> Void) async throws {
    let serial = SerialTier(seconds: seconds)
    let router = Router()
    router.post("/v1/chat/completions") { _, _ -> Response in
        try await serial.answer()
        let content = JSONValue.quote(#"{"label":"billing"}"#)
        let reply = #"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":\#(content)},"finish_reason":"stop"}]}"#
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: reply)))
    }
    router.post("/hang/v1/chat/completions") { _, _ -> Response in
        try await Task.sleep(for: .seconds(10))
        return Response(status: .ok)
    }
    try await Application(router: router).test(.live) { client in try await body("http://127.0.0.1:\(client.port!)", serial) }
}

/// One chat completion's JSON, or the error.
func chat(_ http: HTTP, _ body: [String: Any]) async throws -> HTTP.Reply {
    var b = body
    if b["model"] == nil { b["model"] = "smollm2" }
    return try await http.send("POST", "/v1/chat/completions", json: b)
}

func content(_ r: HTTP.Reply) -> String {
    (((r.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String) ?? "<none: \(r.text)>"
}

func user(_ text: String) -> [[String: String]] { [["role": "user", "content": text]] }

/// Server-sent events of a streamed reply, parsed.
func events(_ r: HTTP.Reply) -> [[String: Any]] {
    r.text.components(separatedBy: "\n\n").compactMap { block in
        guard block.hasPrefix("data: "), !block.hasPrefix("data: [DONE]") else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(block.dropFirst(6).utf8))) as? [String: Any]
    }
}

/// Faults from real bug reports against OpenAI-compatible servers, one test per kind (issue 14).
@Suite(.serialized) struct HardeningTests {
    /// Kinds 1 and 2: stop strings inside grapheme clusters never crash; generated text keeps every scalar.
    @Test func textIsByteExactAndStopsInsideClustersDoNotCrash() async throws {
        let adapter = try await Fixtures.supportAdapter()
        try await withServer(Fixtures.config(adapter: adapter, chat: true)) { http, _ in
            let flags = try await chat(http, ["messages": user("Repeat exactly: 🇫🇷 🇫🇷 🇫🇷"), "stop": ["🇷"], "max_tokens": 24, "temperature": 0])
            #expect(flags.status == 200, "\(flags.text)")
            #expect(!content(flags).unicodeScalars.contains("🇷"))
            let accent = try await chat(http, ["messages": user("Say café with an accent"), "stop": ["\u{0301}"], "max_tokens": 16, "temperature": 0])
            #expect(accent.status == 200)
            #expect(!content(accent).unicodeScalars.contains("\u{0301}"))
            // The server is still alive after both.
            #expect(try await http.send("GET", "/healthz", key: .some(nil)).status == 200)
            // A schema's constant comes back exactly, scalar for scalar.
            for constant in ["🇫🇷", "e\u{0301}", "नमस्ते दुनिया", "👩🏽‍💻", "שָׁלוֹם", "a\u{200B}b"] {
                let schema: [String: Any] = ["type": "object", "properties": ["v": ["const": constant]], "required": ["v"], "additionalProperties": false]
                let r = try await chat(http, ["messages": user("Answer."), "max_tokens": 60, "temperature": 0,
                                              "response_format": ["type": "json_schema", "json_schema": ["name": "c", "schema": schema]]])
                let value = (try? JSONSerialization.jsonObject(with: Data(content(r).utf8))) as? [String: Any]
                #expect(Array((value?["v"] as? String ?? "").unicodeScalars) == Array(constant.unicodeScalars), "\(constant): \(r.text)")
            }
            // Streamed, the pieces add up to the same bytes as the plain answer.
            let request: [String: Any] = ["messages": user("Repeat exactly: नमस्ते दुनिया 👍🏿"), "max_tokens": 30, "temperature": 0]
            let plain = try await chat(http, request)
            var streaming = request
            streaming["stream"] = true
            let streamed = events(try await chat(http, streaming)).compactMap {
                (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String
            }.joined()
            #expect(Array(streamed.utf8) == Array(content(plain).utf8))
            #expect(!content(plain).unicodeScalars.contains("\u{FFFD}"))
        }
    }

    /// Kind 6: stop strings cannot break the JSON guarantee; kind 10: JSON is compact and json_object works.
    @Test func structuredOutputStaysValid() async throws {
        let adapter = try await Fixtures.supportAdapter()
        try await withServer(Fixtures.config(adapter: adapter, chat: true)) { http, _ in
            let schema: [String: Any] = ["type": "object", "properties": ["name": ["type": "string"], "age": ["type": "integer"]],
                                         "required": ["name", "age"], "additionalProperties": false]
            let format: [String: Any] = ["type": "json_schema", "json_schema": ["name": "person", "schema": schema]]
            for stop in [["}"], ["age"]] {
                let r = try await chat(http, ["messages": user("Ana Silva is 34."), "response_format": format, "stop": stop])
                #expect(r.status == 400 && (r.json["error"] as? [String: Any])?["param"] as? String == "stop", "\(r.text)")
            }
            let r = try await chat(http, ["messages": user("Ana Silva is 34. Give her name and age as JSON."), "response_format": format,
                                          "temperature": 0, "max_tokens": 60])
            let text = content(r)
            #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8))) != nil, "\(text)")
            // Compact by default: no whitespace between tokens outside strings.
            #expect(!text.contains("\n") && !text.contains(": ") && !text.contains(", \""), "\(text)")
            let object = try await chat(http, ["messages": user("Describe a cat as a JSON object."), "response_format": ["type": "json_object"],
                                               "temperature": 0, "max_tokens": 60])
            #expect(object.status == 200, "\(object.text)")
            let parsed = try? JSONSerialization.jsonObject(with: Data(content(object).utf8))
            #expect(parsed is [String: Any], "\(content(object))")
            let usage = object.json["usage"] as? [String: Any]
            #expect((usage?["completion_tokens"] as? Int ?? 99) <= 60)
        }
    }

    /// Kind 7: every parameter is implemented as OpenAI documents it or refused with a 400 naming it.
    @Test func openAIParametersAreImplementedOrRefusedByName() async throws {
        let adapter = try await Fixtures.supportAdapter()
        try await withServer(Fixtures.config(adapter: adapter, chat: true)) { http, _ in
            func refused(_ extra: [String: Any], _ param: String, _ code: String? = nil) async throws {
                var body: [String: Any] = ["messages": user("hi"), "max_tokens": 4]
                for (k, v) in extra { body[k] = v }
                let r = try await chat(http, body)
                let error = r.json["error"] as? [String: Any] ?? [:]
                #expect(r.status == 400, "\(extra): \(r.text)")
                #expect(error["param"] as? String == param, "\(extra): \(r.text)")
                #expect(error["type"] as? String == "invalid_request_error")
                if let code { #expect(error["code"] as? String == code, "\(r.text)") }
            }
            try await refused(["tools": [["type": "function", "function": ["name": "f"]]]], "tools", "unsupported_parameter")
            try await refused(["tool_choice": "auto"], "tool_choice", "unsupported_parameter")
            try await refused(["frobnicate": 1], "frobnicate", "unsupported_parameter")
            try await refused(["max_tokens": 2.5], "max_tokens", "invalid_type")
            try await refused(["seed": 1.5], "seed", "invalid_type")
            try await refused(["temperature": "hot"], "temperature", "invalid_type")
            try await refused(["presence_penalty": 3], "presence_penalty")
            try await refused(["top_logprobs": 3], "top_logprobs")
            try await refused(["logprobs": true, "top_logprobs": 21], "top_logprobs")
            try await refused(["logit_bias": ["999999": 5]], "logit_bias")
            try await refused(["logit_bias": ["12": 101]], "logit_bias.12")
            try await refused(["stop": ["a", "b", "c", "d", "e"]], "stop")
            try await refused(["stop": [""]], "stop")
            try await refused(["stream_options": ["include_usage": true]], "stream_options")
            try await refused(["n": 2], "n")
            try await refused(["messages": [["role": "user", "content": "hi", "name": "ana"]]], "messages[0].name", "unsupported_parameter")
            try await refused(["messages": [["role": "user", "content": [["type": "image_url", "image_url": ["url": "x"]]]]]], "messages[0].content[0].type")
            try await refused(["response_format": ["type": "yaml"]], "response_format.type")
            try await refused(["response_format": ["type": "json_schema", "json_schema": ["name": "p q!", "schema": ["type": "object"]]]],
                              "response_format.json_schema.name")
            let zero = try await chat(http, ["messages": user("hi"), "max_tokens": 0])
            #expect(zero.status == 400 && zero.errorMessage.contains("at least 1"), "\(zero.text)")
            let topP = try await chat(http, ["messages": user("hi"), "max_tokens": 2, "top_p": 0])
            #expect(topP.status == 200, "\(topP.text)")
            let long = try await chat(http, ["messages": user(String(repeating: "word ", count: 3000)), "max_tokens": 4])
            #expect(long.status == 400 && (long.json["error"] as? [String: Any])?["code"] as? String == "context_length_exceeded", "\(long.text)")

            // Implemented: any 64-bit seed, the stricter of two token limits, penalties, logit_bias, logprobs.
            let seeded = try await chat(http, ["messages": user("hi"), "max_tokens": 4, "seed": -1])
            #expect(seeded.status == 200, "\(seeded.text)")
            let both = try await chat(http, ["messages": user("Tell me a long story."), "max_tokens": 3, "max_completion_tokens": 50, "temperature": 0,
                                             "logit_bias": ["2": -100]])
            #expect((both.json["usage"] as? [String: Any])?["completion_tokens"] as? Int == 3, "\(both.text)")
            let penalised = try await chat(http, ["messages": user("Say yes yes yes yes."), "max_tokens": 8, "temperature": 0,
                                                  "presence_penalty": 2, "frequency_penalty": 2])
            #expect(penalised.status == 200)
            let withLogprobs = try await chat(http, ["messages": user("Name a colour."), "max_tokens": 5, "temperature": 0,
                                                     "logprobs": true, "top_logprobs": 3])
            let choice = (withLogprobs.json["choices"] as? [[String: Any]])?.first ?? [:]
            let entries = ((choice["logprobs"] as? [String: Any])?["content"] as? [[String: Any]]) ?? []
            #expect(!entries.isEmpty, "\(withLogprobs.text)")
            for e in entries {
                let top = e["top_logprobs"] as? [[String: Any]] ?? []
                #expect(top.count == 3)
                #expect((e["logprob"] as? Double ?? 1) <= 0)
                // Greedy: the chosen token is the most probable one.
                #expect(top.first?["token"] as? String == e["token"] as? String)
                let tokenBytes = (e["bytes"] as? [Int] ?? []).map(UInt8.init)
                #expect(!tokenBytes.isEmpty)
                // A token that is whole UTF-8 is its bytes; one that ends inside a character shows them decoded as best it can.
                if let whole = String(validating: tokenBytes, as: UTF8.self) { #expect(whole == e["token"] as? String) }
            }
            // The greedy text is the tokens' bytes put together.
            let bytes = entries.flatMap { ($0["bytes"] as? [Int]) ?? [] }.map(UInt8.init)
            #expect(String(decoding: bytes, as: UTF8.self) == content(withLogprobs))
            let plain = try await chat(http, ["messages": user("Name a colour."), "max_tokens": 5, "temperature": 0])
            #expect(((plain.json["choices"] as? [[String: Any]])?.first?["logprobs"]) is NSNull)

            // Usage rides in a stream only when asked, as one extra chunk with no choices.
            let quiet = events(try await chat(http, ["messages": user("hi"), "max_tokens": 4, "stream": true]))
            #expect(quiet.allSatisfy { $0["usage"] == nil || $0["usage"] is NSNull })
            let counted = events(try await chat(http, ["messages": user("hi"), "max_tokens": 4, "stream": true, "stream_options": ["include_usage": true]]))
            #expect((counted.last?["choices"] as? [Any])?.isEmpty == true)
            #expect(((counted.last?["usage"] as? [String: Any])?["total_tokens"] as? Int ?? 0) > 0)
            #expect(counted.dropLast().allSatisfy { $0["usage"] == nil || $0["usage"] is NSNull })
        }
    }

    /// Kind 8: a non-streamed completion whose client went away stops instead of holding the engine.
    @Test func workNobodyWaitsForIsCancelled() async throws {
        let adapter = try await Fixtures.supportAdapter()
        try await withServer(Fixtures.config(adapter: adapter, chat: true)) { http, service in
            // The end-of-turn token (id 2) is banned, so the generation would run the whole budget.
            let body: [String: Any] = ["model": "smollm2", "messages": user("Tell me a very long story."), "max_tokens": 512, "logit_bias": ["2": -100]]
            _ = try? await http.send("POST", "/v1/chat/completions", json: body, timeout: 1)
            var depth = await service.engine.depth
            for _ in 0..<100 where depth > 0 {
                try await Task.sleep(for: .milliseconds(50))
                depth = await service.engine.depth
            }
            #expect(depth == 0)
            // It stopped because the client left, not because it finished.
            let metrics = try await http.send("GET", "/metrics", key: .some(nil)).text
            #expect(metrics.contains(#"microscale_chat_completions_total{model="smollm2",outcome="cancelled"}"#) ||
                    metrics.contains(#"microscale_chat_completions_total{outcome="cancelled",model="smollm2"}"#), "\(metrics.split(separator: "\n").filter { $0.contains("chat_completions") })")
        }
    }

    /// Kind 9: a request that can never fit the queue is refused for what it is, not 429 forever.
    @Test func requestsLargerThanTheQueueAreNot429() async throws {
        let adapter = try await Fixtures.supportAdapter()
        var config = Fixtures.config(adapter: adapter, chat: true)
        config.limits.maxQueue = 8
        config.limits.maxBatchInputs = 16
        try await withServer(config) { http, _ in
            let chatReply = try await chat(http, ["messages": user("hi"), "max_tokens": 300, "logit_bias": ["2": -100]])
            #expect(chatReply.status == 200, "\(chatReply.text)")
            let batch = try await http.send("POST", "/v1/tasks/support-queue/decide", json: ["inputs": Array(repeating: "router delivery", count: 9)])
            #expect(batch.status == 413, "\(batch.text)")
            #expect(batch.errorMessage.contains("max_queue"))
        }
    }

    /// Kinds 3, 5 and 12: NUL is refused by name; other control characters and every other scalar are stored exactly;
    /// inputs that are empty once invisible characters are removed are refused like empty ones; errors name the input.
    @Test func inputsAreStoredExactlyOrRefusedByName() async throws {
        let adapter = try await Fixtures.supportAdapter()
        try await withServer(Fixtures.config(adapter: adapter)) { http, service in
            let path = "/v1/tasks/support-queue/decide"
            let nul = try await http.send("POST", path, json: ["text": "\u{0}my solicitor will contact you"])
            #expect(nul.status == 400 && (nul.json["error"] as? [String: Any])?["param"] as? String == "text", "\(nul.text)")
            let nulBatch = try await http.send("POST", path, json: ["inputs": ["fine", "bad\u{0}"]])
            #expect((nulBatch.json["error"] as? [String: Any])?["param"] as? String == "inputs[1]")
            for blank in ["\u{200B}\u{00AD}", "\u{FEFF}", "   ", "\u{2060}\u{200E}"] {
                let r = try await http.send("POST", path, json: ["text": blank])
                #expect(r.status == 400 && r.errorMessage.contains("empty"), "\(blank.unicodeScalars.map(\.value)): \(r.text)")
            }
            let one = try await http.send("POST", path, json: ["inputs": ["  "]])
            #expect((one.json["error"] as? [String: Any])?["param"] as? String == "inputs[0]", "\(one.text)")
            let wrongType = try await http.send("POST", path, raw: Array(#"{"text":"hi"}"#.utf8), contentType: "text/plain")
            #expect(wrongType.status == 415, "\(wrongType.text)")
            // Stored byte for byte: control characters, combining marks, RTL, zero-width, emoji sequences.
            let odd = "bell\u{07} tab\t e\u{0301} مرحبا \u{200F}x\u{200B}y 👩🏽‍💻 🇫🇷 क्ष"
            let r = try await http.send("POST", path, json: ["text": odd])
            #expect(r.status == 200)
            let stored = try await service.store.decision(id: r.json["id"] as! String)
            #expect(stored.map { Array($0.input!.utf8) } == Array(odd.utf8))
            let shown = try await http.send("GET", "/v1/decisions/\(r.json["id"] as! String)")
            #expect(Array((shown.json["input"] as? String ?? "").utf8) == Array(odd.utf8))
            #expect(r.json["truncated"] as? Bool == false)
            // An input longer than the backbone's token limit (the task's max_input_tokens: 128) is read in part, and
            // the decision and the log say so.
            let long = String(repeating: "my router keeps dropping the connection every evening and nobody has fixed it. ", count: 30)
            let cut = try await http.send("POST", path, json: ["text": long])
            #expect(cut.json["truncated"] as? Bool == true, "\(cut.text)")
            #expect(cut.json["tokens_kept"] as? Int == 128)
            #expect((cut.json["input_tokens"] as? Int ?? 0) > 128)
            let logged = try await http.send("GET", "/v1/decisions/\(cut.json["id"] as! String)")
            #expect(logged.json["truncated"] as? Bool == true && logged.json["tokens_kept"] as? Int == 128)
        }
    }

    /// Kind 11: a batch of escalations to a slow tier waits for request slots instead of failing, and waiting for a
    /// slot is never held against the tier's circuit breaker.
    @Test func escalationsWaitForASlotAndLocalWaitsDoNotOpenTheBreaker() async throws {
        let adapter = try await Fixtures.supportAdapter()
        try await withSerialTier(seconds: 0.15) { base, serial in
            var config = Fixtures.config(adapter: adapter, escalation: tier(base + "/v1", timeout: 4, retries: 0, breaker: 2))
            config.limits.maxBatchInputs = 20
            try await withServer(config) { http, service in
                let text = try await escalatingText(service)
                let r = try await http.send("POST", "/v1/tasks/support-queue/decide", json: ["inputs": Array(repeating: text, count: 20)])
                let decisions = r.json["decisions"] as? [[String: Any]] ?? []
                #expect(decisions.count == 20, "\(r.text)")
                #expect(decisions.allSatisfy { $0["route"] as? String == "escalated" }, "\(decisions.map { $0["detail"] ?? "" })")
                #expect(await serial.served == 20)
            }
            // One slot, a hanging tier, no retries, a breaker that opens after 3 failures, four requests at once: the first
            // fails at the tier, at most one more gets the slot as it frees, the others give up waiting for it. Those waits
            // are not the tier's failures, so the breaker stays closed (counting them, as before, opened it).
            var hanging = tier(base + "/hang/v1", timeout: 0.5, retries: 0, breaker: 3)
            hanging.maxConcurrent = 1
            let client = EscalationClient(tier: hanging, http: HTTPClient.shared, logger: Fixtures.logger)
            let schema = Schema.anyObject
            let outcomes = await withTaskGroup(of: EscalationOutcome.self) { group in
                for _ in 0..<4 { group.addTask { await client.ask(task: "t", system: "s", user: "u", schema: schema, draft: []) } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.allSatisfy { $0.outcome == .failed })
            #expect(outcomes.filter { $0.attempts == 0 }.count >= 2, "\(outcomes.map(\.error))")
            #expect(outcomes.filter { $0.attempts == 0 }.allSatisfy { ($0.error ?? "").contains("slot") })
            #expect(await client.breaker.isOpen == false)
        }
    }

    /// Kind 12: a tier's error reaches the client as a summary with its code; its body stays in the log.
    @Test func theTiersErrorBodyStaysInTheLog() async throws {
        let adapter = try await Fixtures.supportAdapter()
        try await withLegalTier { base in
            let url = base.replacingOccurrences(of: "/v1", with: "/toolong/v1")
            try await withServer(Fixtures.config(adapter: adapter, escalation: tier(url, retries: 0))) { http, service in
                let r = try await http.send("POST", "/v1/tasks/support-queue/decide", json: ["text": try await escalatingText(service)])
                #expect(r.json["reason"] as? String == "escalation_failed", "\(r.text)")
                let error = (r.json["escalation"] as? [String: Any])?["error"] as? String ?? ""
                #expect(error.contains("HTTP 400") && error.contains("context_length_exceeded"), "\(error)")
                #expect(!r.text.contains("internal-detail-xyz"))
                let shown = try await http.send("GET", "/v1/decisions/\(r.json["id"] as! String)")
                #expect(shown.status == 200 && !shown.text.contains("internal-detail-xyz"))
                let stored = try await service.store.decision(id: r.json["id"] as! String)
                #expect(stored?.escalationJSON?.contains("internal-detail-xyz") == true)
            }
        }
    }

    /// Kind 4: rules see through invisible and look-alike characters; the larger tier's high-risk answer goes to a person.
    @Test func rulesCannotBeBypassedAndTheLargerTierMeetsTheReviewPolicy() async throws {
        let adapter = try await Fixtures.supportAdapter()
        try await withLegalTier { base in
            try await withServer(Fixtures.config(adapter: adapter, escalation: tier(base))) { http, service in
                for text in ["I will s\u{200B}ue you", "I will s\u{00AD}ue you", "see you in cоurt", "see you in ｃｏｕｒｔ", "my l\u{200D}awyer will call"] {
                    let r = try await http.send("POST", "/v1/tasks/support-queue/decide", json: ["text": text])
                    #expect(r.json["route"] as? String == "review" && r.json["tier"] as? String == "human", "\(text): \(r.text)")
                    let stored = try await service.store.decision(id: r.json["id"] as! String)
                    #expect(stored?.input == text)
                    let item = try await service.store.reviewItem(decisionId: r.json["id"] as! String)
                    #expect(item?.text == text)
                }
                // An input the small model escalates, answered legal_dispute by the larger tier, still goes to review.
                let vague = try await escalatingText(service)
                let r = try await http.send("POST", "/v1/tasks/support-queue/decide", json: ["text": vague])
                #expect(r.json["label"] as? String == "legal_dispute")
                #expect(r.json["route"] as? String == "review", "\(r.text)")
                // The small model's confidence belongs to its own label: it stays in the draft, not beside the tier's label.
                #expect(r.json["confidence"] is NSNull)
                #expect((r.json["draft"] as? [String: Any])?["confidence"] as? Double != nil)
                let shown = try await http.send("GET", "/v1/decisions/\(r.json["id"] as! String)")
                #expect(shown.json["confidence"] is NSNull || shown.json["confidence"] == nil)
                // The log keeps the small model's confidence, which drift reads.
                #expect(try await service.store.decision(id: r.json["id"] as! String)?.confidence != nil)
            }
        }
    }
}
