/// The member names of the open objects of a JSON text as it is written, byte by byte, so that a token that would
/// write a name twice in one object can be refused. RFC 8259 §4 says names SHOULD be unique and the validator refuses
/// duplicates; the automaton tracks declared names itself, but undeclared ones (free text) would multiply its states,
/// so ``SchemaLogitProcessor`` asks this tracker instead. Names compare by their decoded value (`"\u0061"` is `"a"`).
struct MemberNameTracker: Sendable {
    private enum Container: Sendable {
        case object(names: Set<[UInt8]>, expectingName: Bool)
        case array
    }
    private var stack: [Container] = []
    private var inString = false
    private var isName = false
    /// 0: none; 1: after '\'; 2–5: reading \u's four digits.
    private var escape = 0
    private var unit: UInt32 = 0
    private var highSurrogate: UInt32?
    private var name: [UInt8] = []

    /// The name being written (decoded so far) and the names its object already has, when inside a member name.
    var openName: (prefix: [UInt8], used: Set<[UInt8]>)? {
        guard inString, isName, escape == 0, case let .object(names, _)? = stack.last else { return nil }
        return (name, names)
    }

    /// Reads all of `bytes`; false when they complete a name already present in its object.
    mutating func feed(_ bytes: [UInt8]) -> Bool {
        var fresh = true
        for b in bytes where !feed(b) { fresh = false }
        return fresh
    }

    private mutating func feed(_ b: UInt8) -> Bool {
        if inString { return feedString(b) }
        switch b {
        case UInt8(ascii: "{"): stack.append(.object(names: [], expectingName: true))
        case UInt8(ascii: "["): stack.append(.array)
        case UInt8(ascii: "}"), UInt8(ascii: "]"): _ = stack.popLast()
        case UInt8(ascii: ","), UInt8(ascii: ":"):
            if case let .object(names, _)? = stack.last { stack[stack.count - 1] = .object(names: names, expectingName: b == UInt8(ascii: ",")) }
        case UInt8(ascii: "\""):
            inString = true
            if case .object(_, true)? = stack.last { isName = true } else { isName = false }
            name = []
            escape = 0
            highSurrogate = nil
        default: break
        }
        return true
    }

    private mutating func feedString(_ b: UInt8) -> Bool {
        switch escape {
        case 0:
            if b == UInt8(ascii: "\\") { escape = 1; return true }
            if b == UInt8(ascii: "\"") {
                inString = false
                guard isName, case .object(var names, _)? = stack.last else { return true }
                if !names.insert(name).inserted { return false }
                stack[stack.count - 1] = .object(names: names, expectingName: false)
                return true
            }
            if isName { name.append(b) }
        case 1:
            if b == UInt8(ascii: "u") { escape = 2; unit = 0; return true }
            if isName, let v = SchemaAutomaton.shortEscapes[b] { name.append(v) }
            escape = 0
        default:
            // A non-hex byte is not JSON; the automaton never allows it.
            guard let digit = SchemaAutomaton.hexValue(b) else { escape = 0; return true }
            unit = unit * 16 + UInt32(digit)
            escape += 1
            guard escape == 6 else { return true }
            escape = 0
            if (0xD800...0xDBFF).contains(unit) { highSurrogate = unit; return true }
            var scalar = unit
            if let high = highSurrogate, (0xDC00...0xDFFF).contains(unit) { scalar = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00) }
            highSurrogate = nil
            if isName, let s = Unicode.Scalar(scalar) { name += Array(String(s).utf8) }
        }
        return true
    }
}
