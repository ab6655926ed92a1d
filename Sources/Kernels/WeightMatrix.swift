import CKernels
import GGUF

/// A 2-D weight tensor in its stored (possibly quantized) layout: `rows` output features, each `columns` inputs long.
public struct WeightMatrix: @unchecked Sendable {
    /// Element type.
    public let type: GGMLType
    /// Output features (ggml `ne[1]`).
    public let rows: Int
    /// Input features (ggml `ne[0]`), contiguous within a row.
    public let columns: Int
    /// First byte of row 0 (memory-mapped; lives as long as the owning file).
    public let data: UnsafeRawPointer
    /// Bytes per row.
    public var rowBytes: Int { columns / type.blockSize * type.typeSize }

    /// Types with a matrix-product kernel.
    public static let supported: Set<GGMLType> = [.f32, .f16, .q4_0, .q4_1, .q8_0]

    /// A view of `tensor` in `file`; the tensor must be 2-D (or 1-D, as one row) of a supported type.
    public init(_ tensor: GGUFTensorInfo, in file: GGUFFile) throws {
        guard Self.supported.contains(tensor.type) else { throw KernelError.unsupportedType(tensor.type, operation: "matrix products (\(tensor.name))") }
        guard tensor.shape.count <= 2 else { throw KernelError.shapeMismatch("\(tensor.name) has \(tensor.shape.count) dimensions, expected 2") }
        self.type = tensor.type
        self.columns = tensor.shape[0]
        self.rows = tensor.shape.count == 2 ? tensor.shape[1] : 1
        self.data = file.data(of: tensor).baseAddress!
    }

    /// A view of raw bytes already in `type`'s layout.
    public init(type: GGMLType, rows: Int, columns: Int, data: UnsafeRawPointer) {
        self.type = type
        self.rows = rows
        self.columns = columns
        self.data = data
    }

    /// The C kernels' view of this matrix.
    public var matrix: ms_matrix {
        ms_matrix(type: Int32(type.rawValue), rows: Int32(rows), cols: Int32(columns), row_bytes: Int32(rowBytes), data: data)
    }

    /// Row `r` expanded to floats.
    public func dequantizeRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        // `init` only admits supported types, all of which dequantize.
        try! Dequantize.row(type, data + r * rowBytes, dst, count: columns)
    }
}
