import AsyncHTTPClient
import Cascade
import Foundation
import Logging
import StructuredOutput

/// The larger tier of each task: one ``EscalationClient`` (and circuit breaker) per endpoint, model and key, shared by
/// the tasks that use it. A task uses the configuration's `escalation` tier, else its own `tiers.large`, else none
/// (then what it would escalate goes to review).
final class Escalator: Sendable {
    /// Clients by task name.
    private let clients: [String: EscalationClient]
    /// The HTTP client escalations go through. It does not retry connections itself: the escalation client's own
    /// bounded retries and circuit breaker decide, so a refused connection fails at once instead of at the deadline.
    private let http: HTTPClient

    /// Builds the clients; throws when a task's `tiers.large.api_key` names an unset environment variable.
    init(config: ServiceConfig, tasks: [any ServedTask], environment: [String: String], logger: Logger) throws {
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.connectionPool.retryConnectionEstablishment = false
        // Each escalation client sends at most its max_concurrent (≤ 64) requests at once, so the pool always has a
        // connection for them and no attempt waits on the pool under its own deadline.
        httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        httpConfiguration.timeout.connect = .milliseconds(Int64(min(config.escalation?.timeout ?? 5, 5) * 1000))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
        self.http = http
        var byEndpoint: [String: EscalationClient] = [:]
        var clients: [String: EscalationClient] = [:]
        for task in tasks where !config.escalationDisabled {
            var tier = config.escalation
            if tier == nil {
                tier = try task.ownTier(environment: environment)
                if let key = config.escalationKey { tier?.apiKey = key }
            }
            guard let tier else { continue }
            let key = tier.baseURL + "\u{0}" + tier.model + "\u{0}" + Digest.of(tier.apiKey ?? "")
            let client = byEndpoint[key] ?? EscalationClient(tier: tier, http: http, logger: logger)
            byEndpoint[key] = client
            clients[task.name] = client
        }
        self.clients = clients
    }

    /// Asks the larger tier about `response` (with the small model's draft attached); its answer meets the same checks
    /// and review policy as the small model's, and whatever it does not answer goes to review.
    func escalate(_ response: inout DecisionResponse, text: String, task: any ServedTask) async {
        let draft = Draft(label: response.label, confidence: response.confidence, fields: response.fields)
        guard let client = clients[task.name] else {
            response.sendToReview(detail: response.detail + "; no escalation tier is configured")
            return
        }
        let question = task.question(about: response, text: text)
        var headers = [("Label", response.label ?? ""), ("Confidence", response.confidence.map { String(format: "%.4f", $0) } ?? "")]
        if let fields = response.fields { headers.append(("Fields", fields.description.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")) }
        let outcome = await client.ask(task: task.name, system: question.system, user: question.user, schema: question.schema, draft: headers)
        response.escalation = outcome
        response.draft = draft
        guard outcome.outcome == .answered, let answer = outcome.answer else {
            response.sendToReview(reason: .escalationFailed,
                                  detail: "the larger tier did not answer (\(outcome.error ?? outcome.outcome.rawValue)); before that: \(response.detail)")
            return
        }
        response.route = .escalate
        response.tier = .large
        // The calibrated confidence was the small model's in its own label; the draft keeps both. The tier's answer
        // has none.
        response.confidence = nil
        task.apply(answer: answer, to: &response, text: text)
    }

    /// Closes the HTTP client.
    func shutdown() async { try? await http.shutdown() }
}
