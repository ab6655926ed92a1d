/// One tensor's descriptor: name, element type, shape (innermost dimension first, as ggml orders it) and location.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    public let name: String
    /// The element type.
    public let type: GGMLType
    /// Dimensions, innermost (contiguous) first.
    public let shape: [Int]
    /// Offset of the first byte, relative to the start of the data section.
    public let offset: Int
    /// Size in bytes.
    public let byteCount: Int

    /// Number of elements.
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A parsed GGUF container: metadata, tensor table and the (memory-mapped) tensor data.
///
/// Every field is bounds-checked while parsing; a malformed file throws ``GGUFError`` and never reads out of bounds.
public struct GGUFFile: Sendable {
    /// Container version (2 or 3).
    public let version: UInt32
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Metadata values by key.
    public let metadata: [String: GGUFValue]
    /// Tensor descriptors in file order.
    public let tensors: [GGUFTensorInfo]
    /// Alignment of the data section and of each tensor.
    public let alignment: Int
    /// Byte offset of the data section in the file.
    public let dataOffset: Int
    /// The file's bytes.
    public let storage: ByteStorage
    private let tensorIndex: [String: Int]

    /// Limits that keep a hostile file from exhausting memory before its counts are found to be wrong.
    static let maxDimensions = 4
    static let maxNesting = 2

    /// Opens and parses the file at `path`, mapping it read-only.
    public init(path: String) throws {
        try self.init(storage: ByteStorage.mapping(path: path))
    }

    /// Parses a GGUF container held in `storage`.
    public init(storage: ByteStorage) throws {
        self.storage = storage
        var reader = Reader(bytes: storage.bytes)
        let magic = try reader.read(UInt32.self, "magic")
        guard magic == 0x4655_4747 else { throw GGUFError.badMagic(found: magic) }
        version = try reader.read(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(version) }
        let tensorCount = try reader.read(UInt64.self, "tensor count")
        let kvCount = try reader.read(UInt64.self, "metadata count")
        // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor descriptor at least 8 + 4 + 4 + 8.
        try reader.checkCount(kvCount, minimumSize: 13, what: "metadata count")
        try reader.checkCount(tensorCount, minimumSize: 24, what: "tensor count")

        var keys: [String] = []
        var values: [String: GGUFValue] = [:]
        keys.reserveCapacity(Int(kvCount))
        for _ in 0..<kvCount {
            let key = try reader.readString("metadata key")
            let rawType = try reader.read(UInt32.self, "value type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else { throw GGUFError.invalidValueType(raw: rawType, key: key) }
            let value = try reader.readValue(type, key: key, depth: 0)
            guard values.updateValue(value, forKey: key) == nil else { throw GGUFError.duplicateKey(key) }
            keys.append(key)
        }
        metadataKeys = keys
        metadata = values

        var alignment = 32
        if let value = values["general.alignment"] {
            guard let a = value.intValue, a > 0, a <= 65536, a & (a - 1) == 0 else {
                throw GGUFError.invalidAlignment(UInt64(clamping: value.intValue ?? 0))
            }
            alignment = a
        }
        self.alignment = alignment

        var infos: [(name: String, type: GGMLType, shape: [Int], offset: UInt64, size: UInt64)] = []
        infos.reserveCapacity(Int(tensorCount))
        var index: [String: Int] = [:]
        for _ in 0..<tensorCount {
            let name = try reader.readString("tensor name")
            let dims = try reader.read(UInt32.self, "dimension count of '\(name)'")
            guard dims >= 1, dims <= Self.maxDimensions else {
                throw GGUFError.invalidTensor(name: name, reason: "\(dims) dimensions (1 to \(Self.maxDimensions) supported)")
            }
            var shape: [Int] = []
            var elements: UInt64 = 1
            for _ in 0..<dims {
                let d = try reader.read(UInt64.self, "shape of '\(name)'")
                guard d > 0, d <= UInt64(Int32.max) else { throw GGUFError.invalidTensor(name: name, reason: "dimension \(d) is out of range") }
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, product <= UInt64(Int.max / 8) else { throw GGUFError.invalidTensor(name: name, reason: "element count overflows") }
                elements = product
                shape.append(Int(d))
            }
            let rawType = try reader.read(UInt32.self, "type of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw GGUFError.invalidTensor(name: name, reason: "unknown element type \(rawType)")
            }
            guard shape[0] % type.blockSize == 0, let size = type.byteCount(elements: elements) else {
                throw GGUFError.invalidTensor(name: name, reason: "row length \(shape[0]) is not a multiple of the \(type) block size \(type.blockSize)")
            }
            let offset = try reader.read(UInt64.self, "offset of '\(name)'")
            guard offset % UInt64(alignment) == 0 else {
                throw GGUFError.invalidTensor(name: name, reason: "offset \(offset) is not aligned to \(alignment)")
            }
            guard index.updateValue(infos.count, forKey: name) == nil else { throw GGUFError.duplicateTensor(name) }
            infos.append((name, type, shape, offset, size))
        }

        let (padded, overflow) = reader.offset.addingReportingOverflow((alignment - reader.offset % alignment) % alignment)
        guard !overflow, padded <= storage.count else {
            throw GGUFError.truncated(offset: reader.offset, needed: alignment, what: "padding before the tensor data")
        }
        dataOffset = padded
        let dataSize = storage.count - padded
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(infos.count)
        for info in infos {
            let (end, overflow) = info.offset.addingReportingOverflow(info.size)
            guard !overflow, end <= UInt64(dataSize) else {
                throw GGUFError.tensorOutOfBounds(name: info.name, offset: info.offset, size: info.size, dataSize: dataSize)
            }
            tensors.append(GGUFTensorInfo(name: info.name, type: info.type, shape: info.shape, offset: Int(info.offset), byteCount: Int(info.size)))
        }
        self.tensors = tensors
        tensorIndex = index
    }

    /// The descriptor of the tensor called `name`, if present.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of a tensor (a view into the mapped file, valid while this file's storage lives).
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.base + dataOffset + tensor.offset, count: tensor.byteCount)
    }

    /// Total bytes of tensor data.
    public var tensorBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }
}

// MARK: - Typed metadata access

extension GGUFFile {
    /// The string at `key`, or a typed error if it is missing or not a string.
    public func string(_ key: String) throws -> String {
        let value = try required(key)
        guard let s = value.stringValue else { throw GGUFError.wrongType(key: key, expected: "string", found: value.typeName) }
        return s
    }

    /// The integer at `key`, or a typed error if it is missing or not an integer.
    public func int(_ key: String) throws -> Int {
        let value = try required(key)
        guard let v = value.intValue else { throw GGUFError.wrongType(key: key, expected: "integer", found: value.typeName) }
        return v
    }

    /// The number at `key`, or a typed error if it is missing or not numeric.
    public func double(_ key: String) throws -> Double {
        let value = try required(key)
        guard let v = value.doubleValue else { throw GGUFError.wrongType(key: key, expected: "number", found: value.typeName) }
        return v
    }

    /// The array of strings at `key`.
    public func strings(_ key: String) throws -> [String] {
        let value = try required(key)
        guard let items = value.arrayValue else { throw GGUFError.wrongType(key: key, expected: "array of strings", found: value.typeName) }
        return try items.map {
            guard let s = $0.stringValue else { throw GGUFError.wrongType(key: key, expected: "array of strings", found: value.typeName) }
            return s
        }
    }

    /// The array of integers at `key`.
    public func ints(_ key: String) throws -> [Int] {
        let value = try required(key)
        guard let items = value.arrayValue else { throw GGUFError.wrongType(key: key, expected: "array of integers", found: value.typeName) }
        return try items.map {
            guard let v = $0.intValue else { throw GGUFError.wrongType(key: key, expected: "array of integers", found: value.typeName) }
            return v
        }
    }

    /// The value at `key`, or `missingKey`.
    public func required(_ key: String) throws -> GGUFValue {
        guard let value = metadata[key] else { throw GGUFError.missingKey(key) }
        return value
    }

    /// The model architecture (`general.architecture`).
    public var architecture: String? { metadata["general.architecture"]?.stringValue }
}

// MARK: - Bounds-checked reading

/// A cursor over the file's bytes that checks every read against the end.
struct Reader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var remaining: Int { bytes.count - offset }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw GGUFError.truncated(offset: offset, needed: size, what: what()) }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(littleEndian: value)
    }

    /// Throws unless `count` items of at least `minimumSize` bytes each can fit in what remains.
    func checkCount(_ count: UInt64, minimumSize: Int, what: String) throws {
        let (needed, overflow) = count.multipliedReportingOverflow(by: UInt64(minimumSize))
        guard !overflow, needed <= UInt64(remaining) else {
            throw GGUFError.implausibleCount(what: what, count: count, offset: offset)
        }
    }

    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let start = offset
        let length = try read(UInt64.self, what())
        guard length <= UInt64(remaining) else { throw GGUFError.implausibleCount(what: "length of \(what())", count: length, offset: start) }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(length))])
        offset += Int(length)
        return String(decoding: slice, as: UTF8.self)
    }

    mutating func readValue(_ type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, key))
        case .int8: return .int8(try read(Int8.self, key))
        case .uint16: return .uint16(try read(UInt16.self, key))
        case .int16: return .int16(try read(Int16.self, key))
        case .uint32: return .uint32(try read(UInt32.self, key))
        case .int32: return .int32(try read(Int32.self, key))
        case .uint64: return .uint64(try read(UInt64.self, key))
        case .int64: return .int64(try read(Int64.self, key))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, key)))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, key)))
        case .bool:
            let raw = try read(UInt8.self, key)
            guard raw <= 1 else { throw GGUFError.invalidValueType(raw: UInt32(raw), key: key + " (bool byte)") }
            return .bool(raw == 1)
        case .string: return .string(try readString("value of '\(key)'"))
        case .array:
            guard depth < GGUFFile.maxNesting else { throw GGUFError.nestingTooDeep(key: key) }
            let rawType = try read(UInt32.self, "element type of '\(key)'")
            guard let elementType = GGUFValueType(rawValue: rawType) else { throw GGUFError.invalidValueType(raw: rawType, key: key) }
            let count = try read(UInt64.self, "element count of '\(key)'")
            try checkCount(count, minimumSize: elementType.minimumSize, what: "element count of '\(key)'")
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<count {
                items.append(try readValue(elementType, key: key, depth: depth + 1))
            }
            return .array(elementType, items)
        }
    }
}
