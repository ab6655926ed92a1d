import CKernels

/// Which implementation of the innermost loops runs: the portable C path, the AVX2/FMA/F16C one, or that one with
/// AVX-512 VNNI's four-way byte dot products in the quantized matrix products (same results, fewer instructions).
public enum KernelPath: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case portable = 0
    case avx2 = 1
    case avx512VNNI = 2

    /// The best path this CPU supports.
    public static var best: KernelPath { KernelPath(rawValue: ms_detect_level()) ?? .portable }

    /// The path in use. Setting a path the CPU lacks selects the best one it has.
    public static var current: KernelPath {
        get { KernelPath(rawValue: ms_level()) ?? .portable }
        set { _ = ms_set_level(newValue.rawValue) }
    }

    public var description: String {
        switch self {
        case .portable: return "portable C"
        case .avx2: return "AVX2+FMA+F16C"
        case .avx512VNNI: return "AVX-512 VNNI"
        }
    }
}

/// Half-precision helpers for caches stored as 16-bit patterns.
public enum Half {
    /// Converts `count` floats to half-precision bits.
    public static func encode(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
        ms_float_to_half(Int32(count), src, dst)
    }

    /// Converts `count` half-precision patterns to floats.
    public static func decode(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        ms_half_to_float(Int32(count), src, dst)
    }
}
