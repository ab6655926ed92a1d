/// Serialises metadata and tensors into a GGUF (version 3) container.
///
/// Used to make small, exact model files for tests and to round-trip the reader.
public struct GGUFWriter {
    private var metadata: [(String, GGUFValue)] = []
    private var tensors: [(name: String, type: GGMLType, shape: [Int], data: [UInt8])] = []
    /// Alignment of tensor data.
    public var alignment = 32

    /// An empty container.
    public init() {}

    /// Adds a metadata entry.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        metadata.append((key, value))
    }

    /// Adds a tensor with raw bytes already in `type`'s layout.
    public mutating func addTensor(_ name: String, type: GGMLType, shape: [Int], data: [UInt8]) {
        tensors.append((name, type, shape, data))
    }

    /// Adds an F32 tensor.
    public mutating func addTensor(_ name: String, shape: [Int], values: [Float]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        addTensor(name, type: .f32, shape: shape, data: bytes)
    }

    /// The encoded file.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func putString(_ s: String) { put(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        func typeCode(_ v: GGUFValue) -> GGUFValueType {
            switch v {
            case .uint8: return .uint8
            case .int8: return .int8
            case .uint16: return .uint16
            case .int16: return .int16
            case .uint32: return .uint32
            case .int32: return .int32
            case .uint64: return .uint64
            case .int64: return .int64
            case .float32: return .float32
            case .float64: return .float64
            case .bool: return .bool
            case .string: return .string
            case .array: return .array
            }
        }
        func putValue(_ v: GGUFValue) {
            switch v {
            case let .uint8(x): put(x)
            case let .int8(x): put(x)
            case let .uint16(x): put(x)
            case let .int16(x): put(x)
            case let .uint32(x): put(x)
            case let .int32(x): put(x)
            case let .uint64(x): put(x)
            case let .int64(x): put(x)
            case let .float32(x): put(x.bitPattern)
            case let .float64(x): put(x.bitPattern)
            case let .bool(x): put(UInt8(x ? 1 : 0))
            case let .string(s): putString(s)
            case let .array(type, items):
                put(type.rawValue)
                put(UInt64(items.count))
                items.forEach(putValue)
            }
        }
        func pad() { while out.count % alignment != 0 { out.append(0) } }

        put(UInt32(0x4655_4747))
        put(UInt32(3))
        put(UInt64(tensors.count))
        put(UInt64(metadata.count))
        for (key, value) in metadata {
            putString(key)
            put(typeCode(value).rawValue)
            putValue(value)
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += t.data.count
            offset += (alignment - offset % alignment) % alignment
        }
        for (t, o) in zip(tensors, offsets) {
            putString(t.name)
            put(UInt32(t.shape.count))
            t.shape.forEach { put(UInt64($0)) }
            put(t.type.rawValue)
            put(UInt64(o))
        }
        pad()
        for t in tensors {
            out.append(contentsOf: t.data)
            pad()
        }
        return out
    }
}
