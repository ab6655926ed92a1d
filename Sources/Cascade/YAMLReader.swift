import Foundation
import Yams

/// A task spec that cannot be used, with the file, the place in it and what to change.
public struct SpecError: Error, CustomStringConvertible, Sendable {
    /// The spec file.
    public var file: String
    /// Where in the document: a key path such as `risk_classes.high.target_error`.
    public var path: String
    /// Line in the file (1-based), when known.
    public var line: Int?
    /// What is wrong.
    public var message: String

    /// An error from its parts.
    public init(file: String, path: String, line: Int?, message: String) {
        self.file = file; self.path = path; self.line = line; self.message = message
    }

    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(path.isEmpty ? "" : path + ": ")\(message)"
    }
}

/// Reads typed values out of a YAML node, naming the key path and line of anything missing or wrong, and rejecting
/// keys it does not know (a misspelt key must not silently fall back to a default).
public struct YAMLReader {
    let file: String
    let node: Node
    let path: String

    /// The root of a YAML file, or a ``SpecError`` saying why the file cannot be read.
    public static func load(_ file: String) throws -> YAMLReader {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw SpecError(file: file, path: "", line: nil, message: "cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SpecError(file: file, path: "", line: nil, message: "not UTF-8 text")
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw SpecError(file: file, path: "", line: nil, message: "the file is empty")
            }
            root = node
        } catch let error as SpecError {
            throw error
        } catch {
            throw SpecError(file: file, path: "", line: nil, message: "not valid YAML: \(error)")
        }
        return YAMLReader(file: file, node: root, path: "")
    }

    /// An error at this node.
    public func error(_ message: String, at node: Node? = nil) -> SpecError {
        SpecError(file: file, path: path, line: (node ?? self.node).mark.map { $0.line }, message: message)
    }

    /// The value under `key`, if present.
    public func child(_ key: String) -> YAMLReader? {
        guard let value = node.mapping?[key] else { return nil }
        return YAMLReader(file: file, node: value, path: path.isEmpty ? key : path + "." + key)
    }

    /// The value under `key`, or an error naming it.
    public func required(_ key: String) throws -> YAMLReader {
        guard node.mapping != nil else { throw error("expected a mapping") }
        guard let value = child(key) else { throw error("missing required key '\(key)'") }
        return value
    }

    /// Fails on keys outside `allowed`.
    public func only(_ allowed: [String]) throws {
        guard let mapping = node.mapping else { throw error("expected a mapping") }
        for (key, value) in mapping {
            let name = key.string ?? "?"
            if !allowed.contains(name) {
                throw SpecError(
                    file: file, path: path.isEmpty ? name : path + "." + name, line: value.mark.map { $0.line },
                    message: "unknown key; expected one of: \(allowed.joined(separator: ", "))")
            }
        }
    }

    /// Key–value pairs of a mapping, in document order.
    public func entries() throws -> [(String, YAMLReader)] {
        guard let mapping = node.mapping else { throw error("expected a mapping") }
        return mapping.map { key, value in
            let name = key.string ?? "?"
            return (name, YAMLReader(file: file, node: value, path: path.isEmpty ? name : path + "." + name))
        }
    }

    /// Items of a sequence.
    public func items() throws -> [YAMLReader] {
        guard let sequence = node.sequence else { throw error("expected a list") }
        return sequence.enumerated().map { YAMLReader(file: file, node: $1, path: "\(path)[\($0)]") }
    }

    /// A scalar's text.
    public func string() throws -> String {
        guard let scalar = node.scalar else { throw error("expected text") }
        return scalar.string
    }

    /// A number, optionally within `range`.
    public func double(in range: ClosedRange<Double>? = nil) throws -> Double {
        guard let value = node.float else { throw error("expected a number, got '\(node.scalar?.string ?? "a structure")'") }
        if let range, !range.contains(value) { throw error("\(value) is outside \(range.lowerBound)…\(range.upperBound)") }
        return value
    }

    /// A whole number, optionally within `range`.
    public func int(in range: ClosedRange<Int>? = nil) throws -> Int {
        guard let value = node.int else { throw error("expected a whole number, got '\(node.scalar?.string ?? "a structure")'") }
        if let range, !range.contains(value) { throw error("\(value) is outside \(range.lowerBound)…\(range.upperBound)") }
        return value
    }

    /// A list of scalars.
    public func strings() throws -> [String] { try items().map { try $0.string() } }

    /// A scalar that names a case of `type`.
    public func enumeration<T: RawRepresentable & CaseIterable>(_ type: T.Type) throws -> T where T.RawValue == String {
        let text = try string()
        guard let value = T(rawValue: text) else {
            throw error("'\(text)' is not one of: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }
}
