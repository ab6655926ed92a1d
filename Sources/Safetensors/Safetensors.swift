import Foundation
import GGUF

/// What was wrong with a safetensors file, where, and what to do.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file is shorter than its 8-byte header length, or than the header it announces.
    case truncated(needed: Int, available: Int)
    /// The announced header length is absurd.
    case headerTooLarge(UInt64)
    /// The header is not a JSON object of tensor entries.
    case invalidHeader(String)
    /// A tensor entry is malformed.
    case invalidTensor(name: String, reason: String)
    /// A tensor's bytes lie outside the data section or overlap another tensor.
    case tensorOutOfBounds(name: String, begin: UInt64, end: UInt64, dataSize: Int)
    /// A required tensor is missing.
    case missingTensor(String)
    /// A tensor has a dtype or shape other than the one needed.
    case unexpectedTensor(name: String, expected: String, found: String)

    public var description: String {
        switch self {
        case let .truncated(needed, available):
            return "safetensors file is truncated: needs \(needed) bytes, has \(available); download it again"
        case let .headerTooLarge(n):
            return "safetensors file is corrupt: header length \(n) is larger than the file or the 100 MB limit"
        case let .invalidHeader(reason):
            return "safetensors file is corrupt: header \(reason)"
        case let .invalidTensor(name, reason):
            return "safetensors file is corrupt: tensor '\(name)': \(reason)"
        case let .tensorOutOfBounds(name, begin, end, dataSize):
            return "safetensors file is truncated or corrupt: tensor '\(name)' spans bytes \(begin)..<\(end) of a data section of \(dataSize) bytes"
        case let .missingTensor(name):
            return "safetensors file lacks tensor '\(name)'; it was made for another architecture"
        case let .unexpectedTensor(name, expected, found):
            return "safetensors tensor '\(name)' is \(found), expected \(expected)"
        }
    }
}

/// Element types of safetensors.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// One tensor's entry in the header.
public struct SafetensorsTensor: Sendable, Equatable {
    /// Name.
    public let name: String
    /// Element type.
    public let dtype: SafetensorsDType
    /// Shape, outermost first (row-major).
    public let shape: [Int]
    /// Offset of the first byte from the start of the data section.
    public let offset: Int
    /// Size in bytes.
    public let byteCount: Int

    /// Number of elements.
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A parsed safetensors file: an 8-byte little-endian header length, a JSON header, then the tensor data.
///
/// Every offset is checked against the file before any data is read; the data stays memory-mapped.
public struct SafetensorsFile: Sendable {
    /// Tensors by name.
    public let tensors: [String: SafetensorsTensor]
    /// The free-form `__metadata__` strings.
    public let metadata: [String: String]
    /// Offset of the data section in the file.
    public let dataOffset: Int
    /// The file's bytes.
    public let storage: ByteStorage

    static let maxHeader: UInt64 = 100 << 20

    /// Opens and parses the file at `path`, mapping it read-only.
    public init(path: String) throws {
        try self.init(storage: ByteStorage.mapping(path: path))
    }

    /// Parses a file held in `storage`.
    public init(storage: ByteStorage) throws {
        self.storage = storage
        let bytes = storage.bytes
        guard bytes.count >= 8 else { throw SafetensorsError.truncated(needed: 8, available: bytes.count) }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard headerLength <= Self.maxHeader else { throw SafetensorsError.headerTooLarge(headerLength) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw SafetensorsError.truncated(needed: 8 + Int(headerLength), available: bytes.count)
        }
        dataOffset = 8 + Int(headerLength)
        let headerBytes = Data(UnsafeRawBufferPointer(rebasing: bytes[8..<dataOffset]))
        guard String(data: headerBytes, encoding: .utf8) != nil else { throw SafetensorsError.invalidHeader("is not valid UTF-8") }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes, options: [.fragmentsAllowed])
        } catch {
            throw SafetensorsError.invalidHeader("is not valid JSON")
        }
        guard let object = json as? [String: Any] else { throw SafetensorsError.invalidHeader("is not a JSON object") }
        let dataSize = bytes.count - dataOffset
        var tensors: [String: SafetensorsTensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let entries = value as? [String: Any] else { throw SafetensorsError.invalidHeader("__metadata__ is not an object") }
                for (k, v) in entries {
                    guard let s = v as? String else { throw SafetensorsError.invalidHeader("__metadata__ value '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any] else { throw SafetensorsError.invalidTensor(name: name, reason: "entry is not an object") }
            guard let dtypeName = entry["dtype"] as? String, let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw SafetensorsError.invalidTensor(name: name, reason: "unknown dtype \(entry["dtype"].map { "\($0)" } ?? "(missing)")")
            }
            guard let rawShape = entry["shape"] as? [Any], rawShape.count <= 8 else {
                throw SafetensorsError.invalidTensor(name: name, reason: "shape missing or of more than 8 dimensions")
            }
            var shape: [Int] = []
            var elements: UInt64 = 1
            for d in rawShape {
                guard let n = (d as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }), n >= 0, n <= Int(Int32.max) else {
                    throw SafetensorsError.invalidTensor(name: name, reason: "dimension \(d) is not a non-negative integer")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: UInt64(n))
                guard !overflow else { throw SafetensorsError.invalidTensor(name: name, reason: "element count overflows") }
                elements = product
                shape.append(n)
            }
            guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = (offsets[0] as? NSNumber).flatMap({ UInt64(exactly: $0.doubleValue) }),
                  let end = (offsets[1] as? NSNumber).flatMap({ UInt64(exactly: $0.doubleValue) }), begin <= end else {
                throw SafetensorsError.invalidTensor(name: name, reason: "data_offsets must be two integers, begin ≤ end")
            }
            let (bytesNeeded, overflow) = elements.multipliedReportingOverflow(by: UInt64(dtype.size))
            guard !overflow, bytesNeeded == end - begin else {
                throw SafetensorsError.invalidTensor(name: name, reason: "\(end - begin) bytes for \(shape) of \(dtype.rawValue)")
            }
            guard end <= UInt64(dataSize) else {
                throw SafetensorsError.tensorOutOfBounds(name: name, begin: begin, end: end, dataSize: dataSize)
            }
            tensors[name] = SafetensorsTensor(name: name, dtype: dtype, shape: shape, offset: Int(begin), byteCount: Int(end - begin))
        }
        // Tensors may not overlap.
        let sorted = tensors.values.filter { $0.byteCount > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw SafetensorsError.tensorOutOfBounds(name: b.name, begin: UInt64(b.offset), end: UInt64(b.offset + b.byteCount), dataSize: dataSize)
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The raw bytes of `tensor` (a view into the mapped file).
    public func data(of tensor: SafetensorsTensor) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.base + dataOffset + tensor.offset, count: tensor.byteCount)
    }

    /// The tensor called `name` as floats (F32 copied, F16 and BF16 widened), checked against `shape`.
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        guard let t = tensors[name] else { throw SafetensorsError.missingTensor(name) }
        guard t.shape == shape else {
            throw SafetensorsError.unexpectedTensor(name: name, expected: "shape \(shape)", found: "shape \(t.shape)")
        }
        let raw = data(of: t)
        switch t.dtype {
        case .f32:
            return (0..<t.elementCount).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        case .f16:
            return (0..<t.elementCount).map { Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))) }
        case .bf16:
            return (0..<t.elementCount).map { Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
        default:
            throw SafetensorsError.unexpectedTensor(name: name, expected: "F32, F16 or BF16", found: t.dtype.rawValue)
        }
    }

    /// The tensor called `name` as 64-bit integers (I64 only).
    public func int64s(_ name: String) throws -> [Int64] {
        guard let t = tensors[name] else { throw SafetensorsError.missingTensor(name) }
        guard t.dtype == .i64 else { throw SafetensorsError.unexpectedTensor(name: name, expected: "I64", found: t.dtype.rawValue) }
        let raw = data(of: t)
        return (0..<t.elementCount).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
    }
}

/// Serialises tensors into a safetensors file (for tests and tools).
public struct SafetensorsWriter {
    private var entries: [(name: String, dtype: SafetensorsDType, shape: [Int], data: [UInt8])] = []

    /// An empty file.
    public init() {}

    /// Adds a tensor whose bytes are already in `dtype`'s little-endian layout.
    public mutating func add(_ name: String, dtype: SafetensorsDType, shape: [Int], data: [UInt8]) {
        entries.append((name, dtype, shape, data))
    }

    /// Adds an F32 tensor.
    public mutating func add(_ name: String, shape: [Int], floats: [Float]) {
        var bytes: [UInt8] = []
        for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { bytes += $0 } }
        add(name, dtype: .f32, shape: shape, data: bytes)
    }

    /// The encoded file.
    public func encoded() -> [UInt8] {
        var header: [String] = []
        var offset = 0
        for e in entries {
            let shape = e.shape.map(String.init).joined(separator: ",")
            header.append("\"\(e.name)\":{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.data.count)]}")
            offset += e.data.count
        }
        var json = Array(("{" + header.joined(separator: ",") + "}").utf8)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
        out += json
        for e in entries { out += e.data }
        return out
    }
}
