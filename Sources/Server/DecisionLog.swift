import Cascade
import Foundation
import Store

// What the log keeps of a decision: the mapping from the API's answer to the store's records.

extension DecisionRecord {
    /// The record of `response` to input `text`, keeping the input as `logging` says (the SHA-256 always). The
    /// record's confidence is always the small model's (the draft's when another tier answered), which drift reads.
    init(_ r: DecisionResponse, text: String, logging: ServiceConfig.InputLogging) throws {
        let input: String? = switch logging {
        case .full: text
        case .redacted: redact(text)
        case .hash: nil
        }
        func json<T: Encodable>(_ v: T?) throws -> String? { try v.map { String(decoding: try encodeJSON($0), as: UTF8.self) } }
        self.init(
            id: r.id, task: r.task, createdAt: Date(), input: input, inputSHA256: Digest.of(text), label: r.label,
            fieldsJSON: r.fields?.description, confidence: r.confidence ?? r.draft?.confidence, route: r.route.outcome, reason: r.reason.rawValue, detail: r.detail,
            tier: r.tier.rawValue, draftJSON: try json(r.draft), escalationJSON: try json(r.escalation), latencyJSON: try json(r.latencyMs) ?? "{}",
            modelVersion: r.modelVersion, adapterVersion: r.adapterVersion, inputTokens: r.inputTokens, tokensKept: r.tokensKept,
            teacherLabel: r.escalation?.outcome == .answered ? r.escalation?.answer?["label"]?.stringValue : nil)
    }
}

extension ReviewItem {
    /// The review item for `response` when it goes to a person (nil otherwise); it keeps the text as received.
    init?(queueing r: DecisionResponse, text: String) {
        guard r.route == .review else { return nil }
        self.init(decisionId: r.id, task: r.task, text: text, draftLabel: r.label, draftFieldsJSON: r.fields?.description,
                  confidence: r.confidence, reason: r.reason.rawValue, detail: r.detail, createdAt: Date())
    }
}
