/// What was wrong with a GGUF file, where, and what to do about it.
public enum GGUFError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened or mapped.
    case cannotOpen(path: String, reason: String)
    /// The first four bytes are not `GGUF`.
    case badMagic(found: UInt32)
    /// A container version this reader does not implement.
    case unsupportedVersion(UInt32)
    /// The file ends before a field that must be there.
    case truncated(offset: Int, needed: Int, what: String)
    /// A count or length that cannot fit in the bytes that remain.
    case implausibleCount(what: String, count: UInt64, offset: Int)
    /// A metadata value type code outside the specification.
    case invalidValueType(raw: UInt32, key: String)
    /// Arrays nested deeper than the reader accepts.
    case nestingTooDeep(key: String)
    /// The same metadata key appears twice.
    case duplicateKey(String)
    /// `general.alignment` is zero, not a power of two, or absurd.
    case invalidAlignment(UInt64)
    /// A tensor descriptor is malformed.
    case invalidTensor(name: String, reason: String)
    /// The same tensor name appears twice.
    case duplicateTensor(String)
    /// A tensor's bytes lie outside the data section.
    case tensorOutOfBounds(name: String, offset: UInt64, size: UInt64, dataSize: Int)
    /// A required metadata key is missing.
    case missingKey(String)
    /// A metadata key holds a value of the wrong type.
    case wrongType(key: String, expected: String, found: String)
    /// A required tensor is missing.
    case missingTensor(String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open GGUF file \(path): \(reason)"
        case let .badMagic(found):
            return "not a GGUF file: magic is 0x\(String(found, radix: 16)), expected 0x46554747 ('GGUF'); check the path and that the download completed"
        case let .unsupportedVersion(v):
            return "GGUF version \(v) is not supported (versions 2 and 3 are); re-convert the model with a current converter"
        case let .truncated(offset, needed, what):
            return "GGUF file is truncated: \(what) needs \(needed) bytes at offset \(offset); the file is incomplete or corrupt, download it again"
        case let .implausibleCount(what, count, offset):
            return "GGUF file is corrupt: \(what) of \(count) at offset \(offset) cannot fit in the file"
        case let .invalidValueType(raw, key):
            return "GGUF file is corrupt: metadata key '\(key)' has unknown value type \(raw)"
        case let .nestingTooDeep(key):
            return "GGUF file is corrupt: metadata key '\(key)' nests arrays too deeply"
        case let .duplicateKey(key):
            return "GGUF file is corrupt: metadata key '\(key)' appears twice"
        case let .invalidAlignment(a):
            return "GGUF file is corrupt: general.alignment \(a) is not a power of two between 1 and 65536"
        case let .invalidTensor(name, reason):
            return "GGUF file is corrupt: tensor '\(name)': \(reason)"
        case let .duplicateTensor(name):
            return "GGUF file is corrupt: tensor '\(name)' appears twice"
        case let .tensorOutOfBounds(name, offset, size, dataSize):
            return "GGUF file is truncated or corrupt: tensor '\(name)' spans bytes \(offset)..<\(offset &+ size) of a data section of \(dataSize) bytes"
        case let .missingKey(key):
            return "GGUF metadata lacks required key '\(key)'; the file was made for another architecture or by an incomplete converter"
        case let .wrongType(key, expected, found):
            return "GGUF metadata key '\(key)' holds \(found), expected \(expected)"
        case let .missingTensor(name):
            return "GGUF file lacks required tensor '\(name)'"
        }
    }
}
