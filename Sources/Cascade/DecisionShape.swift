import Foundation

// One decision has one JSON shape, whether `microscale decide` prints it or the service answers it: the API's member
// names and values (`route: "accepted"`, `reason: "out_of_scope"`, `risk_class`, `tier`, `confidence`). The raw values
// of `Route` and `Reason` stay as they are: task specs (`on_reject: escalate`, rules' `route: review`) and adapter
// files use them.

extension Route {
    /// The route as the API names it: accepted, escalated or review.
    public var outcome: String {
        switch self {
        case .accept: "accepted"
        case .escalate: "escalated"
        case .review: "review"
        }
    }

    /// The tier the route leads to: small, large or human.
    public var tier: String {
        switch self {
        case .accept: "small"
        case .escalate: "large"
        case .review: "human"
        }
    }

    /// The route the API calls `outcome` (nil for any other name).
    public init?(outcome: String) {
        guard let route = Route.allCases.first(where: { $0.outcome == outcome }) else { return nil }
        self = route
    }
}

extension Reason {
    /// The reason as the API names it: the raw value in snake_case (`outOfScope` → `out_of_scope`).
    public var apiName: String {
        rawValue.reduce(into: "") { name, c in
            if c.isUppercase { name += "_" + c.lowercased() } else { name.append(c) }
        }
    }

    /// The reason the API calls `apiName` (nil for any other name).
    public init?(apiName: String) {
        guard let reason = Reason.allCases.first(where: { $0.apiName == apiName }) else { return nil }
        self = reason
    }
}

/// One line of `microscale decide`: which input it answers (`index`, 0-based in input order, and `input`, the text
/// exactly as received) beside the decision's members, or beside an `error` object when the input was refused, so
/// every input has exactly one line and results never shift onto another row.
public struct DecisionLine: Encodable, Sendable {
    /// Position of the input, 0-based, in input order.
    public var index: Int
    /// The input exactly as received.
    public var input: String
    /// The decision, or why the input was refused.
    public var result: Result<Decision, InputError>

    /// A line from its parts.
    public init(index: Int, input: String, result: Result<Decision, InputError>) {
        self.index = index
        self.input = input
        self.result = result
    }

    /// A refused input's line: `message` says why.
    public init(index: Int, input: String, refusal message: String) {
        self.init(index: index, input: input, result: .failure(InputError(message: message)))
    }

    /// Decides `input` with `decide`; a refused input (an `InputError`) becomes an error line, any other error is
    /// thrown.
    public init(index: Int, input: String, decide: (String) throws -> Decision) throws {
        do {
            self.init(index: index, input: input, result: .success(try decide(input)))
        } catch let error as InputError {
            self.init(index: index, input: input, result: .failure(error))
        }
    }

    /// Whether the input was refused.
    public var refused: Bool {
        if case .failure = result { return true }
        return false
    }

    /// The line as compact JSON: `index` and `input` first, so a reader sees at once which input it answers, then the
    /// other members with their keys sorted (an encoder keeps no order of its own).
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let rest: Data = switch result {
        case let .success(decision): try encoder.encode(decision)
        case let .failure(error): try encoder.encode(["error": ErrorBody(message: error.message)])
        }
        let input = String(decoding: try encoder.encode(input), as: UTF8.self)
        return "{\"index\":\(index),\"input\":\(input)," + String(decoding: rest.dropFirst(), as: UTF8.self)
    }

    enum CodingKeys: String, CodingKey { case index, input, error }

    /// The error object of a refused input, as the API words a refused request.
    struct ErrorBody: Encodable {
        var message: String
        var type = "invalid_request_error"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(index, forKey: .index)
        try container.encode(input, forKey: .input)
        switch result {
        case let .success(decision): try decision.encode(to: encoder)  // its members beside index and input
        case let .failure(error): try container.encode(ErrorBody(message: error.message), forKey: .error)
        }
    }
}
