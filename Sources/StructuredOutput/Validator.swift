/// One way a JSON value fails its schema.
public struct Violation: Sendable, Equatable, CustomStringConvertible {
    /// JSON Pointer of the offending value (`/invoice_id`).
    public var path: String
    /// Why it fails.
    public var reason: String
    public var description: String { (path.isEmpty ? "/" : path) + ": " + reason }
}

extension Schema {
    /// Every violation of the schema by `value` (empty when it validates).
    public func violations(of value: JSONValue) -> [Violation] {
        var out: [Violation] = []
        check(value, node: root, path: "", into: &out)
        return out
    }

    /// Whether `text` parses as JSON and validates.
    public func accepts(_ text: String) -> Bool {
        guard let value = try? JSONValue.parse(text) else { return false }
        return violations(of: value).isEmpty
    }

    private func check(_ value: JSONValue, node index: Int, path: String, into out: inout [Violation]) {
        switch nodes[resolved(index)] {
        case .reference: out.append(Violation(path: path, reason: "unresolved reference"))
        case let .literal(values):
            if !values.contains(value) {
                out.append(Violation(path: path, reason: "\(value) is not one of " + values.map(\.description).joined(separator: ", ")))
            }
        case let .anyOf(branches, exclusive):
            var matched = 0
            var first: [Violation] = []
            for b in branches {
                var v: [Violation] = []
                check(value, node: b, path: path, into: &v)
                if v.isEmpty { matched += 1 } else if first.isEmpty { first = v }
            }
            if matched == 0 {
                out.append(Violation(path: path, reason: "matches no branch of \(exclusive ? "oneOf" : "anyOf") (first branch: \(first.first?.reason ?? "?"))"))
            } else if exclusive && matched > 1 {
                out.append(Violation(path: path, reason: "matches \(matched) branches of oneOf; exactly one must match"))
            }
        case let .number(integer, minimum, maximum):
            guard case let .number(v, _) = value, !integer || value.isInteger else {
                out.append(Violation(path: path, reason: "expected \(integer ? "an integer" : "a number"), got \(value)"))
                return
            }
            if let minimum, v < minimum { out.append(Violation(path: path, reason: "\(value) is below the minimum \(minimum)")) }
            if let maximum, v > maximum { out.append(Violation(path: path, reason: "\(value) is above the maximum \(maximum)")) }
        case let .string(pattern, format, minLength, maxLength):
            guard case let .string(s) = value else { out.append(Violation(path: path, reason: "expected a string, got \(value)")); return }
            let length = s.unicodeScalars.count
            if length < minLength { out.append(Violation(path: path, reason: "shorter than \(minLength) characters")) }
            if let maxLength, length > maxLength { out.append(Violation(path: path, reason: "longer than \(maxLength) characters")) }
            if let pattern, !patterns[pattern].matches(s) {
                out.append(Violation(path: path, reason: "does not match the pattern \(patterns[pattern].source)"))
            }
            if let format {
                if !self.pattern(for: format).matches(format == .email ? s : Self.leapDayAsOrdinary(s)) {
                    out.append(Violation(path: path, reason: "is not a valid \(format.rawValue)"))
                }
            }
        case let .array(item, minItems, maxItems):
            guard case let .array(items) = value else { out.append(Violation(path: path, reason: "expected an array, got \(value)")); return }
            if items.count < minItems { out.append(Violation(path: path, reason: "has \(items.count) items, fewer than \(minItems)")) }
            if let maxItems, items.count > maxItems { out.append(Violation(path: path, reason: "has \(items.count) items, more than \(maxItems)")) }
            for (i, v) in items.enumerated() { check(v, node: item, path: path + "/\(i)", into: &out) }
        case let .object(properties, allowsOthers):
            guard case let .object(members) = value else { out.append(Violation(path: path, reason: "expected an object, got \(value)")); return }
            var seen: Set<String> = []
            for m in members {
                guard seen.insert(m.key).inserted else {
                    out.append(Violation(path: path, reason: "member '\(m.key)' appears twice"))
                    continue
                }
                if let p = properties.first(where: { $0.name == m.key }) {
                    check(m.value, node: p.node, path: path + "/" + m.key, into: &out)
                } else if !allowsOthers {
                    out.append(Violation(path: path, reason: "member '\(m.key)' is not allowed (additionalProperties is false)"))
                }
            }
            for p in properties where p.required && !seen.contains(p.name) {
                out.append(Violation(path: path, reason: "required member '\(p.name)' is missing"))
            }
        case let .map(key, valueNode):
            guard case let .object(members) = value else { out.append(Violation(path: path, reason: "expected an object, got \(value)")); return }
            for m in members {
                // A JSON Pointer token (RFC 6901): "~" and "/" escaped.
                let token = m.key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
                check(.string(m.key), node: key, path: path + "/" + token, into: &out)
                check(m.value, node: valueNode, path: path + "/" + token, into: &out)
            }
        }
    }

    /// A date-time string with 29 February of a leap year replaced by the 28th (the format pattern leaves the 29th out).
    static func leapDayAsOrdinary(_ s: String) -> String {
        var chars = Array(s.utf8)
        guard chars.count >= 10, chars[4] == UInt8(ascii: "-"), chars[5] == UInt8(ascii: "0"), chars[6] == UInt8(ascii: "2"),
              chars[7] == UInt8(ascii: "-"), chars[8] == UInt8(ascii: "2"), chars[9] == UInt8(ascii: "9"),
              let year = Int(String(decoding: chars[0..<4], as: UTF8.self)),
              year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) else {
            return s
        }
        chars[9] = UInt8(ascii: "8")
        return String(decoding: chars, as: UTF8.self)
    }
}
