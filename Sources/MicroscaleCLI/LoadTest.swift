import ArgumentParser
import AsyncHTTPClient
import Datasets
import Foundation
import NIOCore

/// `microscale loadtest`: closed-loop load against a running service's decide endpoint, at several concurrencies.
struct LoadTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Send decide requests at fixed concurrency and report requests per second and p50/p95/p99 latency.")

    @Option(help: "Base URL of the service.")
    var url = "http://127.0.0.1:8080"

    @Option(help: "Task to decide.")
    var task: String

    @Option(help: "CSV whose text column supplies the inputs (cycled).")
    var data: String

    @Option(help: "The CSV's text column.")
    var column = "text"

    @Option(help: "Concurrency levels, comma-separated.")
    var concurrency = "1,8,32"

    @Option(help: "Requests per level (after a warm-up of 16).")
    var requests = 400

    @Option(help: "API key (default: $MICROSCALE_API_KEY).")
    var key: String?

    @Option(help: "Append one JSON line per level to this file.")
    var output: String?

    func run() async throws {
        let levels = try concurrency.split(separator: ",").map { s -> Int in
            guard let n = Int(s.trimmingCharacters(in: .whitespaces)), n > 0 else { throw ValidationError("bad concurrency '\(s)'") }
            return n
        }
        let table = try CSVTable(path: data)
        guard let index = table.header.firstIndex(of: column) else { throw ValidationError("no column '\(column)' in \(data)") }
        let texts = table.rows.map { $0[index] }.filter { !$0.isEmpty }
        guard !texts.isEmpty else { throw ValidationError("no texts in \(data)") }
        let key = self.key ?? ProcessInfo.processInfo.environment["MICROSCALE_API_KEY"]
        let endpoint = url + "/v1/tasks/\(task)/decide"
        let client = HTTPClient.shared

        @Sendable func send(_ i: Int) async -> (ok: Bool, status: Int, seconds: Double, escalated: Bool) {
            var request = HTTPClientRequest(url: endpoint)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
            let body = try! JSONSerialization.data(withJSONObject: ["text": texts[i % texts.count]])
            request.body = .bytes(ByteBuffer(data: body))
            let start = ContinuousClock.now
            do {
                let response = try await client.execute(request, timeout: .seconds(120))
                let body = try await response.body.collect(upTo: 1 << 20)
                let seconds = (ContinuousClock.now - start).seconds
                // Which tier answered: a decision the larger tier made measures that tier, not the cascade's own path.
                let decision = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any]
                return (response.status.code == 200, Int(response.status.code), seconds, decision?["tier"] as? String == "large")
            } catch {
                return (false, 0, (ContinuousClock.now - start).seconds, false)
            }
        }

        print("endpoint: \(endpoint), \(texts.count) distinct inputs, \(requests) requests per level")
        print("concurrency   req/s    p50 ms   p95 ms   p99 ms   errors  429s  escalated")
        var lines: [String] = []
        for level in levels {
            _ = await withTaskGroup(of: Void.self) { group in
                for i in 0..<16 { group.addTask { _ = await send(i) } }
            }
            let counter = Counter()
            let start = ContinuousClock.now
            let results = await withTaskGroup(of: [(ok: Bool, status: Int, seconds: Double, escalated: Bool)].self) { group in
                for _ in 0..<level {
                    group.addTask {
                        var mine: [(ok: Bool, status: Int, seconds: Double, escalated: Bool)] = []
                        while let i = await counter.next(limit: requests) { mine.append(await send(i + 1000)) }
                        return mine
                    }
                }
                var all: [(ok: Bool, status: Int, seconds: Double, escalated: Bool)] = []
                for await part in group { all += part }
                return all
            }
            let wall = (ContinuousClock.now - start).seconds
            let latencies = results.filter(\.ok).map(\.seconds).sorted()
            func percentile(_ p: Double) -> Double {
                latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int((p * Double(latencies.count)).rounded(.up)) - 1)] * 1000
            }
            let ok = latencies.count, errors = results.count - ok, throttled = results.count { $0.status == 429 }
            let escalated = results.count(where: \.escalated)
            let rate = Double(ok) / wall
            print(String(format: "%11d %7.1f %9.1f %8.1f %8.1f %8d %5d %10d", level, rate, percentile(0.5), percentile(0.95), percentile(0.99), errors,
                         throttled, escalated))
            if ok > 0 && Double(escalated) / Double(ok) > 0.05 {
                print(String(format: "warning: %.0f%% of the decisions were answered by the larger tier, so these figures measure that tier. "
                    + "To measure the cascade's own path, serve a configuration with `escalation: none` (make loadtest-serve).",
                    100 * Double(escalated) / Double(ok)))
            }
            lines.append(String(format: #"{"task":"%@","concurrency":%d,"requests":%d,"ok":%d,"errors":%d,"throttled":%d,"escalated":%d,"rps":%.2f,"p50_ms":%.2f,"p95_ms":%.2f,"p99_ms":%.2f}"#,
                                task, level, results.count, ok, errors, throttled, escalated, rate, percentile(0.5), percentile(0.95), percentile(0.99)))
        }
        if let output {
            let folder = URL(fileURLWithPath: output).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let text = lines.joined(separator: "\n") + "\n"
            if let handle = FileHandle(forWritingAtPath: output) {
                handle.seekToEndOfFile()
                handle.write(Data(text.utf8))
                try handle.close()
            } else {
                try text.write(toFile: output, atomically: true, encoding: .utf8)
            }
        }
    }
}

/// Hands out request numbers to the workers.
private actor Counter {
    var value = 0
    func next(limit: Int) -> Int? {
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}
