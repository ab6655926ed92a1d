import Cascade
import Foundation
import Store
import StructuredOutput

/// A request the API refuses, with the HTTP status and OpenAI's error body:
/// `{"error": {"message", "type", "param", "code"}}`, where `type` is OpenAI's category for the status
/// (`invalid_request_error`, `authentication_error`, `permission_error`, `not_found_error`, `rate_limit_error`,
/// `server_error`) and `code` says exactly what was wrong (`context_length_exceeded`, `unsupported_parameter`, …).
public struct APIError: Error, CustomStringConvertible, Sendable {
    /// HTTP status code.
    public var statusCode: Int
    /// What was wrong, machine-readable: invalid_request, unsupported_parameter, invalid_type, context_length_exceeded,
    /// unauthorized, forbidden, not_found, model_not_found, method_not_allowed, conflict, payload_too_large,
    /// unsupported_media_type, queue_limit_exceeded, overloaded, unavailable, internal.
    public var code: String
    /// What was wrong and what to do.
    public var message: String
    /// The offending parameter, if one (a JSON path such as `inputs[3]` or `messages[0].content`).
    public var param: String?
    /// Seconds to wait before retrying (429, 503).
    public var retryAfter: Int?
    /// Methods allowed (405).
    var allow: String?

    /// An error with its status, code, message and parameter.
    public init(statusCode: Int, code: String, message: String, param: String? = nil, retryAfter: Int? = nil) {
        self.statusCode = statusCode
        self.code = code
        self.message = message
        self.param = param
        self.retryAfter = retryAfter
    }

    public var description: String { "\(statusCode) \(code): \(message)" }

    /// OpenAI's error type for the status.
    public var type: String {
        switch statusCode {
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 429: "rate_limit_error"
        case 400..<500: "invalid_request_error"
        default: "server_error"
        }
    }

    static func invalid(_ message: String, param: String? = nil, code: String = "invalid_request") -> APIError {
        APIError(statusCode: 400, code: code, message: message, param: param)
    }
    static func unsupported(_ param: String, _ message: String) -> APIError {
        APIError(statusCode: 400, code: "unsupported_parameter", message: message, param: param)
    }
    /// 429 with the engine's retry hint.
    static func overloaded(_ e: Overloaded) -> APIError {
        APIError(statusCode: 429, code: "overloaded", message: e.description, retryAfter: e.retryAfter)
    }
    static func notFound(_ message: String) -> APIError { APIError(statusCode: 404, code: "not_found", message: message) }
    static func conflict(_ message: String) -> APIError { APIError(statusCode: 409, code: "conflict", message: message) }
    static func unavailable(_ message: String, retryAfter: Int = 5) -> APIError {
        APIError(statusCode: 503, code: "unavailable", message: message, retryAfter: retryAfter)
    }

    /// The JSON body: `{"error": {"message", "type", "param", "code"}}`.
    var body: Body { Body(error: .init(message: message, type: type, param: param, code: code)) }

    struct Body: Encodable {
        struct Detail: Encodable {
            var message: String, type: String, param: String?, code: String
            func encode(to encoder: any Encoder) throws {
                enum K: String, CodingKey { case message, type, param, code }
                var c = encoder.container(keyedBy: K.self)
                try c.encode(message, forKey: .message)
                try c.encode(type, forKey: .type)
                try c.encode(param, forKey: .param)  // null when none, as OpenAI writes it
                try c.encode(code, forKey: .code)
            }
        }
        var error: Detail
    }
}

/// Milliseconds per stage of a decision.
public struct Latency: Codable, Sendable {
    public var queue = 0.0, model = 0.0, policy = 0.0, escalation = 0.0, store = 0.0, total = 0.0

    /// Rounded to microseconds.
    var rounded: Latency {
        func r(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
        return Latency(queue: r(queue), model: r(model), policy: r(policy), escalation: r(escalation), store: r(store), total: r(total))
    }
}

/// The small model's answer when another tier answered.
public struct Draft: Codable, Sendable {
    public var label: String?
    public var confidence: Double?
    public var fields: JSONValue?
}

/// A field of an extraction and whether it passed its checks.
public struct FieldCheck: Codable, Sendable {
    public var name: String
    public var valid: Bool
    public var reasons: [String]
}

/// A ranked alternative label.
public struct AlternativeLabel: Codable, Sendable {
    public var label: String
    public var probability: Double
}

/// Who answered a decision.
public enum Tier: String, Codable, Sendable {
    /// The in-process small model.
    case small
    /// The larger model (any OpenAI-compatible endpoint).
    case large
    /// A person, through the review queue.
    case human

    /// The tier a route leads to (``Route/tier`` names it; the tests check every route).
    public init(_ route: Route) { self.init(rawValue: route.tier)! }
}

/// Why a decision took its route, as the API names it: the policy's reasons (``Reason``) and the service's own.
public enum DecisionReason: String, Codable, Sendable, CaseIterable {
    case confident, uncertified, rule
    case belowThreshold = "below_threshold", highRiskMass = "high_risk_mass", outOfScope = "out_of_scope"
    case alwaysReview = "always_review", zeroShot = "zero_shot"
    /// Extraction: every field passed its checks.
    case valid
    /// Extraction: a field failed its checks.
    case validationFailed = "validation_failed"
    /// The larger tier did not answer (down, slow, or an answer that was not what was asked).
    case escalationFailed = "escalation_failed"

    /// The policy's reason (``Reason/apiName`` names it; the tests check every reason).
    public init(_ reason: Reason) { self.init(rawValue: reason.apiName)! }
}

/// A reviewer's answer compared with the draft.
public enum ReviewOutcome: String, Codable, Sendable {
    /// The reviewer's answer equals the draft.
    case confirmed
    /// It differs.
    case corrected
}

/// What `POST /v1/tasks/{task}/decide` answers for one input (see openapi.yaml). `route` is written as the API names
/// it (`accepted`, `escalated`, `review`).
public struct DecisionResponse: Encodable, Sendable {
    public var id: String
    public var task: String
    public var label: String?
    public var fields: JSONValue?
    public var fieldChecks: [FieldCheck]?
    public var confidence: Double?
    public var route: Route
    public var reason: DecisionReason
    public var detail: String
    public var riskClass: String?
    public var tier: Tier
    public var alternatives: [AlternativeLabel]
    public var draft: Draft?
    public var escalation: EscalationOutcome?
    public var latencyMs: Latency
    public var modelVersion: String
    public var adapterVersion: String?
    /// Whether the backbone read only the beginning of the input (its `max_input_tokens`); nil when not measured.
    public var truncated: Bool?
    /// Probability mass on each high-risk class (classification), as the command line shows it.
    public var highRiskMass: [String: Double]?
    /// Tokens the backbone made of the input, and how many it read.
    public var inputTokens: Int?
    public var tokensKept: Int?

    enum CodingKeys: String, CodingKey {
        case id, task, label, fields, confidence, route, reason, detail, tier, alternatives, draft, escalation, truncated
        case fieldChecks = "field_checks", riskClass = "risk_class", latencyMs = "latency_ms", highRiskMass = "high_risk_mass"
        case modelVersion = "model_version", adapterVersion = "adapter_version", inputTokens = "input_tokens", tokensKept = "tokens_kept"
    }

    /// Routes the decision to a person, with `reason` (unchanged when nil) and `detail`.
    mutating func sendToReview(reason: DecisionReason? = nil, detail: String) {
        route = .review
        tier = .human
        if let reason { self.reason = reason }
        self.detail = detail
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(task, forKey: .task)
        try c.encode(label, forKey: .label)
        try c.encode(fields, forKey: .fields)
        try c.encode(fieldChecks, forKey: .fieldChecks)
        try c.encode(confidence, forKey: .confidence)
        try c.encode(route.outcome, forKey: .route)
        try c.encode(reason, forKey: .reason)
        try c.encode(detail, forKey: .detail)
        try c.encode(riskClass, forKey: .riskClass)
        try c.encode(tier, forKey: .tier)
        try c.encode(alternatives, forKey: .alternatives)
        try c.encode(draft, forKey: .draft)
        try c.encode(escalation, forKey: .escalation)
        try c.encode(latencyMs, forKey: .latencyMs)
        try c.encode(modelVersion, forKey: .modelVersion)
        try c.encode(adapterVersion, forKey: .adapterVersion)
        try c.encodeIfPresent(truncated, forKey: .truncated)
        try c.encodeIfPresent(highRiskMass, forKey: .highRiskMass)
        try c.encodeIfPresent(inputTokens, forKey: .inputTokens)
        try c.encodeIfPresent(tokensKept, forKey: .tokensKept)
    }
}

/// A review item as the API shows it.
struct ReviewItemResponse: Codable, Sendable {
    var decisionId: String, task: String, text: String
    var draftLabel: String?, draftFields: JSONValue?, confidence: Double?
    var routeReason: String, detail: String, labels: [String]
    var status: String, claimedBy: String?, claimedAt: String?
    var resolvedLabel: String?, resolvedFields: JSONValue?, outcome: String?, resolvedBy: String?, resolvedAt: String?, createdAt: String

    enum CodingKeys: String, CodingKey {
        case task, text, confidence, detail, labels, status, outcome
        case decisionId = "decision_id", draftLabel = "draft_label", draftFields = "draft_fields", routeReason = "route_reason"
        case claimedBy = "claimed_by", claimedAt = "claimed_at", resolvedLabel = "resolved_label", resolvedFields = "resolved_fields"
        case resolvedBy = "resolved_by", resolvedAt = "resolved_at", createdAt = "created_at"
    }

    init(_ r: ReviewItem, labels: [String]) {
        decisionId = r.decisionId; task = r.task; text = r.text; draftLabel = r.draftLabel
        draftFields = r.draftFieldsJSON.flatMap { try? JSONValue.parse($0) }; confidence = r.confidence
        routeReason = r.reason; detail = r.detail; self.labels = labels; status = r.status.rawValue; claimedBy = r.claimedBy
        claimedAt = r.claimedAt.map(iso8601); resolvedLabel = r.resolvedLabel
        resolvedFields = r.resolvedFieldsJSON.flatMap { try? JSONValue.parse($0) }; outcome = r.outcome; resolvedBy = r.resolvedBy
        resolvedAt = r.resolvedAt.map(iso8601); createdAt = iso8601(r.createdAt)
    }
}

/// A stored decision as `GET /v1/decisions/{id}` shows it.
struct DecisionRecordResponse: Codable, Sendable {
    var id: String, task: String, createdAt: String, input: String?, inputSHA256: String
    var label: String?, fields: JSONValue?, confidence: Double?, route: String, reason: String, detail: String, tier: String
    var draft: JSONValue?, escalation: JSONValue?, latencyMs: JSONValue?, modelVersion: String, adapterVersion: String?
    var truncated: Bool?, inputTokens: Int?, tokensKept: Int?
    var origin: String?, teacherLabel: String?
    var review: ReviewItemResponse?

    enum CodingKeys: String, CodingKey {
        case id, task, input, label, fields, confidence, route, reason, detail, tier, draft, escalation, review, truncated, origin
        case createdAt = "created_at", inputSHA256 = "input_sha256", latencyMs = "latency_ms", teacherLabel = "teacher_label"
        case modelVersion = "model_version", adapterVersion = "adapter_version", inputTokens = "input_tokens", tokensKept = "tokens_kept"
    }

    init(_ d: DecisionRecord, review: ReviewItemResponse?) {
        id = d.id; task = d.task; createdAt = iso8601(d.createdAt); input = d.input; inputSHA256 = d.inputSHA256
        label = d.label; fields = d.fieldsJSON.flatMap { try? JSONValue.parse($0) }
        // As the decide answer: no confidence beside a label the larger tier gave (the draft keeps the small model's).
        let answered = d.escalationJSON.flatMap { try? JSONValue.parse($0) }?["outcome"]?.stringValue == EscalationOutcome.Kind.answered.rawValue
        confidence = answered ? nil : d.confidence
        route = d.route; reason = d.reason; detail = d.detail; tier = d.tier
        draft = d.draftJSON.flatMap { try? JSONValue.parse($0) }
        // The tier's raw answer stays in the log for operators; the API shows the summary only.
        escalation = d.escalationJSON.flatMap { try? JSONValue.parse($0) }.map { e in
            guard case let .object(members) = e else { return e }
            return .object(members.filter { $0.key != "response_body" })
        }
        latencyMs = try? JSONValue.parse(d.latencyJSON); modelVersion = d.modelVersion; adapterVersion = d.adapterVersion
        inputTokens = d.inputTokens; tokensKept = d.tokensKept
        truncated = d.inputTokens.flatMap { n in d.tokensKept.map { n > $0 } }
        origin = d.origin; teacherLabel = d.teacherLabel
        self.review = review
    }
}

/// A labelled example as the API shows it.
struct ExampleResponse: Codable, Sendable {
    var task: String, text: String, label: String?, fields: JSONValue?, source: String, decisionId: String, reviewer: String, createdAt: String

    enum CodingKeys: String, CodingKey {
        case task, text, label, fields, source, reviewer
        case decisionId = "decision_id", createdAt = "created_at"
    }

    init(_ e: LabelledExample) {
        task = e.task; text = e.text; label = e.label; fields = e.fieldsJSON.flatMap { try? JSONValue.parse($0) }
        source = e.source; decisionId = e.decisionId; reviewer = e.reviewer; createdAt = iso8601(e.createdAt)
    }
}

/// ISO 8601 with milliseconds, UTC.
func iso8601(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
}

/// Encodes API values with sorted keys (stable output for logs and diffs).
func encodeJSON<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
    return try encoder.encode(value)
}

/// Reads a request body as strict JSON: valid UTF-8, one JSON value, a clear error otherwise.
func parseBody(_ bytes: [UInt8]) throws -> JSONValue {
    guard String(validating: bytes, as: UTF8.self) != nil else {
        var index = 0
        // Find the first bad byte for the message.
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&iterator) {
            case let .scalarValue(s): index += UTF8.width(s)
            case .emptyInput: break loop
            case .error: break loop
            }
        }
        throw APIError.invalid("the request body is not valid UTF-8 (first bad byte at offset \(index))")
    }
    guard !bytes.isEmpty else { throw APIError.invalid("the request body is empty; send a JSON object") }
    do { return try JSONValue.parse(bytes) } catch let e as JSONParseError {
        throw APIError.invalid("the request body is not valid JSON: \(e.description)")
    }
}

extension JSONValue {
    /// The members of an object, refusing members outside `allowed` (a request carries data, never settings).
    func members(allowing allowed: Set<String>, context: String) throws -> [String: JSONValue] {
        guard case let .object(members) = self else { throw APIError.invalid("\(context): expected a JSON object") }
        var result: [String: JSONValue] = [:]
        for (k, v) in members {
            guard allowed.contains(k) else {
                throw APIError.invalid("\(context): unknown member '\(k)'; allowed: \(allowed.sorted().joined(separator: ", "))", param: k)
            }
            result[k] = v
        }
        return result
    }
}

/// Refuses text containing U+0000: PostgreSQL's text type cannot hold it and C APIs end strings at it, so it could
/// not be stored byte for byte. Other control characters are stored exactly as received.
func refuseNUL(_ text: String, param: String) throws {
    if let i = text.unicodeScalars.firstIndex(of: "\u{0}") {
        let offset = text.unicodeScalars.distance(from: text.unicodeScalars.startIndex, to: i)
        throw APIError.invalid("\(param) contains U+0000 (NUL) at scalar \(offset); it cannot be stored, so the input is refused", param: param)
    }
}
