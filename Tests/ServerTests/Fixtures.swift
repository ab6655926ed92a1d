import AsyncHTTPClient
import Datasets
import Foundation
import Logging
import NIOCore
import Testing
@testable import Server
@testable import Store

/// Paths, trained adapters and running servers shared by the server tests.
enum Fixtures {
    static let root = ProjectPaths.root
    static let binary = root + "/.build/release/microscale"
    static let supportTask = root + "/examples/support/task.yaml"
    static let extractionTask = root + "/examples/extraction/task.yaml"
    static let chatModel = root + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    static let logger = Logger(label: "test")

    static func temporary(_ name: String) -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("microscale-server-tests")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder.appendingPathComponent("\(UUID().uuidString.prefix(8))-\(name)").path
    }

    /// The support task's adapter, trained once per test run with the command line.
    static func supportAdapter() async throws -> String { try await AdapterCache.shared.path() }

    actor AdapterCache {
        static let shared = AdapterCache()
        var trained: String?

        func path() throws -> String {
            if let trained { return trained }
            let out = Fixtures.temporary("support.adapter.json")
            let result = try run(Fixtures.binary, ["train", "--task", Fixtures.supportTask, "--data", Fixtures.root + "/examples/support/messages.csv", "--output", out])
            guard result.status == 0 else { throw FixtureError("training failed: \(result.output)") }
            trained = out
            return out
        }
    }

    /// A configuration serving the support task (and optionally the chat model and the extraction task).
    static func config(adapter: String, store: String? = nil, chat: Bool = false, extraction: Bool = false,
                       escalation: ServiceConfig.Escalation? = nil) -> ServiceConfig {
        var c = ServiceConfig()
        c.port = 0
        c.apiKeys = ["api-key"]
        c.reviewerKeys = ["reviewer-key"]
        c.store = store ?? "sqlite:" + temporary("decisions.sqlite")
        c.tasks = [.init(path: supportTask, adapter: adapter)] + (extraction ? [.init(path: extractionTask, adapter: nil)] : [])
        if chat { c.chatModels = [("smollm2", chatModel)] }
        c.escalation = escalation
        c.limits.maxBodyBytes = 64 * 1024
        c.limits.maxBatchInputs = 8
        c.drift.interval = 0.5
        return c
    }

    /// The same configuration as a YAML file for `microscale serve`.
    static func yaml(adapter: String, store: String, chat: Bool, escalation: String? = nil, model: String = "smollm2",
                     tasks: Bool = true, timeout: Double = 30) -> String {
        var lines = [
            "listen: {host: 127.0.0.1, port: 0}",
            "auth: {api_keys: [api-key], reviewer_keys: [reviewer-key]}",
            "store: \"\(store)\"",
        ]
        if tasks { lines.append("tasks: [{path: \(supportTask), adapter: \(adapter)}]") }
        if chat { lines.append("chat_models: {smollm2: \(chatModel)}") }
        if let escalation {
            lines.append("escalation: {base_url: \"\(escalation)\", model: \(model), api_key: api-key, timeout_seconds: \(timeout), retries: 1, backoff_seconds: 0.05}")
        }
        let path = temporary("serve.yaml")
        try? lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Inputs the trained support adapter is unsure of (the policy escalates them), found from the data rather than
    /// assumed: the first of a list of vague messages whose decision is `escalate`.
    static let vagueMessages = [
        "What's the weather like in Lisbon?", "hello", "I have a question", "can you help me with my thing",
        "something is not right", "please call me back", "is anyone there?", "I need some information",
    ]
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Runs a program to completion; output and error interleaved.
@discardableResult
func run(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: program)
    p.arguments = arguments
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A `microscale serve` process on a free loopback port.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let url: String
    let errorLog: String

    init(config: String, environment: [String: String] = [:]) throws {
        errorLog = Fixtures.temporary("serve.log")
        _ = FileManager.default.createFile(atPath: errorLog, contents: nil)
        process.executableURL = URL(fileURLWithPath: Fixtures.binary)
        process.arguments = ["serve", "--config", config]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: errorLog)
        try process.run()
        // The server prints its address once listening.
        var buffer = Data()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer += chunk
            if let line = String(decoding: buffer, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }) {
                url = String(line.dropFirst("listening on ".count))
                return
            }
        }
        process.terminate()
        throw FixtureError("the server did not start: \((try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? "")")
    }

    /// SIGTERM, then waits for the exit status.
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit { if process.isRunning { process.terminate() } }
}

/// A small HTTP helper over AsyncHTTPClient.
struct HTTP {
    let base: String
    var key: String? = "api-key"

    struct Reply {
        var status: Int
        var headers: [(String, String)]
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
        var errorMessage: String { ((json["error"] as? [String: Any])?["message"] as? String) ?? "" }
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    func send(_ method: String, _ path: String, json: Any? = nil, raw: [UInt8]? = nil, key: String?? = nil, timeout: Int64 = 300,
              contentType: String = "application/json") async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = .init(rawValue: method)
        if let k = key ?? self.key { request.headers.add(name: "Authorization", value: "Bearer \(k)") }
        if let json { request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json))) }
        if let raw { request.body = .bytes(ByteBuffer(bytes: raw)) }
        request.headers.add(name: "Content-Type", value: contentType)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout))
        let body = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: Data(buffer: body))
    }
}
