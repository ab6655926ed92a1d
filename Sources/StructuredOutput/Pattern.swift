/// The regular-expression subset accepted in a schema's `pattern` (and used for the built-in formats).
///
/// Supported: literals and escaped punctuation; `.`; classes `[...]` with ranges and `^` negation; `\d \D \w \W \s \S`,
/// `\n \r \t \f \v \0`, `\uXXXX`; groups `( )` and `(?: )`; alternation `|`; quantifiers `* + ? {n} {n,} {n,m}`
/// (lazy forms mean the same language); `^` at the very start and `$` at the very end. As in ECMA-262 a pattern
/// without `^` may match anywhere, so it is searched for, not anchored. Anything else (backreferences, lookaround,
/// word boundaries, `\p{…}`, named groups, anchors inside the pattern) is an error.
public struct PatternError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The pattern.
    public var pattern: String
    /// Character offset of the problem.
    public var offset: Int
    /// What is wrong.
    public var reason: String
    public var description: String { "pattern \"\(pattern)\" at character \(offset): \(reason)" }
}

/// A set of Unicode scalar values as sorted, non-overlapping closed ranges.
struct ScalarSet: Hashable, Sendable {
    var ranges: [ClosedRange<UInt32>]

    static let any = ScalarSet(ranges: [0...0x10FFFF])
    static let digit = ScalarSet(ranges: [0x30...0x39])
    static let word = ScalarSet(ranges: [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A])
    static let space = ScalarSet(ranges: [0x09...0x0D, 0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A,
                                          0x2028...0x2029, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF])
    /// `.`: anything but line terminators.
    static let dot = ScalarSet(ranges: [0x0A...0x0A, 0x0D...0x0D, 0x2028...0x2029]).inverted

    init(ranges: [ClosedRange<UInt32>]) { self.ranges = ScalarSet.normalise(ranges) }
    init(_ scalar: UInt32) { ranges = [scalar...scalar] }

    static func normalise(_ input: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        let sorted = input.sorted { $0.lowerBound < $1.lowerBound }
        var out: [ClosedRange<UInt32>] = []
        for r in sorted {
            if let last = out.last, r.lowerBound <= last.upperBound &+ 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    var inverted: ScalarSet {
        var out: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for r in ranges {
            if r.lowerBound > next { out.append(next...(r.lowerBound - 1)) }
            next = r.upperBound &+ 1
        }
        if next <= 0x10FFFF && !(ranges.last.map { $0.upperBound == 0x10FFFF } ?? false) { out.append(next...0x10FFFF) }
        return ScalarSet(ranges: out)
    }

    func union(_ other: ScalarSet) -> ScalarSet { ScalarSet(ranges: ranges + other.ranges) }

    func contains(_ v: UInt32) -> Bool {
        var lo = 0, hi = ranges.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if v < ranges[mid].lowerBound { hi = mid - 1 } else if v > ranges[mid].upperBound { lo = mid + 1 } else { return true }
        }
        return false
    }
}

/// A pattern compiled to a Thompson automaton over Unicode scalars, determinised lazily.
///
/// A reference type: the lazily built states are shared by every matcher using the pattern (callers serialise access).
final class Pattern {
    let source: String
    /// NFA: per state, scalar edges and epsilon edges.
    private var edges: [[(set: ScalarSet, to: Int32)]] = []
    private var epsilons: [[Int32]] = []
    private var start: Int32 = 0
    private var accept: Int32 = 0
    /// DFA states as sorted NFA state sets.
    private var sets: [[Int32]] = []
    private var ids: [[Int32]: Int32] = [:]
    private var accepting: [Bool] = []
    /// ASCII transitions `[state * 128 + scalar]`: -2 unknown, -1 dead.
    private var asciiTable: [Int32] = []
    private var otherTransitions: [UInt64: Int32] = [:]
    private(set) var representatives: [UInt32] = []
    private var boundaries: [UInt32] = []
    private var viableCache: [ViableKey: Bool] = [:]
    static let maxStates = 20_000
    private let stateLimit: Int

    /// The DFA state before any scalar.
    private(set) var initial: Int32 = 0

    /// Compiles `source`; throws ``PatternError`` for anything outside the subset.
    convenience init(_ source: String) throws {
        var parser = PatternParser(source: source)
        var node = try parser.parseAll()
        // Unanchored ends match anything (ECMA-262 search semantics).
        if !parser.anchoredStart { node = .concat([.repeatRange(.set(.any), 0, nil), node]) }
        if !parser.anchoredEnd { node = .concat([node, .repeatRange(.set(.any), 0, nil)]) }
        try self.init(node: node, source: source)
    }

    /// Exactly the strings in `literals` (compared by Unicode scalars).
    convenience init(literals: [String]) {
        let node = PatternNode.alternation(literals.map { .concat($0.unicodeScalars.map { .set(ScalarSet($0.value)) }) })
        // Linear in the literals' length, so not bounded like a pattern's repetitions.
        let scalars = literals.reduce(0) { $0 + $1.unicodeScalars.count }
        try! self.init(node: node, source: "one of " + literals.map { JSONValue.quote($0) }.joined(separator: ", "),
                       stateLimit: max(Pattern.maxStates, 4 * (scalars + literals.count) + 16))
    }

    init(node: PatternNode, source: String, stateLimit: Int = Pattern.maxStates) throws {
        self.source = source
        self.stateLimit = stateLimit
        let (s, a) = try build(node)
        start = s
        accept = a
        var points: Set<UInt32> = [0x20, 0x61, 0x41, 0x30]
        for list in edges { for e in list { for r in e.set.ranges { points.insert(r.lowerBound); if r.upperBound < 0x10FFFF { points.insert(r.upperBound + 1) } } } }
        representatives = Array(Set(points.compactMap(Pattern.generable))).sorted()
        // Boundaries where the pattern's behaviour or generability may change: between two consecutive ones
        // every scalar acts alike.
        boundaries = points.union([0x20, 0x22, 0x23, 0x5C, 0x5D, 0x80, 0x800, 0xD800, 0xE000, 0x10000]).sorted()
        initial = intern(closure([start]))
    }

    /// The nearest scalar at or after `v` that a JSON string can carry (surrogates cannot stand alone).
    static func generable(_ v: UInt32) -> UInt32? {
        var v = v
        if (0xD800...0xDFFF).contains(v) { v = 0xE000 }
        return v <= 0x10FFFF ? v : nil
    }

    /// Whether a JSON string can carry `v` (raw, or escaped when it is a quote, a backslash or a control character).
    static func isGenerable(_ v: UInt32) -> Bool { v <= 0x10FFFF && !(0xD800...0xDFFF).contains(v) }

    /// Whether the whole of `text` matches.
    func matches(_ text: String) -> Bool {
        var s = initial
        for scalar in text.unicodeScalars {
            s = step(s, scalar.value)
            if s < 0 { return false }
        }
        return isAccepting(s)
    }

    func isAccepting(_ state: Int32) -> Bool { accepting[Int(state)] }

    /// The state after `scalar`, or -1 when no match can continue.
    func step(_ state: Int32, _ scalar: UInt32) -> Int32 {
        if scalar < 128 {
            let k = Int(state) * 128 + Int(scalar)
            let t = asciiTable[k]
            if t != -2 { return t }
            let n = compute(state, scalar)
            asciiTable[k] = n
            return n
        }
        let key = UInt64(UInt32(bitPattern: state)) << 32 | UInt64(scalar)
        if let t = otherTransitions[key] { return t }
        let n = compute(state, scalar)
        otherTransitions[key] = n
        return n
    }

    private struct ViableKey: Hashable { var state: Int32, count: Int, min: Int, max: Int }

    /// Whether from `state`, having written `count` scalars, some continuation of generable scalars ends in a match
    /// with a total length in `min...max` (max nil = unbounded).
    func canFinish(from state: Int32, count: Int, min: Int, max: Int?) -> Bool {
        let key = ViableKey(state: state, count: max == nil ? Swift.min(count, min) : count, min: min, max: max ?? -1)
        if let v = viableCache[key] { return v }
        // Breadth-first over (state, length capped at `min`, or exact when bounded above).
        struct Node: Hashable { var s: Int32, c: Int }
        func norm(_ c: Int) -> Int { max == nil ? Swift.min(c, min) : c }
        var seen: Set<Node> = [Node(s: state, c: norm(count))]
        var queue = [Node(s: state, c: norm(count))]
        var found = false
        var i = 0
        while i < queue.count && !found {
            let n = queue[i]; i += 1
            if isAccepting(n.s) && n.c >= min && (max == nil || n.c <= max!) { found = true; break }
            if let max, n.c >= max { continue }
            for r in representatives {
                let t = step(n.s, r)
                if t < 0 { continue }
                let next = Node(s: t, c: norm(n.c + 1))
                if seen.insert(next).inserted { queue.append(next) }
            }
            if seen.count > 200_000 { found = true; break }  // too large to prove; do not block generation
        }
        viableCache[key] = found
        return found
    }

    /// Whether some generable scalar in `range`, written as the `count`-th scalar, keeps a match within the bounds
    /// reachable (decides UTF-8 lead and continuation bytes before the scalar is whole).
    func anyViable(from state: Int32, in range: ClosedRange<UInt32>, count: Int, min: Int, max: Int?) -> Bool {
        var candidates = [range.lowerBound]
        var lo = 0, hi = boundaries.count
        while lo < hi { let mid = (lo + hi) / 2; if boundaries[mid] <= range.lowerBound { lo = mid + 1 } else { hi = mid } }
        while lo < boundaries.count && boundaries[lo] <= range.upperBound { candidates.append(boundaries[lo]); lo += 1 }
        for v in candidates where Pattern.isGenerable(v) {
            let t = step(state, v)
            if t >= 0 && canFinish(from: t, count: count, min: min, max: max) { return true }
        }
        return false
    }

    private func compute(_ state: Int32, _ scalar: UInt32) -> Int32 {
        var moved: [Int32] = []
        for s in sets[Int(state)] {
            for e in edges[Int(s)] where e.set.contains(scalar) { moved.append(e.to) }
        }
        if moved.isEmpty { return -1 }
        return intern(closure(moved))
    }

    private func closure(_ seeds: [Int32]) -> [Int32] {
        var seen = Set(seeds)
        var stack = seeds
        while let s = stack.popLast() {
            for t in epsilons[Int(s)] where seen.insert(t).inserted { stack.append(t) }
        }
        // Keep only states with scalar edges or the accept state: equal behaviour, fewer distinct sets.
        return seen.filter { !edges[Int($0)].isEmpty || $0 == accept }.sorted()
    }

    private func intern(_ set: [Int32]) -> Int32 {
        if set.isEmpty { return -1 }
        if let id = ids[set] { return id }
        let id = Int32(sets.count)
        sets.append(set)
        ids[set] = id
        accepting.append(set.contains(accept))
        asciiTable.append(contentsOf: repeatElement(-2, count: 128))
        return id
    }

    private func newState() throws -> Int32 {
        guard edges.count < stateLimit else {
            throw PatternError(pattern: source, offset: 0, reason: "the pattern expands to more than \(Pattern.maxStates) automaton states; use smaller repetition counts")
        }
        edges.append([])
        epsilons.append([])
        return Int32(edges.count - 1)
    }

    private func build(_ node: PatternNode) throws -> (Int32, Int32) {
        switch node {
        case let .set(set):
            let s = try newState(), a = try newState()
            edges[Int(s)].append((set, a))
            return (s, a)
        case let .concat(parts):
            let s = try newState()
            var last = s
            for p in parts {
                let (ps, pa) = try build(p)
                epsilons[Int(last)].append(ps)
                last = pa
            }
            return (s, last)
        case let .alternation(options):
            let s = try newState(), a = try newState()
            for o in options {
                let (os, oa) = try build(o)
                epsilons[Int(s)].append(os)
                epsilons[Int(oa)].append(a)
            }
            return (s, a)
        case let .repeatRange(inner, lo, hi):
            let s = try newState()
            var last = s
            for _ in 0..<lo {
                let (ps, pa) = try build(inner)
                epsilons[Int(last)].append(ps)
                last = pa
            }
            let a = try newState()
            if let hi {
                for _ in lo..<hi {
                    epsilons[Int(last)].append(a)
                    let (ps, pa) = try build(inner)
                    epsilons[Int(last)].append(ps)
                    last = pa
                }
                epsilons[Int(last)].append(a)
            } else {
                let (ps, pa) = try build(inner)
                epsilons[Int(last)].append(ps)
                epsilons[Int(pa)].append(ps)
                epsilons[Int(last)].append(a)
                epsilons[Int(pa)].append(a)
            }
            return (s, a)
        }
    }
}

indirect enum PatternNode {
    case set(ScalarSet)
    case concat([PatternNode])
    case alternation([PatternNode])
    case repeatRange(PatternNode, Int, Int?)
}

private struct PatternParser {
    let source: String
    let chars: [Unicode.Scalar]
    var i = 0
    var anchoredStart = false
    var anchoredEnd = false

    init(source: String) {
        self.source = source
        chars = Array(source.unicodeScalars)
    }

    func fail(_ reason: String) -> PatternError { PatternError(pattern: source, offset: i, reason: reason) }

    /// The whole pattern. `^` may open and `$` close each top-level alternative (ECMA-262 binds them to the
    /// alternative: `^a|b$` is "starts with a, or ends with b"); an alternative without them is searched for.
    mutating func parseAll() throws -> PatternNode {
        let limit = chars.count
        var options: [PatternNode] = []
        repeat {
            if !options.isEmpty { i += 1 }  // the '|'
            var start = false, end = false
            if i < limit, chars[i] == "^" { start = true; i += 1 }
            var parts: [PatternNode] = []
            while i < limit, chars[i] != "|", chars[i] != ")" {
                if chars[i] == "$" {
                    i += 1
                    guard i == limit || chars[i] == "|" else { throw fail("'$' is only supported at the end of the pattern or of a top-level alternative") }
                    end = true
                    break
                }
                parts.append(try quantified(try atom(limit: limit), limit: limit))
            }
            var node: PatternNode = parts.count == 1 ? parts[0] : .concat(parts)
            if !start { node = .concat([.repeatRange(.set(.any), 0, nil), node]) }
            if !end { node = .concat([node, .repeatRange(.set(.any), 0, nil)]) }
            options.append(node)
        } while i < limit && chars[i] == "|"
        guard i == limit else { throw fail("unbalanced ')'") }
        anchoredStart = true
        anchoredEnd = true
        return options.count == 1 ? options[0] : .alternation(options)
    }

    mutating func alternation(until limit: Int) throws -> PatternNode {
        var options = [try sequence(until: limit)]
        while i < limit, chars[i] == "|" {
            i += 1
            options.append(try sequence(until: limit))
        }
        return options.count == 1 ? options[0] : .alternation(options)
    }

    mutating func sequence(until limit: Int) throws -> PatternNode {
        var parts: [PatternNode] = []
        while i < limit, chars[i] != "|", chars[i] != ")" {
            var atom = try self.atom(limit: limit)
            atom = try quantified(atom, limit: limit)
            parts.append(atom)
        }
        return parts.count == 1 ? parts[0] : .concat(parts)
    }

    mutating func quantified(_ atom: PatternNode, limit: Int) throws -> PatternNode {
        guard i < limit else { return atom }
        var result: PatternNode
        switch chars[i] {
        case "*": i += 1; result = .repeatRange(atom, 0, nil)
        case "+": i += 1; result = .repeatRange(atom, 1, nil)
        case "?": i += 1; result = .repeatRange(atom, 0, 1)
        case "{":
            guard let (lo, hi, length) = bounds(at: i, limit: limit) else { return atom }
            guard hi == nil || hi! >= lo else { throw fail("repetition {\(lo),\(hi!)} has its bounds reversed") }
            guard lo <= 1000 && (hi ?? 0) <= 1000 else { throw fail("repetition counts above 1000 are not supported") }
            i += length
            result = .repeatRange(atom, lo, hi)
        default: return atom
        }
        if i < limit, chars[i] == "?" { i += 1 }  // lazy: same language
        if i < limit, ["*", "+", "?", "{"].contains(chars[i]), bounds(at: i, limit: limit) != nil || chars[i] != "{" {
            throw fail("a quantifier cannot follow a quantifier")
        }
        return result
    }

    /// `{n}`, `{n,}` or `{n,m}` at `at`: (n, m, characters), or nil when the brace is a literal.
    func bounds(at: Int, limit: Int) -> (Int, Int?, Int)? {
        var j = at + 1
        func number() -> Int? {
            var v = 0, digits = 0
            while j < limit, (0x30...0x39).contains(chars[j].value) {
                v = v * 10 + Int(chars[j].value - 0x30); j += 1; digits += 1
                if v > 100_000 { return nil }
            }
            return digits > 0 ? v : nil
        }
        guard let lo = number() else { return nil }
        var hi: Int? = lo
        if j < limit, chars[j] == "," {
            j += 1
            hi = number()
        }
        guard j < limit, chars[j] == "}" else { return nil }
        return (lo, hi, j - at + 1)
    }

    mutating func atom(limit: Int) throws -> PatternNode {
        let c = chars[i]
        switch c {
        case "(":
            i += 1
            if i < limit, chars[i] == "?" {
                guard i + 1 < limit, chars[i + 1] == ":" else {
                    throw fail("lookaround and named groups are not supported")
                }
                i += 2
            }
            let inner = try alternation(until: limit)
            guard i < limit, chars[i] == ")" else { throw fail("missing ')'") }
            i += 1
            return inner
        case "[":
            return .set(try characterClass(limit: limit))
        case ".":
            i += 1
            return .set(.dot)
        case "\\":
            return .set(try escape(limit: limit, inClass: false))
        case "^", "$":
            throw fail("'\(c)' is only supported at the start ('^') or end ('$') of the pattern or of a top-level alternative")
        case "*", "+", "?":
            throw fail("nothing to repeat")
        default:
            i += 1
            return .set(ScalarSet(c.value))
        }
    }

    mutating func characterClass(limit: Int) throws -> ScalarSet {
        i += 1
        var negated = false
        if i < limit, chars[i] == "^" { negated = true; i += 1 }
        var ranges: [ClosedRange<UInt32>] = []
        var first = true
        while true {
            guard i < limit else { throw fail("missing ']'") }
            if chars[i] == "]" && !first { i += 1; break }
            if chars[i] == "]" && first { i += 1; break }  // [] matches nothing; []...] is not ECMA
            first = false
            let low: ScalarSet
            if chars[i] == "\\" { low = try escape(limit: limit, inClass: true) } else { low = ScalarSet(chars[i].value); i += 1 }
            if i + 1 < limit, chars[i] == "-", chars[i + 1] != "]", low.ranges.count == 1, low.ranges[0].count == 1 {
                i += 1
                let high: ScalarSet
                if chars[i] == "\\" { high = try escape(limit: limit, inClass: true) } else { high = ScalarSet(chars[i].value); i += 1 }
                guard high.ranges.count == 1, high.ranges[0].count == 1 else { throw fail("a class range cannot end in a class escape") }
                let a = low.ranges[0].lowerBound, b = high.ranges[0].lowerBound
                guard a <= b else { throw fail("class range out of order") }
                ranges.append(a...b)
            } else {
                ranges.append(contentsOf: low.ranges)
            }
        }
        let set = ScalarSet(ranges: ranges)
        return negated ? set.inverted : set
    }

    mutating func escape(limit: Int, inClass: Bool) throws -> ScalarSet {
        i += 1
        guard i < limit else { throw fail("pattern ends in a backslash") }
        let c = chars[i]
        i += 1
        switch c {
        case "d": return .digit
        case "D": return ScalarSet.digit.inverted
        case "w": return .word
        case "W": return ScalarSet.word.inverted
        case "s": return .space
        case "S": return ScalarSet.space.inverted
        case "n": return ScalarSet(0x0A)
        case "r": return ScalarSet(0x0D)
        case "t": return ScalarSet(0x09)
        case "f": return ScalarSet(0x0C)
        case "v": return ScalarSet(0x0B)
        case "0": return ScalarSet(0)
        case "u":
            guard i + 4 <= limit, let v = UInt32(String(String.UnicodeScalarView(chars[i..<(i + 4)])), radix: 16) else {
                throw fail("\\u needs four hex digits")
            }
            i += 4
            return ScalarSet(v)
        case "b" where inClass: return ScalarSet(0x08)
        case "b", "B": throw fail("word boundaries are not supported")
        case "p", "P": throw fail("Unicode property classes are not supported")
        case "k": throw fail("named backreferences are not supported")
        default:
            if c.properties.numericType != nil && c.isASCII { throw fail("backreferences are not supported") }
            if c.isASCII && (c.properties.isAlphabetic) { throw fail("unknown escape \\\(c)") }
            return ScalarSet(c.value)
        }
    }
}
