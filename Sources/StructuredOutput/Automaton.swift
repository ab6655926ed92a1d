import Foundation

/// A byte-level pushdown automaton that accepts the JSON texts the constraint allows for a schema.
///
/// States are sets of parse stacks, interned on first use; transitions are cached, so after warm-up a byte costs one
/// table lookup. Every text it accepts validates, except where ``Schema/approximations`` lists a keyword it only
/// over-approximates (then ``accepts(_:)`` and generation also ask the exact validator). It is stricter than the
/// schema in a few documented ways: unless ``Spelling/any`` is asked for, declared members come in declaration
/// order (undeclared ones anywhere; OpenAI's structured outputs and MaskBench's instances keep that order) and strings
/// use `\u` escapes only for control characters, where JSON requires an escape, and objects that declare members get
/// no undeclared ones unless `additionalProperties` or `patternProperties` asks for them; numbers
/// have at most 20 integer digits, 20 fraction digits and a 3-digit exponent, nesting stops at depth 48, and
/// whitespace between tokens is limited to runs of ``maxWhitespace`` bytes. Not thread-safe: one generation at a
/// time per automaton.
public final class SchemaAutomaton: @unchecked Sendable {
    /// The schema.
    public let schema: Schema
    /// Longest whitespace run allowed at a structural position (0: compact JSON, the default).
    public let maxWhitespace: UInt8
    /// Deepest nesting (recursive schemas stop here).
    static let maxDepth = 48
    /// Digits allowed before and after the decimal point, and in an exponent.
    static let maxIntegerDigits = 20, maxFractionDigits = 20, maxExponentDigits = 3

    private var literalTries = LiteralTries()
    private var literalRoots: [Int64: Int32] = [:]
    /// Literal texts by trie payload.
    private var literalTexts: [JSONValue] = []
    private var nameRoots: [[Int]: Int32] = [:]
    private var numberPrefixes: [String] = []
    private var numberIDs: [String: Int32] = [:]
    private var tuples: [[Int32]] = []
    private var tupleIDs: [[Int32]: Int32] = [:]
    private var jointCache: [Int64: Bool] = [:]

    private var states: [[[Frame]]] = []
    private var stateIDs: [[[Frame]]: Int32] = [:]
    private var accepting: [Bool] = []
    /// `[state * 256 + byte]`: -2 not computed, -1 dead.
    private var transitions: [Int32] = []

    /// The state before the first byte.
    public private(set) var initial: Int32 = 0

    /// Which of the texts that spell a valid value the automaton admits.
    public enum Spelling: Sendable {
        /// What generation writes: declared members in declaration order (undeclared ones anywhere, and only where
        /// `additionalProperties` or `patternProperties` is given, or the object declares none), and `\u` escapes
        /// only for control characters, so a model has no detour to spend tokens on (`"O\u0052D"` for `"ORD"`, or
        /// members nobody asked for).
        case canonical
        /// Any text JSON and JSON Schema allow: declared members in any order, any escape (for checking texts
        /// written elsewhere, such as Python's `json.dumps` with its `\u00e9` escapes).
        case any
    }
    /// Which spellings are admitted.
    public let spelling: Spelling

    /// Builds the automaton for a compiled schema; `maxWhitespace` bytes of whitespace may stand at each structural
    /// position (0 generates compact JSON: models given room pad with long runs of newlines, costing tokens).
    public init(schema: Schema, maxWhitespace: UInt8 = 0, spelling: Spelling = .canonical) {
        self.schema = schema
        self.maxWhitespace = maxWhitespace
        self.spelling = spelling
        computeMinimumDepths()
        var start: [[Frame]] = []
        expand([], node: schema.root, depth: 0, into: &start)
        initial = intern(start)
        admitsUndeclaredMembers = schema.nodes.contains { node in
            if case let .object(shape) = node { !undeclaredValues(shape).isEmpty } else { false }
        }
    }

    /// Whether some object of the schema lets undeclared member names be written (free text: the automaton does not
    /// remember them, so a name could repeat; ``SchemaLogitProcessor`` refuses repeats).
    public private(set) var admitsUndeclaredMembers = false

    /// Distinct states seen so far.
    public var stateCount: Int { states.count }

    /// Whether the text read so far is a complete value as far as the automaton can tell (see ``accepts(_:)``).
    public func isAccepting(_ state: Int32) -> Bool { accepting[Int(state)] }

    /// Whether the schema has keywords the automaton only over-approximates, so a complete text must also pass the
    /// exact validator.
    public var needsValidation: Bool { !schema.approximations.isEmpty }

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

    /// Whether `text` is allowed whole: the automaton accepts it, and the exact validator too when
    /// ``needsValidation``.
    public func accepts(_ text: String) -> Bool {
        let s = step(initial, text.utf8)
        guard s >= 0 && isAccepting(s) else { return false }
        return !needsValidation || schema.accepts(text)
    }

    /// A short text that completes a value from `state` (best-first search over the automaton, guided by a
    /// structural estimate of what each open frame still needs), or nil if none is found within `limit` states.
    public func shortestCompletion(from state: Int32, limit: Int = 200_000) -> [UInt8]? {
        // ASCII first (with continuation bytes to finish a character in progress); non-ASCII text only when a value
        // needs it (an enum of "Sjöfart": a canonical string has no \u escape to spell it in ASCII). Lead bytes from
        // the start would multiply the states the search visits by the characters it could write.
        if let ascii = shortestCompletion(from: state, limit: limit, alphabet: Self.completionAlphabet) { return ascii }
        if let any = shortestCompletion(from: state, limit: limit, alphabet: Self.completionAlphabet + Array(UInt8(0xC2)...UInt8(0xF4))) { return any }
        // Where the estimate is far below the truth (large objects with free names beside required ones), the exact
        // search runs out of states; weighting the estimate (weighted A*) finds a completion, no longer the shortest.
        return shortestCompletion(from: state, limit: limit, alphabet: Self.completionAlphabet, weight: 8)
    }

    private func shortestCompletion(from state: Int32, limit: Int, alphabet: [UInt8], weight: Int = 1) -> [UInt8]? {
        if isAccepting(state) { return [] }
        var parent: [Int32: (Int32, UInt8)] = [state: (-1, 0)]
        var cost: [Int32: Int] = [state: 0]
        var heap = MinHeap()
        heap.push(weight * estimate(state), state)
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
            for b in alphabet {
                if numberDone && (b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") || (0x30...0x39).contains(b)) { continue }
                let t = step(s, b)
                guard t >= 0, g < cost[t] ?? .max else { continue }
                cost[t] = g
                parent[t] = (s, b)
                heap.push(g + weight * estimate(t), t)
            }
        }
        return nil
    }

    /// Bytes the open frames of `state` still need at least (roughly): the search's guide.
    private func estimate(_ state: Int32) -> Int {
        states[Int(state)].map { stack in
            var total = stack.reduce(0) { $0 + estimate($1) }
            // A member name in progress along a required name: the object frame counts that whole name, so what is
            // typed already comes off (without this the search would try every shorter free name first).
            if let key = stack.last, key.kind == .key, key.phase == 1, key.a >= 0, literalTries.onRequired[Int(key.a)] {
                total -= Int(literalTries.depth[Int(key.a)])
            }
            return total
        }.min() ?? 0
    }

    private func estimate(_ f: Frame) -> Int {
        switch schema.nodes[Int(f.node)] {
        case let .object(shape):
            if f.kind == .key { return 1 }
            let present = presence(f)
            let needed = stillNeeded(shape, present, last: lastWritten(shape, present), room: Self.maxDepth) ?? []
            return 1 + needed.reduce(0) { $0 + shape.properties[$1].name.utf8.count + 4 + minimumLength(shape.properties[$1].node) }
        case let .array(prefix, item, minItems, _, _):
            let count = Int(f.a)
            var need = 1
            if count < minItems {
                for i in count..<minItems { need += 1 + minimumLength(i < prefix.count ? prefix[i] : item ?? schema.anyNode) }
            }
            return need
        case let .string(shape):
            // Bytes still owed by an escape or a UTF-8 sequence in progress.
            let pending: Int
            switch f.phase {
            case 2: pending = 1
            case 3: pending = 4 - Int(f.ws)
            case 4: pending = 6
            case 5: pending = 5
            case 6: pending = 4 - Int(f.ws)
            case 11, 12, 13: pending = Int(f.phase) - 10
            default: pending = 0
            }
            return f.phase == 0 ? 2 + shape.minLength : 1 + pending + max(0, shape.minLength - Int(f.b))
        case .literal: return literalTries.payload[Int(f.a)] >= 0 ? 0 : 1
        case .number: return numberComplete(f) ? 0 : 1
        default: return 0
        }
    }

    private var minimumLengths: [Int: Int] = [:]
    /// Levels of nesting below a value of each node that its shortest form needs (0 for scalars and containers that
    /// may be empty; ``maxDepth`` when no value fits under the nesting limit). Filled by ``computeMinimumDepths()``.
    private var minimumDepths: [Int] = []

    private func minimumDepth(_ index: Int) -> Int { minimumDepths[schema.resolved(index)] }

    /// The least fixed point of the depth equations, iterated down from "no value" (``maxDepth``): a value computed
    /// inside a cycle of references is never taken for final before the cycle has settled (an object that requires
    /// itself stays at ``maxDepth``).
    private func computeMinimumDepths() {
        minimumDepths = Array(repeating: Self.maxDepth, count: schema.nodes.count)
        var changed = true
        while changed {
            changed = false
            for i in schema.nodes.indices.reversed() {
                let d = min(Self.maxDepth, depthEquation(i))
                if d < minimumDepths[i] { minimumDepths[i] = d; changed = true }
            }
        }
    }

    private func depthEquation(_ node: Int) -> Int {
        switch schema.nodes[node] {
        case let .object(shape):
            if shape.dependentRequired.isEmpty && shape.minProperties == 0 && shape.names == nil {
                let required = shape.properties.filter(\.required)
                return required.isEmpty ? 0 : 1 + required.map { minimumDepth($0.node) }.max()!
            }
            // The least room for member values in which the object can be completed from empty.
            let depths = Set([0] + shape.properties.map { minimumDepth($0.node) + 1 }
                             + undeclaredValues(shape).map { minimumDepth($0) + 1 })
            return depths.sorted().first { $0 <= Self.maxDepth && completable(shape, [], count: 0, last: -1, room: $0) } ?? Self.maxDepth
        case let .array(prefix, item, minItems, _, _):
            return minItems == 0 ? 0 : 1 + (0..<minItems).map { minimumDepth($0 < prefix.count ? prefix[$0] : item ?? schema.anyNode) }.max()!
        case let .anyOf(branches, _): return branches.map(minimumDepth).min() ?? Self.maxDepth
        case .reference: return minimumDepth(node)
        case .never: return Self.maxDepth
        case let .literal(values): return values.isEmpty ? Self.maxDepth : 0
        case .string, .number: return 0
        }
    }

    /// A lower estimate of the bytes a value of `node` takes.
    private func minimumLength(_ index: Int) -> Int {
        let node = schema.resolved(index)
        if let m = minimumLengths[node] { return m }
        minimumLengths[node] = 1  // recursion guard
        let m: Int
        switch schema.nodes[node] {
        case let .object(shape):
            m = 2 + shape.properties.filter(\.required).reduce(0) { $0 + $1.name.utf8.count + 4 + minimumLength($1.node) }
        case let .array(prefix, item, minItems, _, _):
            m = 2 + (0..<minItems).reduce(0) { $0 + 1 + minimumLength($1 < prefix.count ? prefix[$1] : item ?? schema.anyNode) }
        case let .string(shape): m = 2 + shape.minLength
        case let .literal(values): m = values.map { $0.description.utf8.count }.min() ?? 1
        case .number: m = 1
        case let .anyOf(branches, _): m = branches.map(minimumLength).min() ?? 1
        case .reference, .never: m = 1
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

    private func tuple(_ values: [Int32]) -> Int32 {
        if let id = tupleIDs[values] { return id }
        tuples.append(values)
        tupleIDs[values] = Int32(tuples.count - 1)
        return Int32(tuples.count - 1)
    }

    enum Kind: UInt8 { case object, array, string, literal, number, key }

    /// One level of the parse stack. Field meaning depends on the kind (see the step functions).
    struct Frame: Hashable {
        var kind: Kind
        var phase: UInt8 = 0
        var ws: UInt8 = 0
        var node: Int32
        var a: Int32 = 0
        var b: Int32 = 0
        var c: Int32 = 0
        var d: Int32 = 0
    }

    /// Pushes the frames that start a value of `node` (several for anyOf).
    private func expand(_ rest: [Frame], node index: Int, depth: Int, into out: inout [[Frame]]) {
        guard rest.count < Self.maxDepth, depth < 64 else { return }
        let resolved = schema.resolved(index)
        // Only values whose shortest form fits under the nesting limit: a container that needs children one level
        // deeper than the limit allows would be a dead end.
        guard rest.count + minimumDepth(resolved) < Self.maxDepth else { return }
        let node = Int32(resolved)
        switch schema.nodes[resolved] {
        case let .anyOf(branches, _):
            for b in branches { expand(rest, node: b, depth: depth + 1, into: &out) }
        case .object: out.append(rest + [Frame(kind: .object, node: node, a: tuple([]))])
        case .array: out.append(rest + [Frame(kind: .array, node: node)])
        case let .string(shape):
            out.append(rest + [Frame(kind: .string, node: node, a: tuple(shape.patterns.map { schema.patterns[$0].initial } + shape.excluded.map { schema.patterns[$0].initial }))])
        case .literal:
            // An item of a uniqueItems array: only the values not used yet.
            var used: Int32 = 0
            if let parent = rest.last, parent.kind == .array, case let .array(_, _, _, _, unique) = schema.nodes[Int(parent.node)], unique {
                used = parent.d
            }
            out.append(rest + [Frame(kind: .literal, node: node, a: literalRoot(resolved, excluding: used, array: rest.last?.node))])
        case .number: out.append(rest + [Frame(kind: .number, node: node, a: numberID(""))])
        case .reference, .never: break
        }
    }

    private func isComplete(_ f: Frame) -> Bool {
        switch f.kind {
        case .literal: return literalTries.payload[Int(f.a)] >= 0
        case .number: return numberComplete(f)
        default: return false
        }
    }

    /// The parent's stack after its child value ended (`literal`: the trie payload of a literal child, for
    /// uniqueItems), or nil when the parent refuses it.
    private func finished(_ rest: [Frame], literal: Int32 = -1) -> [Frame]? {
        guard var parent = rest.last else { return [] }
        var r = rest
        switch parent.kind {
        case .object: parent.phase = 6
        case .array:
            if case let .array(_, _, _, _, unique) = schema.nodes[Int(parent.node)], unique {
                guard literal >= 0, let bit = uniqueBit(Int(parent.node), literalTexts[Int(literal)]) else { return nil }
                if parent.d & (1 << bit) != 0 { return nil }
                parent.d |= 1 << bit
            }
            parent.phase = 3
            parent.a = min(parent.a + 1, arrayCountCap(Int(parent.node)))
        default: break
        }
        parent.ws = 0
        r[r.count - 1] = parent
        return r
    }

    private var uniqueValues: [Int: [JSONValue]] = [:]

    /// The bit of a fixed value among a unique array's possible items.
    private func uniqueBit(_ node: Int, _ value: JSONValue) -> Int32? {
        if uniqueValues[node] == nil {
            var values: [JSONValue] = []
            if case let .array(prefix, item, _, _, _) = schema.nodes[node] {
                for n in prefix + (item.map { [$0] } ?? []) {
                    if case let .literal(list) = schema.nodes[schema.resolved(n)] {
                        for v in list where !values.contains(where: { $0.sameValue(as: v) }) { values.append(v) }
                    }
                }
            }
            uniqueValues[node] = values
        }
        return uniqueValues[node]!.firstIndex { $0.sameValue(as: value) }.map(Int32.init)
    }

    /// The item count beyond which an array's frames need not distinguish counts.
    private func arrayCountCap(_ node: Int) -> Int32 {
        guard case let .array(prefix, item, minItems, maxItems, _) = schema.nodes[node] else { return 0 }
        var cap = max(prefix.count, minItems)
        if let maxItems { cap = max(cap, maxItems) } else if item == nil { cap = max(cap, prefix.count) }
        return Int32(cap + 1)
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
            guard case let .object(shape) = schema.nodes[Int(top.node)] else { return }
            // Phases: 0 before '{', 1 after '{', 2 in a key, 3 after a key, 4 after ':', 5 in a value, 6 after a
            // member, 7 after ','. a: the declared members present (an interned bitset); b: the value's node;
            // c: members so far (capped).
            switch top.phase {
            case 0:
                if byte == UInt8(ascii: "{") { top.phase = 1; push(top) }
            case 1, 6, 7:
                if whitespace() { return }
                // Levels of nesting left for a member's value.
                let room = Self.maxDepth - rest.count - 1
                if byte == UInt8(ascii: "\""), top.phase != 6, memberMayFollow(shape, top, room: room) {
                    let key = Frame(kind: .key, phase: 1, node: top.node, a: nameRoot(Int(top.node), writable(shape, top, room: room)),
                                    b: nameRoot(Int(top.node), Array(shape.properties.indices)), c: 0, d: initialNameTuple(shape))
                    top.phase = 2; top.ws = 0
                    out.append(rest + [top, key])
                } else if byte == UInt8(ascii: "}"), top.phase != 7, mayClose(shape, top) {
                    if let f = finished(rest) { out.append(f) }
                } else if byte == UInt8(ascii: ","), top.phase == 6, memberMayFollow(shape, top, room: room) {
                    top.phase = 7; top.ws = 0; push(top)
                }
            case 3:
                if whitespace() { return }
                if byte == UInt8(ascii: ":") { top.phase = 4; top.ws = 0; push(top) }
            case 4:
                if whitespace() { return }
                top.phase = 5; top.ws = 0
                child(Int(top.b))
            default:
                return
            }
        case .key:
            feedString(top, rest, byte, into: &out)
        case .array:
            guard case let .array(prefix, item, minItems, maxItems, unique) = schema.nodes[Int(top.node)] else { return }
            let count = Int(top.a)
            let next: Int? = count < prefix.count ? prefix[count] : item
            var room = (maxItems.map { count < $0 } ?? true) && next.map { rest.count + 1 + minimumDepth($0) < Self.maxDepth } ?? false
            // Unique items from a fixed set: room while an unused value remains for the next position.
            if unique, room, let next, case let .literal(values) = schema.nodes[schema.resolved(next)] {
                room = values.contains { v in uniqueBit(Int(top.node), v).map { top.d & (1 << $0) == 0 } ?? false }
            }
            switch top.phase {
            case 0:
                if byte == UInt8(ascii: "[") { top.phase = 1; push(top) }
            case 1, 3, 4:
                if whitespace() { return }
                if byte == UInt8(ascii: "]"), top.phase != 4, count >= minItems {
                    if let f = finished(rest) { out.append(f) }
                } else if byte == UInt8(ascii: ","), top.phase == 3, room {
                    top.phase = 4; top.ws = 0; push(top)
                } else if top.phase != 3, room, let next {
                    top.phase = 2; top.ws = 0
                    child(next)
                }
            default:
                return
            }
        case .literal:
            let current = top.a
            if let n = literalTries.child(current, byte) {
                if literalTries.payload[Int(n)] >= 0 && !literalTries.hasChildren(n) {
                    if let f = finished(rest, literal: literalTries.payload[Int(n)]) { out.append(f) }
                } else {
                    top.a = n
                    push(top)
                }
            }
            // A complete literal that a longer one extends (enum [1, 12]): the byte may belong to the parent.
            if literalTries.payload[Int(current)] >= 0, let f = finished(rest, literal: literalTries.payload[Int(current)]) {
                feed(f, byte, into: &out)
            }
        case .number:
            let prefix = numberPrefixes[Int(top.a)]
            let extended = prefix + String(UnicodeScalar(byte))
            if numberSyntaxAllows(extended, node: Int(top.node)), numberViable(extended, node: Int(top.node)) {
                top.a = numberID(extended)
                push(top)
            } else if numberComplete(top), let f = finished(rest) {
                feed(f, byte, into: &out)
            }
        case .string:
            feedString(top, rest, byte, into: &out)
        }
    }

    /// The declared members present in an object frame, as 32-bit words.
    private func presence(_ f: Frame) -> [Int32] { tuples[Int(f.a)] }

    static func has(_ words: [Int32], _ i: Int) -> Bool { i / 32 < words.count && words[i / 32] & (1 << Int32(i % 32)) != 0 }

    /// `words` with bit `i` set.
    static func adding(_ i: Int, to words: [Int32]) -> [Int32] {
        var w = words
        while w.count <= i / 32 { w.append(0) }
        w[i / 32] |= 1 << Int32(i % 32)
        return w
    }

    /// The schemas an undeclared member's value can have: additionalProperties (as the spelling allows it) and
    /// patternProperties.
    private func undeclaredValues(_ shape: SchemaNode.ObjectShape) -> [Int] {
        [additional(shape)].compactMap { $0 } + shape.patterns.map(\.node)
    }

    /// Whether some undeclared member's value fits in `room` levels of nesting.
    private func undeclaredFits(_ shape: SchemaNode.ObjectShape, room: Int) -> Bool {
        undeclaredValues(shape).contains { minimumDepth($0) < room }
    }

    /// Whether another member can be written next in object frame `f` whose member values have `room` levels of
    /// nesting left: a declared one (``writable(_:_:room:)``) or an undeclared one.
    private func memberMayFollow(_ shape: SchemaNode.ObjectShape, _ f: Frame, room: Int) -> Bool {
        undeclaredMayFollow(shape, f, room: room) || !writable(shape, f, room: room).isEmpty
    }

    /// Whether an undeclared member can be written next in object frame `f` and still leave a way to close it.
    private func undeclaredMayFollow(_ shape: SchemaNode.ObjectShape, _ f: Frame, room: Int) -> Bool {
        guard undeclaredFits(shape, room: room) else { return false }
        let present = presence(f)
        return completable(shape, present, count: Int(f.c) + 1, last: lastWritten(shape, present), room: room)
    }

    private func lastWritten(_ shape: SchemaNode.ObjectShape, _ present: [Int32]) -> Int {
        spelling == .canonical ? shape.properties.indices.last { Self.has(present, $0) } ?? -1 : -1
    }

    /// The schema of undeclared members: none in the canonical spelling when `additionalProperties` was left to its
    /// default on an object that declares members (and needs no more members than it declares), so a model does not
    /// wander off into members nobody asked for.
    private func additional(_ shape: SchemaNode.ObjectShape) -> Int? {
        if spelling == .canonical && shape.additionalImplicit && (!shape.properties.isEmpty || !shape.patterns.isEmpty)
            && shape.minProperties <= shape.properties.count { return nil }
        return shape.additional
    }

    /// Whether propertyNames allows declared member `j`'s name (checked once per trie, so the name walk need not).
    private func nameAllowed(_ shape: SchemaNode.ObjectShape, _ j: Int) -> Bool {
        guard let names = shape.names else { return true }
        return schema.admits(shape.properties[j].name, names)
    }

    private func isNever(_ node: Int) -> Bool {
        switch schema.nodes[schema.resolved(node)] {
        case .never: true
        case let .literal(values): values.isEmpty
        default: false
        }
    }

    private struct WritableKey: Hashable { var node: Int32, present: Int32, count: Int32, room: Int }
    private var writableCache: [WritableKey: [Int]] = [:]

    /// The declared members that can be written next in object frame `f` whose member values have `room` levels of
    /// nesting left, each leaving a way to close the object (``completable(_:_:count:last:room:)``). In the canonical
    /// spelling only those declared after the last one written.
    private func writable(_ shape: SchemaNode.ObjectShape, _ f: Frame, room: Int) -> [Int] {
        // Room beyond the deepest member value's needs changes nothing: one cache entry for all of it.
        let deepest = (shape.properties.map(\.node) + undeclaredValues(shape)).map(minimumDepth).max() ?? 0
        let key = WritableKey(node: f.node, present: f.a, count: f.c, room: min(room, deepest + 1))
        if let known = writableCache[key] { return known }
        let present = presence(f)
        let last = lastWritten(shape, present)
        var out: [Int] = []
        for j in (last + 1)..<shape.properties.count where usable(shape, present, j, last: last, room: room) {
            if completable(shape, Self.adding(j, to: present), count: Int(f.c) + 1, last: spelling == .canonical ? j : -1, room: room) { out.append(j) }
        }
        writableCache[key] = out
        return out
    }

    /// Whether declared member `j` can still be written: not present, its schema not false, its name allowed by
    /// propertyNames, its value fitting in `room` levels, and in the canonical spelling declared after `last`.
    private func usable(_ shape: SchemaNode.ObjectShape, _ present: [Int32], _ j: Int, last: Int, room: Int) -> Bool {
        j > last && !Self.has(present, j) && !isNever(shape.properties[j].node) && nameAllowed(shape, j)
            && minimumDepth(shape.properties[j].node) < room
    }

    /// Whether an object with the declared members `present`, `count` members in all, the last written declared
    /// member `last` (-1 in the any spelling, where order is free) and `room` levels for member values can still be
    /// closed: every member it still needs (required ones, and what present or needed members require through
    /// dependentRequired, transitively) can be written, within maxProperties, and enough members can be written for
    /// minProperties. Deciding this before each member is written is what keeps the canonical order free of dead
    /// ends: a member that would leave a required one behind it, or too few after it, is not offered.
    private func completable(_ shape: SchemaNode.ObjectShape, _ present: [Int32], count: Int, last: Int, room: Int) -> Bool {
        guard let needed = stillNeeded(shape, present, last: last, room: room) else { return false }
        let least = count + needed.count
        if let m = shape.maxProperties, least > m { return false }
        if least >= shape.minProperties { return true }
        // Too few members so far: undeclared ones can make up the count, or optional declared ones (with what they need).
        if undeclaredFits(shape, room: room) { return true }
        var most = needed
        for k in shape.properties.indices where !most.contains(k) && usable(shape, present, k, last: last, room: room) {
            if let n = closure(shape, present, of: [k], last: last, room: room) { most.formUnion(n) }
        }
        return count + most.count >= shape.minProperties
    }

    /// The declared members an object with those `present` still needs before it may close: required ones, and what
    /// present or needed members require through dependentRequired, transitively; nil when one of them can no longer
    /// be written (see ``usable(_:_:_:last:room:)``).
    private func stillNeeded(_ shape: SchemaNode.ObjectShape, _ present: [Int32], last: Int, room: Int) -> Set<Int>? {
        let required = shape.properties.indices.filter { shape.properties[$0].required }
        let ofPresent = shape.dependentRequired.filter { Self.has(present, $0.key) }.flatMap(\.value)
        return closure(shape, present, of: required + ofPresent, last: last, room: room)
    }

    /// Members `start` not present and what they require, transitively; nil when one cannot be written.
    private func closure(_ shape: SchemaNode.ObjectShape, _ present: [Int32], of start: [Int], last: Int, room: Int) -> Set<Int>? {
        var needed: Set<Int> = []
        var stack = start
        while let k = stack.popLast() {
            if Self.has(present, k) || needed.contains(k) { continue }
            guard usable(shape, present, k, last: last, room: room) else { return nil }
            needed.insert(k)
            stack += shape.dependentRequired[k] ?? []
        }
        return needed
    }

    /// Whether the object may end here: required members written, enough members, dependencies met.
    private func mayClose(_ shape: SchemaNode.ObjectShape, _ f: Frame) -> Bool {
        let present = presence(f)
        if shape.properties.indices.contains(where: { shape.properties[$0].required && !Self.has(present, $0) }) { return false }
        if Int(f.c) < shape.minProperties { return false }
        for (x, needs) in shape.dependentRequired where Self.has(present, x) {
            if needs.contains(where: { !Self.has(present, $0) }) { return false }
        }
        return true
    }

    // MARK: - Member names

    /// The initial tuple of a key: pattern states of patternProperties, then propertyNames' patterns and excluded
    /// patterns.
    private func initialNameTuple(_ shape: SchemaNode.ObjectShape) -> Int32 {
        var t = shape.patterns.map { schema.patterns[$0.pattern].initial }
        if let names = shape.names {
            t += names.patterns.map { schema.patterns[$0].initial } + names.excluded.map { schema.patterns[$0].initial }
        }
        return tuple(t + [0])  // the name's length so far, last
    }

    /// A trie of the names (UTF-8 of the decoded name) of declared members `names` of object `node`, with the
    /// declared index as payload.
    private func nameRoot(_ node: Int, _ names: [Int]) -> Int32 {
        let key = [node] + names
        if let r = nameRoots[key] { return r }
        guard case let .object(shape) = schema.nodes[node] else { return -1 }
        let root = literalTries.newNode()
        for j in names {
            literalTries.insert(Array(shape.properties[j].name.utf8), payload: Int32(j), root: root, required: shape.properties[j].required)
        }
        nameRoots[key] = root
        return root
    }

    /// The key frame read its closing quote: the object frame below takes the member, or refuses the name.
    private func closeKey(_ key: Frame, _ rest: [Frame], into out: inout [[Frame]]) {
        guard var object = rest.last, case let .object(shape) = schema.nodes[Int(object.node)] else { return }
        let states = tuples[Int(key.d)]
        let patternCount = shape.patterns.count
        let candidate = key.a >= 0 ? literalTries.payload[Int(key.a)] : -1
        // A declared name in the trie passed propertyNames when the trie was built; others are checked here.
        if candidate < 0, let names = shape.names {
            let pos = Array(states[patternCount..<(patternCount + names.patterns.count)])
            let neg = Array(states[(patternCount + names.patterns.count)..<(states.count - 1)])
            guard Int(states[states.count - 1]) >= names.minLength,
                  pos.enumerated().allSatisfy({ $1 >= 0 && schema.patterns[names.patterns[$0]].isAccepting($1) }),
                  !neg.enumerated().contains(where: { $1 >= 0 && schema.patterns[names.excluded[$0]].isAccepting($1) }) else { return }
        }
        var chosen: Int?
        let declared = key.b >= 0 ? literalTries.payload[Int(key.b)] : -1
        if candidate >= 0 {
            let j = Int(candidate)
            chosen = shape.properties[j].node
            object.a = tuple(Self.adding(j, to: presence(object)))
        } else if declared >= 0 {
            return  // a declared name written twice, or out of order
        } else {
            // An undeclared name: only where one may follow (the trie path reads any prefix of a declared name).
            guard undeclaredMayFollow(shape, object, room: Self.maxDepth - rest.count) else { return }
            var mask = 0
            for (i, p) in shape.patterns.enumerated() where states[i] >= 0 && schema.patterns[p.pattern].isAccepting(states[i]) { mask |= 1 << i }
            if mask == 0 {
                chosen = additional(shape)
            } else if mask.nonzeroBitCount == 1 {
                chosen = shape.patterns[mask.trailingZeroBitCount].node
            } else {
                chosen = shape.patternMerges[mask]
            }
        }
        // The value must fit under the nesting limit (a declared member's was checked when it was offered).
        guard let chosen, minimumDepth(chosen) < Self.maxDepth - rest.count else { return }
        let cap = Int32(max(shape.minProperties, (shape.maxProperties ?? -1) + 1))
        object.c = min(object.c + 1, cap)
        object.phase = 3
        object.b = Int32(chosen)
        object.ws = 0
        var r = rest
        r[r.count - 1] = object
        out.append(r)
    }

    // MARK: - Strings

    /// Reads one byte of a string value (`.string`) or a member name (`.key`). Phases: 0 before '"', 1 in the
    /// text, 2 after '\', 3 in a \u escape, 4/5 expecting the '\' and 'u' of a low surrogate, 6 in its digits,
    /// 11–13 in a UTF-8 sequence (the bytes still to come).
    private func feedString(_ frame: Frame, _ rest: [Frame], _ byte: UInt8, into out: inout [[Frame]]) {
        var top = frame
        func push() { out.append(rest + [top]) }
        if top.kind == .key, case let .object(shape) = schema.nodes[Int(top.node)], let object = rest.last,
           !undeclaredMayFollow(shape, object, room: Self.maxDepth - rest.count) {
            // Only declared names can be written: walk their trie byte by byte (\u escapes are not accepted here).
            switch top.phase {
            case 1:
                if byte == UInt8(ascii: "\"") { closeKey(top, rest, into: &out); return }
                if byte == UInt8(ascii: "\\") {
                    // Only when an escaped byte can continue a name.
                    if (spelling == .any ? [0x22, 0x5C, 0x2F, 8, 0xC, 0xA, 0xD, 9] : [0x22, 0x5C, 8, 0xC, 0xA, 0xD, 9])
                        .contains(where: { literalTries.child(top.a, $0) != nil }) { top.phase = 2; push() }
                    return
                }
                guard byte >= 0x20 else { return }
                if let a = literalTries.child(top.a, byte), let b = literalTries.child(top.b, byte) { top.a = a; top.b = b; push() }
            case 2:
                if let e = Self.shortEscapes[byte], spelling == .any || byte != UInt8(ascii: "/"),
                   let a = literalTries.child(top.a, e), let b = literalTries.child(top.b, e) {
                    top.a = a; top.b = b; top.phase = 1; push()
                }
            default: return
            }
            return
        }
        switch top.phase {
        case 0:
            if byte == UInt8(ascii: "\"") { top.phase = 1; push() }
        case 1:
            switch byte {
            case UInt8(ascii: "\""):
                if top.kind == .key { closeKey(top, rest, into: &out) } else if stringMayEnd(top), let f = finished(rest) { out.append(f) }
            case UInt8(ascii: "\\"):
                if spelling == .any ? roomFor(top, 0...0x10FFFF) : escapable(top, Self.canonicalEscapes) { top.phase = 2; push() }
            case 0..<0x20:
                return
            case 0x20..<0x80:
                if scalar(&top, UInt32(byte)) { push() }
            case 0xC2...0xDF: lead(&top, 11, 0, byte & 0x1F, UInt32(byte & 0x1F) << 6 ... (UInt32(byte & 0x1F) << 6 | 0x3F), rest, &out)
            case 0xE0: lead(&top, 12, 1, 0, 0x800...0xFFF, rest, &out)
            case 0xED: lead(&top, 12, 2, byte & 0x0F, 0xD000...0xD7FF, rest, &out)
            case 0xE1...0xEF: lead(&top, 12, 0, byte & 0x0F, UInt32(byte & 0x0F) << 12 ... (UInt32(byte & 0x0F) << 12 | 0xFFF), rest, &out)
            case 0xF0: lead(&top, 13, 3, 0, 0x10000...0x3FFFF, rest, &out)
            case 0xF4: lead(&top, 13, 4, byte & 0x07, 0x100000...0x10FFFF, rest, &out)
            case 0xF1...0xF3: lead(&top, 13, 0, byte & 0x07, UInt32(byte & 0x07) << 18 ... (UInt32(byte & 0x07) << 18 | 0x3FFFF), rest, &out)
            default: return
            }
        case 2:
            if let e = Self.shortEscapes[byte] {
                let v = UInt32(e)
                if spelling == .any || v != 0x2F, scalar(&top, v) { top.phase = 1; push() }
            } else if byte == UInt8(ascii: "u"), spelling == .any || escapable(top, Array(0...0x1F)) {
                top.phase = 3; top.ws = 0; top.c = 0; push()
            }
        case 3, 6:
            guard let digit = Self.hexValue(byte) else { return }
            let low = (top.c & 0xFFFF) * 16 + Int32(digit)
            top.c = (top.c & ~0xFFFF) | low
            top.ws += 1
            // A low surrogate's digits: DC00–DFFF only.
            if top.phase == 6 && ((top.ws == 1 && digit != 0xD) || (top.ws == 2 && digit < 0xC)) { return }
            if top.phase == 3 && top.ws < 4 {
                // The scalars this escape can still become must leave room (surrogates: the pair's range).
                let shift = 4 * (4 - Int32(top.ws))
                let lo = UInt32(low << shift), hi = UInt32(((low + 1) << shift) - 1)
                if lo >= 0xDC00 && hi <= 0xDFFF { return }
                if spelling == .canonical {
                    guard lo <= 0x1F, escapable(top, Array(lo...min(hi, 0x1F))) else { return }
                } else {
                    guard roomFor(top, lo >= 0xD800 && hi <= 0xDBFF ? 0x10000...0x10FFFF : lo...hi) else { return }
                }
            }
            if top.ws == 4 {
                if top.phase == 3 {
                    if spelling == .canonical && low > 0x1F { return }
                    if (0xD800...0xDBFF).contains(low) { top.phase = 4; top.ws = 0; top.c = (low - 0xD800) << 16; push(); return }
                    if (0xDC00...0xDFFF).contains(low) { return }
                    guard scalar(&top, UInt32(low)) else { return }
                } else {
                    guard (0xDC00...0xDFFF).contains(low) else { return }
                    let v = 0x10000 + (UInt32(top.c >> 16) << 10) + UInt32(low - 0xDC00)
                    guard scalar(&top, v) else { return }
                }
                top.phase = 1; top.ws = 0; top.c = 0
            }
            push()
        case 4:
            if byte == UInt8(ascii: "\\") { top.phase = 5; push() }
        case 5:
            if byte == UInt8(ascii: "u") { top.phase = 6; top.ws = 0; push() }
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
                guard scalar(&top, UInt32(top.c)) else { return }
                top.phase = 1; top.c = 0
            } else {
                top.phase -= 1
                let shift = UInt32(6 * (top.phase - 10))
                let low = UInt32(top.c) << shift
                guard roomFor(top, low...(low | ((1 << shift) - 1))) else { return }
            }
            push()
        default:
            return
        }
    }

    /// A UTF-8 lead byte: `phase` counts the bytes still to come, `restriction` narrows the next one.
    private func lead(_ top: inout Frame, _ phase: UInt8, _ restriction: UInt8, _ bits: UInt8, _ range: ClosedRange<UInt32>,
                      _ rest: [Frame], _ out: inout [[Frame]]) {
        guard roomFor(top, range) else { return }
        top.phase = phase; top.ws = restriction; top.c = Int32(bits)
        out.append(rest + [top])
    }

    /// The string constraints of a string frame (its node's) or a key frame (the object's propertyNames).
    private func stringShape(_ f: Frame) -> SchemaNode.StringShape? {
        switch schema.nodes[Int(f.node)] {
        case let .string(shape): return shape
        case let .object(shape): return shape.names
        default: return nil
        }
    }

    /// Adds one scalar to a string or key frame, if its constraints allow it.
    private func scalar(_ top: inout Frame, _ v: UInt32) -> Bool {
        if top.kind == .key {
            guard case let .object(object) = schema.nodes[Int(top.node)] else { return false }
            var states = tuples[Int(top.d)]
            for (i, p) in object.patterns.enumerated() where states[i] >= 0 { states[i] = schema.patterns[p.pattern].step(states[i], v) }
            let bytes = Array(String(Unicode.Scalar(v)!).utf8)
            var a = top.a, b = top.b
            for byte in bytes {
                if a >= 0 { a = literalTries.child(a, byte) ?? -1 }
                if b >= 0 { b = literalTries.child(b, byte) ?? -1 }
            }
            // Without undeclared members or patterns, only declared names not yet written can be written.
            if additional(object) == nil && object.patterns.isEmpty && a < 0 { return false }
            if additional(object) == nil && a < 0 {
                // An undeclared name must still be able to match some pattern within propertyNames' length bounds.
                let count = Int(states[states.count - 1]) + 1
                let viable = object.patterns.indices.contains { i in
                    states[i] >= 0 && schema.patterns[object.patterns[i].pattern].canFinish(from: states[i], count: count, min: object.names?.minLength ?? 0,
                                                                                             max: object.names?.maxLength)
                }
                if !viable { return false }
            }
            if let names = object.names {
                let count = Int(states[states.count - 1]) + 1
                if let m = names.maxLength, count > m { return false }
                let offset = object.patterns.count
                for (i, p) in names.patterns.enumerated() {
                    let s = schema.patterns[p].step(states[offset + i], v)
                    if s < 0 { return false }
                    states[offset + i] = s
                }
                for (i, p) in names.excluded.enumerated() where states[offset + names.patterns.count + i] >= 0 {
                    states[offset + names.patterns.count + i] = schema.patterns[p].step(states[offset + names.patterns.count + i], v)
                }
                if !jointlyFinishable(names, Array(states[offset..<(offset + names.patterns.count)]), count: count) { return false }
                states[states.count - 1] = Int32(names.maxLength == nil ? min(count, names.minLength) : count)
            }
            top.a = a; top.b = b; top.d = tuple(states)
            return true
        }
        guard case let .string(shape) = schema.nodes[Int(top.node)] else { return false }
        let count = Int(top.b) + 1
        if let maxLength = shape.maxLength, count > maxLength { return false }
        if !shape.patterns.isEmpty || !shape.excluded.isEmpty {
            var states = tuples[Int(top.a)]
            for (i, p) in shape.patterns.enumerated() {
                let s = schema.patterns[p].step(states[i], v)
                if s < 0 { return false }
                states[i] = s
            }
            for (i, p) in shape.excluded.enumerated() where states[shape.patterns.count + i] >= 0 {
                states[shape.patterns.count + i] = schema.patterns[p].step(states[shape.patterns.count + i], v)
            }
            if !jointlyFinishable(shape, Array(states.prefix(shape.patterns.count)), count: count) { return false }
            top.a = tuple(states)
        }
        // Without an upper bound only the distance to minLength matters, so states do not multiply by length.
        top.b = Int32(shape.maxLength == nil ? min(count, shape.minLength) : count)
        return true
    }

    /// Whether some scalar in `range` could still be added (decided before its last byte arrives).
    private func roomFor(_ top: Frame, _ range: ClosedRange<UInt32>) -> Bool {
        if top.kind == .key, case let .object(object) = schema.nodes[Int(top.node)], additional(object) == nil {
            // A name must stay a declared one (its trie has a way on) or able to match some pattern.
            let states = tuples[Int(top.d)]
            let count = Int(states[states.count - 1]) + 1
            let patternRoom = object.patterns.indices.contains { i in
                states[i] >= 0 && schema.patterns[object.patterns[i].pattern].anyViable(from: states[i], in: range, count: count,
                                                                                          min: object.names?.minLength ?? 0, max: object.names?.maxLength)
            }
            if !patternRoom && !(top.a >= 0 && trieSpells(top.a, range)) { return false }
        }
        guard let shape = stringShape(top) else { return true }
        let count = Int(top.kind == .key ? tuples[Int(top.d)].last! : top.b) + 1
        if let m = shape.maxLength, count > m { return false }
        guard shape.patterns.count == 1 else { return true }
        let states = tuples[Int(top.kind == .key ? top.d : top.a)]
        let offset = top.kind == .key ? patternCount(top) : 0
        return schema.patterns[shape.patterns[0]].anyViable(from: states[offset], in: range, count: count, min: shape.minLength, max: shape.maxLength)
    }

    /// Whether the trie has a path from `node` that spells (in UTF-8) some scalar in `range`.
    private func trieSpells(_ node: Int32, _ range: ClosedRange<UInt32>) -> Bool {
        func walk(_ n: Int32, _ value: UInt32, _ left: UInt32) -> Bool {
            let lo = value << (6 * left), hi = lo | ((1 << (6 * left)) - 1)
            if hi < range.lowerBound || lo > range.upperBound { return false }
            if left == 0 { return true }
            return literalTries.children[Int(n)].contains { b, c in b & 0xC0 == 0x80 && walk(c, value << 6 | UInt32(b & 0x3F), left - 1) }
        }
        return literalTries.children[Int(node)].contains { b, c in
            switch b {
            case 0..<0x80: range.contains(UInt32(b))
            case 0xC0...0xDF: walk(c, UInt32(b & 0x1F), 1)
            case 0xE0...0xEF: walk(c, UInt32(b & 0x0F), 2)
            case 0xF0...0xF7: walk(c, UInt32(b & 0x07), 3)
            default: false
            }
        }
    }

    /// Whether one of the scalars `values` (the few a canonical escape can stand for) can be added: exact, unlike
    /// ``roomFor(_:_:)``, so a canonical `\` never leads to a dead end.
    /// What a canonical escape can stand for, the common ones first.
    private static let canonicalEscapes: [UInt32] = [0x22, 0x5C, 0x0A, 0x09, 0x0D] + Array(0...0x1F).filter { ![0x0A, 0x09, 0x0D].contains($0) }

    private func escapable(_ top: Frame, _ values: [UInt32]) -> Bool {
        values.contains { v in
            var t = top
            return scalar(&t, v)
        }
    }

    private func patternCount(_ f: Frame) -> Int {
        if case let .object(shape) = schema.nodes[Int(f.node)] { return shape.patterns.count }
        return 0
    }

    /// Whether the string may end here: length and every pattern satisfied, no excluded pattern matched.
    private func stringMayEnd(_ f: Frame) -> Bool {
        guard case let .string(shape) = schema.nodes[Int(f.node)] else { return false }
        if Int(f.b) < shape.minLength { return false }
        let states = tuples[Int(f.a)]
        for (i, p) in shape.patterns.enumerated() where !schema.patterns[p].isAccepting(states[i]) { return false }
        for (i, p) in shape.excluded.enumerated() {
            let s = states[shape.patterns.count + i]
            if s >= 0 && schema.patterns[p].isAccepting(s) { return false }
        }
        return true
    }

    /// Whether the patterns can all still match together within the length bounds (a product search when several).
    private func jointlyFinishable(_ shape: SchemaNode.StringShape, _ states: [Int32], count: Int) -> Bool {
        if states.isEmpty { return shape.maxLength.map { count <= $0 } ?? true }
        if states.count == 1 {
            return schema.patterns[shape.patterns[0]].canFinish(from: states[0], count: count, min: shape.minLength, max: shape.maxLength)
        }
        let id = tuple(states)
        let norm = shape.maxLength == nil ? min(count, shape.minLength) : count
        let key = Int64(id) << 24 | Int64(norm)
        if let known = jointCache[key] { return known }
        struct Node: Hashable { var s: [Int32]; var c: Int }
        let patterns = shape.patterns.map { schema.patterns[$0] }
        let reps = Array(Set(patterns.flatMap(\.representatives))).sorted()
        var seen: Set<Node> = [Node(s: states, c: norm)]
        var queue = [Node(s: states, c: norm)]
        var found = false
        var i = 0
        while i < queue.count && !found {
            let n = queue[i]; i += 1
            if n.c >= shape.minLength && zip(patterns, n.s).allSatisfy({ $0.isAccepting($1) }) { found = true; break }
            if let m = shape.maxLength, n.c >= m { continue }
            for r in reps {
                var next: [Int32] = []
                for (p, s) in zip(patterns, n.s) {
                    let t = p.step(s, r)
                    if t < 0 { break }
                    next.append(t)
                }
                guard next.count == patterns.count else { continue }
                let c = shape.maxLength == nil ? min(n.c + 1, shape.minLength) : n.c + 1
                let node = Node(s: next, c: c)
                if seen.insert(node).inserted { queue.append(node) }
            }
            if seen.count > 50_000 { found = true }  // too large to prove; do not block generation
        }
        jointCache[key] = found
        return found
    }

    /// JSON's short escapes: the byte after '\\' → the byte it stands for (RFC 8259 §7).
    static let shortEscapes: [UInt8: UInt8] = [0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x62: 8, 0x66: 0xC, 0x6E: 0xA, 0x72: 0xD, 0x74: 9]

    static func hexValue(_ b: UInt8) -> UInt8? {
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

    /// Whether `text` is a prefix of `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` within the digit limits.
    private func numberSyntaxAllows(_ text: String, node: Int) -> Bool {
        if case let .number(shape) = schema.nodes[node], shape.integer {
            // Integers: no exponent, and a fraction only of zeros (draft 4: none), so viability stays exact.
            if text.contains(where: { $0 == "e" || $0 == "E" }) { return false }
            if let dot = text.firstIndex(of: ".") {
                if shape.integerSpelling || text[text.index(after: dot)...].contains(where: { $0 != "0" }) { return false }
            }
        }
        var bytes = Array(text.utf8)[...]
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        if bytes.isEmpty { return text == "-" }
        var exponent: ArraySlice<UInt8>?
        if let e = bytes.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            exponent = bytes[(e + 1)...]
            bytes = bytes[..<e]
        }
        let parts = bytes.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0]
        guard !whole.isEmpty, whole.count <= Self.maxIntegerDigits, whole.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        if whole.count > 1 && whole.first == 0x30 { return false }
        if parts.count == 2 {
            guard parts[1].count <= Self.maxFractionDigits, parts[1].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
            if exponent != nil && parts[1].isEmpty { return false }
        }
        if var e = exponent {
            if e.first == UInt8(ascii: "+") || e.first == UInt8(ascii: "-") { e = e.dropFirst() }
            guard e.count <= Self.maxExponentDigits, e.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        }
        return true
    }

    private func numberComplete(_ f: Frame) -> Bool {
        numberValueAllowed(numberPrefixes[Int(f.a)], node: Int(f.node))
    }

    /// Whether the complete number text `text` is a value of the node.
    private func numberValueAllowed(_ text: String, node: Int) -> Bool {
        guard let last = text.utf8.last, last >= 0x30 && last <= 0x39, let v = Double(text), v.isFinite,
              case let .number(shape) = schema.nodes[node] else { return false }
        return shape.admits(text)
    }

    /// Whether some completion of the syntactically valid prefix `text` is a value of the node.
    private func numberViable(_ text: String, node: Int) -> Bool {
        guard case let .number(shape) = schema.nodes[node] else { return false }
        let negative = text.hasPrefix("-")
        let body = negative ? String(text.dropFirst()) : text
        if let e = body.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            // The mantissa is fixed: try every exponent the typed digits can still become.
            let mantissa = (negative ? "-" : "") + body[..<e]
            var digits = String(body[body.index(after: e)...])
            // A sign can still come only right after the 'e'.
            var signs = digits.isEmpty ? ["", "-"] : [""]
            if digits.hasPrefix("+") || digits.hasPrefix("-") { signs = [digits.hasPrefix("-") ? "-" : ""]; digits.removeFirst() }
            var exponents: [String] = []
            func grow(_ d: String) {
                if !d.isEmpty { exponents.append(d) }
                if d.count < Self.maxExponentDigits { for c in "0123456789" { grow(d + String(c)) } }
            }
            grow(digits)
            for sign in signs {
                for x in exponents where numberValueAllowed(mantissa + "e" + sign + x, node: node) { return true }
            }
            return false
        }
        // Magnitude intervals [x, y) (or a point) the mantissa's completions can reach.
        var spans: [(x: Double, y: Double, point: Bool)] = []
        if body.isEmpty {
            spans.append((0, pow(10, Double(Self.maxIntegerDigits)), false))
        } else if shape.integer, let dot = body.firstIndex(of: ".") {
            let v = Double(body[..<dot])!
            spans.append((v, v, true))
        } else if let dot = body.firstIndex(of: ".") {
            let fraction = body[body.index(after: dot)...]
            let base = Double(body + (fraction.isEmpty ? "0" : ""))!
            if !fraction.isEmpty { spans.append((base, base, true)) }  // as typed, then perhaps an exponent
            if fraction.count >= Self.maxFractionDigits || base + pow(10, -Double(fraction.count)) == base {
                spans.append((base, base, true))
            } else {
                spans.append((base, base + pow(10, -Double(fraction.count)), false))
            }
        } else {
            let v = Double(body)!
            spans.append((v, v, true))
            if !shape.integer { spans.append((v, v + 1, false)) }
            if body != "0" {
                for k in stride(from: 1, through: Self.maxIntegerDigits - body.count, by: 1) {
                    let scale = pow(10, Double(k))
                    spans.append((v * scale, (v + 1) * scale, false))
                }
            }
        }
        // An exponent may still scale whatever the mantissa becomes (0 stays 0).
        // Scaling by division for negative powers: an integer over a power of ten rounds correctly (1e-4 is inexact).
        let exponents: [Int] = [0] + (shape.integer || (shape.minimum == nil && shape.maximum == nil) ? [] : (-20...20).filter { $0 != 0 })
        func scaled(_ v: Double, _ e: Int) -> Double { e >= 0 ? v * pow(10, Double(e)) : v / pow(10, Double(-e)) }
        for s in spans {
            for e in exponents {
                if e != 0 && s.point {
                    // The mantissa as typed, then an exponent: decided exactly on the text.
                    if numberValueAllowed(text + "e" + String(e), node: node) { return true }
                    continue
                }
                var x = scaled(s.x, e), y = scaled(s.y, e)
                if e != 0 {
                    // Scaled intervals are inexact: shrink them so rounding never promises a value that is not there.
                    let margin = max(abs(x), abs(y)) * 1e-12
                    x += margin; y -= margin
                    if x >= y { continue }
                }
                // Value interval: [x, y) or the point x; mirrored to (-y, -x] when negative.
                let (a, b) = negative ? (-y, -x) : (x, y)
                let aOpen = negative && !s.point, bOpen = !negative && !s.point
                if intervalHasValue(a, b, aOpen: aOpen, bOpen: bOpen, point: s.point, shape) { return true }
            }
        }
        return false
    }

    /// Whether the interval holds a value within the node's bounds (an integer, a multiple of `multipleOf`).
    private func intervalHasValue(_ a: Double, _ b: Double, aOpen: Bool, bOpen: Bool, point: Bool, _ shape: SchemaNode.NumberShape) -> Bool {
        let low = shape.minimum ?? -.infinity, high = shape.maximum ?? .infinity
        var lower = a, upper = b
        var lowerOpen = aOpen, upperOpen = bOpen
        if low > lower || (low == lower && shape.minimumExclusive) { lower = low; lowerOpen = shape.minimumExclusive }
        if high < upper || (high == upper && shape.maximumExclusive) { upper = high; upperOpen = shape.maximumExclusive }
        if lower > upper || (lower == upper && (lowerOpen || upperOpen)) { return false }
        let step: Double? = shape.multipleOf.flatMap(Double.init) ?? (shape.integer ? 1 : nil)
        guard var m = step else { return true }
        if shape.integer, let d = shape.multipleOf.flatMap(Double.init), d.rounded() != d { m = 1 }  // approximate
        var k = (lower / m).rounded(.up)
        if lowerOpen && k * m <= lower { k += 1 }
        let candidate = k * m
        return candidate < upper || (candidate == upper && !upperOpen)
    }

    // MARK: - Literal tries

    /// The trie of a literal node's values, leaving out those whose bit (in the unique `array`'s value list) is set
    /// in `excluding`.
    private func literalRoot(_ node: Int, excluding: Int32 = 0, array: Int32? = nil) -> Int32 {
        let key = Int64(node) << 32 | Int64(UInt32(bitPattern: excluding))
        if let r = literalRoots[key] { return r }
        guard case let .literal(values) = schema.nodes[node] else { return -1 }
        let root = literalTries.newNode()
        for v in values {
            if excluding != 0, let array, let bit = uniqueBit(Int(array), v), excluding & (1 << bit) != 0 { continue }
            literalTexts.append(v)
            literalTries.insert(Array(v.description.utf8), payload: Int32(literalTexts.count - 1), root: root)
        }
        literalRoots[key] = root
        return root
    }
}

/// Byte tries for literal values and member names, in flat arrays.
struct LiteralTries {
    var children: [[(UInt8, Int32)]] = []
    /// Value at a node where a complete literal ends, else -1.
    var payload: [Int32] = []
    /// Bytes from the root to the node.
    var depth: [Int32] = []
    /// Whether a literal inserted as `required` passes through the node (a required member's name).
    var onRequired: [Bool] = []

    mutating func newNode() -> Int32 {
        children.append([])
        payload.append(-1)
        depth.append(0)
        onRequired.append(false)
        return Int32(children.count - 1)
    }

    mutating func insert(_ bytes: [UInt8], payload value: Int32, root: Int32, required: Bool = false) {
        var n = root
        for b in bytes {
            if let c = child(n, b) { n = c; onRequired[Int(n)] = onRequired[Int(n)] || required; continue }
            let c = newNode()
            children[Int(n)].append((b, c))
            depth[Int(c)] = depth[Int(n)] + 1
            onRequired[Int(c)] = required
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
