import Foundation

/// A byte-level pushdown automaton that accepts exactly the JSON texts the constraint allows for a schema.
///
/// Generated JSON is compact unless whitespace runs are allowed at structural positions (``maxWhitespace``); objects list their properties in declaration order; strings under a
/// pattern or format are written without escapes; numbers without exponents. Every text it accepts validates
/// against the schema. States are interned on first use and transitions are cached, so after warm-up a byte costs
/// one table lookup. Not thread-safe: one generation at a time per automaton.
public final class SchemaAutomaton: @unchecked Sendable {
    /// The schema.
    public let schema: Schema
    /// Longest whitespace run allowed at a structural position (0: compact JSON, the default).
    public let maxWhitespace: UInt8
    /// Deepest nesting (recursive schemas stop here).
    static let maxDepth = 48
    /// Digits allowed before and after the decimal point.
    static let maxIntegerDigits = 15, maxFractionDigits = 10

    private var literalTries = LiteralTries()
    private var literalRoots: [Int: Int32] = [:]
    private var keyRoots: [Int64: Int32] = [:]
    private var numberPrefixes: [String] = []
    private var numberIDs: [String: Int32] = [:]

    private var states: [[[Frame]]] = []
    private var stateIDs: [[[Frame]]: Int32] = [:]
    private var accepting: [Bool] = []
    /// `[state * 256 + byte]`: -2 not computed, -1 dead.
    private var transitions: [Int32] = []

    /// The state before the first byte.
    public private(set) var initial: Int32 = 0

    /// Builds the automaton for a compiled schema; `maxWhitespace` bytes of whitespace may stand at each structural
    /// position (0 generates compact JSON: models given room pad with long runs of newlines, costing tokens).
    public init(schema: Schema, maxWhitespace: UInt8 = 0) {
        self.schema = schema
        self.maxWhitespace = maxWhitespace
        var start: [[Frame]] = []
        expand([], node: schema.root, depth: 0, into: &start)
        initial = intern(start)
    }

    /// Distinct states seen so far.
    public var stateCount: Int { states.count }

    /// Whether the text read so far is a complete, valid value.
    public func isAccepting(_ state: Int32) -> Bool { accepting[Int(state)] }

    /// The state after `byte`, or -1 if no allowed text continues that way.
    @inline(__always)
    public func step(_ state: Int32, _ byte: UInt8) -> Int32 {
        let k = Int(state) &* 256 &+ Int(byte)
        let t = transitions[k]
        if t != -2 { return t }
        var out: [[Frame]] = []
        for stack in states[Int(state)] { feed(stack, byte, into: &out) }
        let n = intern(out)
        transitions[k] = n
        return n
    }

    /// The state after `bytes`, or -1.
    public func step(_ state: Int32, _ bytes: some Sequence<UInt8>) -> Int32 {
        var s = state
        for b in bytes {
            s = step(s, b)
            if s < 0 { return -1 }
        }
        return s
    }

    /// Whether the automaton accepts `text` whole.
    public func accepts(_ text: String) -> Bool {
        let s = step(initial, text.utf8)
        return s >= 0 && isAccepting(s)
    }

    /// A short text that completes a value from `state` (best-first search over the automaton, guided by a
    /// structural estimate of what each open frame still needs), or nil if none is found within `limit` states.
    public func shortestCompletion(from state: Int32, limit: Int = 200_000) -> [UInt8]? {
        if isAccepting(state) { return [] }
        var parent: [Int32: (Int32, UInt8)] = [state: (-1, 0)]
        var cost: [Int32: Int] = [state: 0]
        var heap = MinHeap()
        heap.push(estimate(state), state)
        var expanded = 0
        while let (_, s) = heap.pop(), expanded < limit {
            expanded += 1
            if isAccepting(s) {
                var bytes: [UInt8] = []
                var cur = s
                while let (p, byte) = parent[cur], p >= 0 { bytes.append(byte); cur = p }
                return bytes.reversed()
            }
            let g = cost[s]! + 1
            // A complete number never needs more digits to finish; without this the search would enumerate them.
            let numberDone = states[Int(s)].allSatisfy { $0.last.map { $0.kind == .number && numberComplete($0) } ?? false }
            for b in Self.completionAlphabet {
                if numberDone && (b == UInt8(ascii: ".") || (0x30...0x39).contains(b)) { continue }
                let t = step(s, b)
                guard t >= 0, g < cost[t] ?? .max else { continue }
                cost[t] = g
                parent[t] = (s, b)
                heap.push(g + estimate(t), t)
            }
        }
        return nil
    }

    /// Bytes the open frames of `state` still need at least (roughly): the search's guide.
    private func estimate(_ state: Int32) -> Int {
        states[Int(state)].map { stack in stack.reduce(0) { $0 + estimate($1) } }.min() ?? 0
    }

    private func estimate(_ f: Frame) -> Int {
        switch schema.nodes[Int(f.node)] {
        case let .object(properties, _):
            let next = Int(f.phase) >= 3 && f.phase <= 4 ? Int(f.b) : Int(f.a)
            return 1 + properties[min(next, properties.count)...].filter(\.required)
                .reduce(0) { $0 + $1.name.utf8.count + 4 + minimumLength($1.node) }
        case let .array(item, minItems, _):
            return 1 + max(0, minItems - Int(f.a)) * (minimumLength(item) + 1)
        // Still needed at least: "{}" before '{'; ':' + a value + '}' after a key; a value + '}' after ':'; '}'.
        case .map: return f.phase == 0 ? 2 : f.phase == 9 ? 3 : f.phase == 10 ? 2 : 1
        case let .string(_, _, minLength, _):
            return f.phase == 0 ? 2 + minLength : 1 + max(0, minLength - Int(f.b))
        case .literal: return literalTries.payload[Int(f.a)] >= 0 ? 0 : 1
        case .number: return numberComplete(f) ? 0 : 1
        default: return 0
        }
    }

    private var minimumLengths: [Int: Int] = [:]

    /// A lower estimate of the bytes a value of `node` takes.
    private func minimumLength(_ index: Int) -> Int {
        let node = schema.resolved(index)
        if let m = minimumLengths[node] { return m }
        minimumLengths[node] = 1  // recursion guard
        let m: Int
        switch schema.nodes[node] {
        case let .object(properties, _):
            m = 2 + properties.filter(\.required).reduce(0) { $0 + $1.name.utf8.count + 4 + minimumLength($1.node) }
        case let .array(item, minItems, _): m = 2 + minItems * (minimumLength(item) + 1)
        case let .string(_, _, minLength, _): m = 2 + minLength
        case let .literal(values): m = values.map { $0.description.utf8.count }.min() ?? 1
        case .number: m = 1
        case let .anyOf(branches, _): m = branches.map(minimumLength).min() ?? 1
        case .reference: m = 1
        case .map: m = 2
        }
        minimumLengths[node] = m
        return m
    }

    /// Printable ASCII, and continuation bytes to finish a pending UTF-8 sequence.
    private static let completionAlphabet = Array(UInt8(0x20)...UInt8(0x7E)) + Array(UInt8(0x80)...UInt8(0xBF))

    // MARK: - States

    private func intern(_ stacks: [[Frame]]) -> Int32 {
        if stacks.isEmpty { return -1 }
        var unique: [[Frame]] = []
        var seen: Set<[Frame]> = []
        for s in stacks where seen.insert(s).inserted { unique.append(s) }
        if let id = stateIDs[unique] { return id }
        let id = Int32(states.count)
        states.append(unique)
        stateIDs[unique] = id
        accepting.append(unique.contains { $0.isEmpty || ($0.count == 1 && isComplete($0[0])) })
        transitions.append(contentsOf: repeatElement(-2, count: 256))
        return id
    }

    enum Kind: UInt8 { case object, array, string, literal, number }

    /// One level of the parse stack. Field meaning depends on the kind (see the step functions).
    struct Frame: Hashable {
        var kind: Kind
        var phase: UInt8 = 0
        var ws: UInt8 = 0
        var node: Int32
        var a: Int32 = 0
        var b: Int32 = 0
        var c: Int32 = 0
    }

    /// Pushes the frames that start a value of `node` (several for anyOf).
    private func expand(_ rest: [Frame], node index: Int, depth: Int, into out: inout [[Frame]]) {
        guard rest.count < Self.maxDepth, depth < 64 else { return }
        let resolved = schema.resolved(index)
        let node = Int32(resolved)
        switch schema.nodes[resolved] {
        case let .anyOf(branches, _):
            for b in branches { expand(rest, node: b, depth: depth + 1, into: &out) }
        case .object, .map: out.append(rest + [Frame(kind: .object, node: node)])
        case .array: out.append(rest + [Frame(kind: .array, node: node)])
        case let .string(pattern, format, _, _):
            let p = pattern ?? format.map { schema.formatPatterns[$0]! }
            out.append(rest + [Frame(kind: .string, node: node, a: p.map { schema.patterns[$0].initial } ?? -1)])
        case .literal: out.append(rest + [Frame(kind: .literal, node: node, a: literalRoot(resolved))])
        case .number: out.append(rest + [Frame(kind: .number, node: node, a: numberID(""))])
        case .reference: break
        }
    }

    private func isComplete(_ f: Frame) -> Bool {
        switch f.kind {
        case .literal: return literalTries.payload[Int(f.a)] >= 0
        case .number: return numberComplete(f)
        default: return false
        }
    }

    /// The parent's stack after its child value ended.
    private func finished(_ rest: [Frame]) -> [Frame] {
        guard var parent = rest.last else { return [] }
        var r = rest
        switch parent.kind {
        // A map's key string ended: its ':' comes next. Any other member value ended: ',' or '}'.
        case .object: parent.phase = parent.phase == 8 ? 9 : 6
        case .array: parent.phase = 3; parent.a += 1
        default: break
        }
        parent.ws = 0
        r[r.count - 1] = parent
        return r
    }

    private static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D }

    /// All stacks that `stack` can become after reading `byte`.
    private func feed(_ stack: [Frame], _ byte: UInt8, into out: inout [[Frame]]) {
        guard var top = stack.last else { return }
        var rest = stack
        rest.removeLast()
        func push(_ f: Frame) { out.append(rest + [f]) }
        func whitespace() -> Bool {
            guard Self.isWhitespace(byte), top.ws < maxWhitespace else { return false }
            top.ws += 1
            push(top)
            return true
        }
        func child(_ node: Int) {
            var frames: [[Frame]] = []
            expand(rest + [top], node: node, depth: 0, into: &frames)
            for f in frames { feed(f, byte, into: &out) }
        }

        switch top.kind {
        case .object:
            if case let .map(key, value) = schema.nodes[Int(top.node)] {
                // Phases: 0 before '{', 1 after '{', 8 in a key, 9 after a key, 10 after ':', 5 in a value,
                // 6 after a member, 7 after ','.
                switch top.phase {
                case 0:
                    if byte == UInt8(ascii: "{") { top.phase = 1; push(top) }
                case 1, 6, 7:
                    if whitespace() { return }
                    if byte == UInt8(ascii: "\""), top.phase != 6 {
                        top.phase = 8; top.ws = 0
                        child(key)
                    } else if byte == UInt8(ascii: "}"), top.phase != 7 {
                        out.append(finished(rest))
                    } else if byte == UInt8(ascii: ","), top.phase == 6 {
                        top.phase = 7; top.ws = 0; push(top)
                    }
                case 9:
                    if whitespace() { return }
                    if byte == UInt8(ascii: ":") { top.phase = 10; top.ws = 0; push(top) }
                case 10:
                    if whitespace() { return }
                    top.phase = 5; top.ws = 0
                    child(value)
                default:
                    return
                }
                return
            }
            guard case let .object(properties, _) = schema.nodes[Int(top.node)] else { return }
            /// Whether a member may still follow (members are written in declaration order).
            func candidates(_ next: Int) -> Bool { next < properties.count }
            func remainingRequired(_ next: Int) -> Bool { properties[next...].contains { $0.required } }
            switch top.phase {
            case 0:
                if byte == UInt8(ascii: "{") { top.phase = 1; push(top) }
            case 1, 6, 7:
                if whitespace() { return }
                let next = Int(top.a)
                if byte == UInt8(ascii: "\""), top.phase != 6, candidates(next) {
                    top.phase = 2; top.ws = 0; top.b = keyRoot(Int(top.node), next: next); push(top)
                } else if byte == UInt8(ascii: "}"), top.phase != 7, !remainingRequired(next) {
                    out.append(finished(rest))
                } else if byte == UInt8(ascii: ","), top.phase == 6, candidates(next) {
                    top.phase = 7; top.ws = 0; push(top)
                }
            case 2:
                guard let n = literalTries.child(top.b, byte) else { return }
                let property = literalTries.payload[Int(n)]
                if property >= 0 {
                    top.phase = 3; top.b = property; top.ws = 0
                } else {
                    top.b = n
                }
                push(top)
            case 3:
                if whitespace() { return }
                if byte == UInt8(ascii: ":") { top.phase = 4; top.ws = 0; push(top) }
            case 4:
                if whitespace() { return }
                let property = Int(top.b)
                top.phase = 5; top.ws = 0; top.a = Int32(property + 1)
                child(properties[property].node)
            default:
                return
            }
        case .array:
            guard case let .array(item, minItems, maxItems) = schema.nodes[Int(top.node)] else { return }
            switch top.phase {
            case 0:
                if byte == UInt8(ascii: "[") { top.phase = 1; push(top) }
            case 1, 3, 4:
                if whitespace() { return }
                let count = Int(top.a)
                if byte == UInt8(ascii: "]"), top.phase != 4, count >= minItems {
                    out.append(finished(rest))
                } else if byte == UInt8(ascii: ","), top.phase == 3, maxItems.map({ count < $0 }) ?? true {
                    top.phase = 4; top.ws = 0; push(top)
                } else if top.phase != 3, maxItems.map({ count < $0 }) ?? true {
                    top.phase = 2; top.ws = 0
                    child(item)
                }
            default:
                return
            }
        case .literal:
            let current = top.a
            if let n = literalTries.child(current, byte) {
                if literalTries.payload[Int(n)] >= 0 && !literalTries.hasChildren(n) {
                    out.append(finished(rest))
                } else {
                    top.a = n
                    push(top)
                }
            }
            // A complete literal that a longer one extends (enum [1, 12]): the byte may belong to the parent.
            if literalTries.payload[Int(current)] >= 0 { feed(finished(rest), byte, into: &out) }
        case .number:
            let prefix = numberPrefixes[Int(top.a)]
            let extended = prefix + String(UnicodeScalar(byte))
            if numberSyntaxAllows(extended, node: Int(top.node)), numberViable(extended, node: Int(top.node)) {
                top.a = numberID(extended)
                push(top)
            } else if numberComplete(top) {
                feed(finished(rest), byte, into: &out)
            }
        case .string:
            feedString(top, rest, byte, into: &out)
        }
    }

    // MARK: - Strings

    private func feedString(_ frame: Frame, _ rest: [Frame], _ byte: UInt8, into out: inout [[Frame]]) {
        guard case let .string(patternIndex, format, minLength, maxLength) = schema.nodes[Int(frame.node)] else { return }
        let pattern = (patternIndex ?? format.map { schema.formatPatterns[$0]! }).map { schema.patterns[$0] }
        var top = frame
        func push() { out.append(rest + [top]) }
        /// Adds one scalar to the value, if the length and pattern allow it.
        func scalar(_ v: UInt32) -> Bool {
            let count = Int(top.b) + 1
            if let maxLength, count > maxLength { return false }
            if let pattern {
                guard Pattern.isGenerable(v) else { return false }
                let next = pattern.step(top.a, v)
                guard next >= 0, pattern.canFinish(from: next, count: count, min: minLength, max: maxLength) else { return false }
                top.a = next
            }
            // Without an upper bound only the distance to minLength matters, so states do not multiply by length.
            top.b = Int32(maxLength == nil ? min(count, minLength) : count)
            return true
        }
        /// Whether some scalar in `range` could still be added (decided before its last byte arrives).
        func roomFor(_ range: ClosedRange<UInt32>) -> Bool {
            let count = Int(top.b) + 1
            if let maxLength, count > maxLength { return false }
            guard let pattern else { return true }
            return pattern.anyViable(from: top.a, in: range, count: count, min: minLength, max: maxLength)
        }
        /// A UTF-8 lead byte: `phase` counts the bytes still to come, `restriction` narrows the next one.
        func lead(_ phase: UInt8, _ restriction: UInt8, _ bits: UInt8, _ range: ClosedRange<UInt32>) {
            guard roomFor(range) else { return }
            top.phase = phase; top.ws = restriction; top.c = Int32(bits)
            push()
        }
        switch top.phase {
        case 0:
            if byte == UInt8(ascii: "\"") { top.phase = 1; push() }
        case 1:
            switch byte {
            case UInt8(ascii: "\""):
                if Int(top.b) >= minLength && (pattern.map { $0.isAccepting(top.a) } ?? true) { out.append(finished(rest)) }
            case UInt8(ascii: "\\"):
                if pattern == nil, maxLength.map({ Int(top.b) < $0 }) ?? true { top.phase = 2; push() }
            case 0..<0x20:
                return
            case 0x20..<0x80:
                if scalar(UInt32(byte)) { push() }
            case 0xC2...0xDF: lead(11, 0, byte & 0x1F, UInt32(byte & 0x1F) << 6 ... (UInt32(byte & 0x1F) << 6 | 0x3F))
            case 0xE0: lead(12, 1, 0, 0x800...0xFFF)
            case 0xED: lead(12, 2, byte & 0x0F, 0xD000...0xD7FF)
            case 0xE1...0xEF: lead(12, 0, byte & 0x0F, UInt32(byte & 0x0F) << 12 ... (UInt32(byte & 0x0F) << 12 | 0xFFF))
            case 0xF0: lead(13, 3, 0, 0x10000...0x3FFFF)
            case 0xF4: lead(13, 4, byte & 0x07, 0x100000...0x10FFFF)
            case 0xF1...0xF3: lead(13, 0, byte & 0x07, UInt32(byte & 0x07) << 18 ... (UInt32(byte & 0x07) << 18 | 0x3FFFF))
            default: return
            }
        case 2:
            let escapes: [UInt8: UInt32] = [0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x62: 8, 0x66: 0xC, 0x6E: 0xA, 0x72: 0xD, 0x74: 9]
            if let v = escapes[byte] {
                if scalar(v) { top.phase = 1; push() }
            } else if byte == UInt8(ascii: "u") {
                top.phase = 3; top.ws = 0; top.c = 0; push()
            }
        case 3:
            guard let digit = Self.hexValue(byte) else { return }
            if top.ws == 0 && digit == 0xD { return }  // no surrogate escapes
            top.c = top.c * 16 + Int32(digit)
            top.ws += 1
            if top.ws == 4 {
                guard scalar(UInt32(top.c)) else { return }
                top.phase = 1; top.ws = 0; top.c = 0
            }
            push()
        case 11, 12, 13:
            // Continuation bytes; `ws` holds the first continuation's narrower range (UTF-8 well-formedness).
            let range: ClosedRange<UInt8>
            switch top.ws {
            case 1: range = 0xA0...0xBF
            case 2: range = 0x80...0x9F
            case 3: range = 0x90...0xBF
            case 4: range = 0x80...0x8F
            default: range = 0x80...0xBF
            }
            guard range.contains(byte) else { return }
            top.ws = 0
            top.c = top.c << 6 | Int32(byte & 0x3F)
            if top.phase == 11 {
                guard scalar(UInt32(top.c)) else { return }
                top.phase = 1; top.c = 0
            } else {
                top.phase -= 1
                let shift = UInt32(6 * (top.phase - 10))
                let low = UInt32(top.c) << shift
                guard roomFor(low...(low | ((1 << shift) - 1))) else { return }
            }
            push()
        default:
            return
        }
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }

    // MARK: - Numbers

    private func numberID(_ prefix: String) -> Int32 {
        if let id = numberIDs[prefix] { return id }
        numberPrefixes.append(prefix)
        let id = Int32(numberPrefixes.count - 1)
        numberIDs[prefix] = id
        return id
    }

    /// Whether `text` is a prefix of `-?(0|[1-9][0-9]*)(\.[0-9]+)?` within the digit limits (no '.' for integers).
    private func numberSyntaxAllows(_ text: String, node: Int) -> Bool {
        guard case let .number(integer, _, _) = schema.nodes[node] else { return false }
        var bytes = Array(text.utf8)
        if bytes.first == UInt8(ascii: "-") { bytes.removeFirst() }
        if bytes.isEmpty { return text == "-" }
        let parts = bytes.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0]
        guard !whole.isEmpty, whole.count <= Self.maxIntegerDigits, whole.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        if whole.count > 1 && whole.first == 0x30 { return false }
        if parts.count == 2 {
            guard !integer, parts[1].count <= Self.maxFractionDigits, parts[1].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        }
        return true
    }

    private func numberComplete(_ f: Frame) -> Bool {
        let text = numberPrefixes[Int(f.a)]
        guard let last = text.utf8.last, last >= 0x30 && last <= 0x39, let v = Double(text),
              case let .number(_, lo, hi) = schema.nodes[Int(f.node)] else { return false }
        return (lo.map { v >= $0 } ?? true) && (hi.map { v <= $0 } ?? true)
    }

    /// Whether some completion of the syntactically valid prefix `text` lies within the node's bounds.
    private func numberViable(_ text: String, node: Int) -> Bool {
        guard case let .number(integer, lo, hi) = schema.nodes[node] else { return false }
        let negative = text.hasPrefix("-")
        let body = negative ? String(text.dropFirst()) : text
        let low = lo ?? -.infinity, high = hi ?? .infinity
        // Magnitude intervals [x, y) (or a point) the completions can reach.
        var spans: [(x: Double, y: Double, point: Bool)] = []
        if body.isEmpty {
            spans.append((0, pow(10, Double(Self.maxIntegerDigits)), false))
        } else if let dot = body.firstIndex(of: ".") {
            let fraction = body[body.index(after: dot)...]
            let base = Double(body + (fraction.isEmpty ? "0" : ""))!
            if fraction.count >= Self.maxFractionDigits {
                spans.append((base, base, true))
            } else {
                spans.append((base, base + pow(10, -Double(fraction.count)), false))
            }
        } else {
            let v = Double(body)!
            spans.append((v, v, true))
            if !integer { spans.append((v, v + 1, false)) }
            if body != "0" {
                for k in stride(from: 1, through: Self.maxIntegerDigits - body.count, by: 1) {
                    let scale = pow(10, Double(k))
                    spans.append((v * scale, (v + 1) * scale, false))
                }
            }
        }
        for s in spans {
            // Value interval: [x, y) or the point x (x == y); mirrored to (-y, -x] when negative.
            let (a, b) = negative ? (-s.y, -s.x) : (s.x, s.y)
            let aOpen = negative && !s.point, bOpen = !negative && !s.point
            if integer {
                // Integers inside the interval and the bounds.
                let lower = max(aOpen ? a.rounded(.down) + 1 : a.rounded(.up), low.rounded(.up))
                let upper = min(bOpen ? b.rounded(.up) - 1 : b.rounded(.down), high.rounded(.down))
                if lower <= upper { return true }
                continue
            }
            let lowerOpen = a > low ? aOpen : (a == low && aOpen)
            let upperOpen = b < high ? bOpen : (b == high && bOpen)
            let lower = max(a, low), upper = min(b, high)
            if lower < upper || (lower == upper && !lowerOpen && !upperOpen) { return true }
        }
        return false
    }

    // MARK: - Literal and key tries

    private func literalRoot(_ node: Int) -> Int32 {
        if let r = literalRoots[node] { return r }
        guard case let .literal(values) = schema.nodes[node] else { return -1 }
        let root = literalTries.newNode()
        for v in values { literalTries.insert(Array(v.description.utf8), payload: 0, root: root) }
        literalRoots[node] = root
        return root
    }

    /// A trie of the member names (after the opening quote, with the closing quote) that may come next.
    private func keyRoot(_ node: Int, next: Int) -> Int32 {
        let key = Int64(node) << 32 | Int64(next)
        if let r = keyRoots[key] { return r }
        guard case let .object(properties, _) = schema.nodes[node] else { return -1 }
        let root = literalTries.newNode()
        for j in next..<properties.count {
            let quoted = Array(JSONValue.quote(properties[j].name).utf8.dropFirst())
            literalTries.insert(quoted, payload: Int32(j), root: root)
            if properties[j].required { break }
        }
        keyRoots[key] = root
        return root
    }
}

/// Byte tries for literal values and member names, in flat arrays.
struct LiteralTries {
    var children: [[(UInt8, Int32)]] = []
    /// Value at a node where a complete literal ends, else -1.
    var payload: [Int32] = []

    mutating func newNode() -> Int32 {
        children.append([])
        payload.append(-1)
        return Int32(children.count - 1)
    }

    mutating func insert(_ bytes: [UInt8], payload value: Int32, root: Int32) {
        var n = root
        for b in bytes {
            if let c = child(n, b) { n = c; continue }
            let c = newNode()
            children[Int(n)].append((b, c))
            n = c
        }
        if payload[Int(n)] < 0 { payload[Int(n)] = value }
    }

    func child(_ n: Int32, _ b: UInt8) -> Int32? {
        for (byte, c) in children[Int(n)] where byte == b { return c }
        return nil
    }

    func hasChildren(_ n: Int32) -> Bool { !children[Int(n)].isEmpty }
}

/// A binary min-heap of (priority, state).
struct MinHeap {
    private var items: [(Int, Int32)] = []

    mutating func push(_ priority: Int, _ state: Int32) {
        items.append((priority, state))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard items[i].0 < items[p].0 else { break }
            items.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> (Int, Int32)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l].0 < items[m].0 { m = l }
                if r < items.count && items[r].0 < items[m].0 { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
